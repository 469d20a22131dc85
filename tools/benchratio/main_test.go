package main

import (
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    string
		wantErr string
	}{
		"rounds in either order, median and range": {
			in: "bench-ratio\tBenchmarkA/rpc\tns/op\tlower\tW1 one caller, Release RPC\tcycle time\t\n" +
				"BenchmarkA/rpc/direct-2   \t 100\t 1000 ns/op\t 10 B/op\n" +
				"BenchmarkA/rpc/sidecar-2  \t 100\t 1500 ns/op\t 10 B/op\n" +
				"bench-ratio\tBenchmarkA/rpc\tns/op\tlower\tW1 one caller, Release RPC\tcycle time\t\n" +
				"BenchmarkA/rpc/sidecar-2  \t 100\t 1600 ns/op\n" +
				"BenchmarkA/rpc/direct-2   \t 100\t 1000 ns/op\n" +
				"BenchmarkA/rpc/direct-2   \t 100\t 1000 ns/op\n" +
				"BenchmarkA/rpc/sidecar-2  \t 100\t 1400 ns/op\n",
			want: "W1 one caller, Release RPC: 1.50x direct cycle time (rounds 1.40-1.60, 3 rounds; sidecar worse in every round)\n",
		},
		"a rate, higher is better, with a note": {
			in: "bench-ratio\tBenchmarkC/end\thandoffs/s\thigher\tW2 8 callers\thandoffs/s\tdirect does not wait\n" +
				"BenchmarkC/end/direct-2 \t 20\t 5000 ns/op\t 200 handoffs/s\n" +
				"BenchmarkC/end/sidecar-2 \t 20\t 2500 ns/op\t 400 handoffs/s\n" +
				"BenchmarkC/end/direct-2 \t 20\t 5000 ns/op\t 200 handoffs/s\n" +
				"BenchmarkC/end/sidecar-2 \t 20\t 2500 ns/op\t 180 handoffs/s\n",
			want: "W2 8 callers: 1.45x direct handoffs/s (rounds 0.90-2.00, 2 rounds; rounds disagree) [direct does not wait]\n",
		},
		"two metrics declared for one workload, each a line": {
			in: "bench-ratio\tBenchmarkA/rpc\tp50-ns/cycle\tlower\tW1\tcycle time p50\t\n" +
				"bench-ratio\tBenchmarkA/rpc\tzkreq/cycle\tlower\tW1, ZooKeeper requests\trequests per cycle\t\n" +
				"BenchmarkA/rpc/direct-2 \t 10\t 900 ns/op\t 800 p50-ns/cycle\t 3.0 zkreq/cycle\n" +
				"BenchmarkA/rpc/sidecar-2 \t 10\t 900 ns/op\t 1200 p50-ns/cycle\t 4.0 zkreq/cycle\n",
			want: "W1: 1.50x direct cycle time p50 (rounds 1.50-1.50, 1 round; sidecar worse in every round)\n" +
				"W1, ZooKeeper requests: 1.33x direct requests per cycle (rounds 1.33-1.33, 1 round; sidecar worse in every round)\n",
		},
		"undeclared: ns/op under its name; -cpu values apart": {
			in: "BenchmarkB/direct \t 1\t 100 ns/op\n" +
				"BenchmarkB/direct-4 \t 1\t 100 ns/op\n" +
				"BenchmarkB/sidecar \t 1\t 50 ns/op\n" +
				"BenchmarkB/sidecar-4 \t 1\t 200 ns/op\n" +
				"BenchmarkWaitersMemory-2 \t 1\t 5 MB-rss/10k-waiters\n",
			want: "BenchmarkB (GOMAXPROCS 1): 0.50x direct ns/op (rounds 0.50-0.50, 1 round; sidecar better in every round)\n" +
				"BenchmarkB (GOMAXPROCS 4): 2.00x direct ns/op (rounds 2.00-2.00, 1 round; sidecar worse in every round)\n",
		},
		"one side only": {
			in:      "BenchmarkB/direct-2 \t 1\t 100 ns/op\n",
			wantErr: "no workload with both a direct and a sidecar result",
		},
		"declared metric missing": {
			in: "bench-ratio\tBenchmarkC/end\thandoffs/s\thigher\tW2\thandoffs/s\t\n" +
				"BenchmarkC/end/direct-2 \t 20\t 5000 ns/op\n" +
				"BenchmarkC/end/sidecar-2 \t 20\t 2500 ns/op\n",
			wantErr: "BenchmarkC/end: round 1 has no handoffs/s on both sides",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var out strings.Builder
			err := report(strings.NewReader(c.in), &out)
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("got error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != c.want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), c.want)
			}
		})
	}
}
