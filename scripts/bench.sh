#!/usr/bin/env bash
# bench.sh: runs the benchmarks and prints each result as a ratio to the
# direct go-zookeeper client measured in the same run (the "direct-zk"
# sub-benchmark of the same group). Below 1.00 the sidecar is faster.
#
#   BENCH_TIME (default 3s) and BENCH_COUNT (default 1) tune the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p bin
out=bin/bench.txt
go test -run '^$' -bench . -benchmem -benchtime "${BENCH_TIME:-3s}" -count "${BENCH_COUNT:-1}" ./sidecar | tee "$out"
# 10,000 waiters on one lock of a zklockd process: its resident memory.
go test -run '^$' -bench WaitersMemory -benchtime 1x ./e2e | tee -a "$out"
echo
echo "ratio to the direct go-zookeeper client (time per lock cycle; lower is better):"
awk '
	/^Benchmark/ {
		name = $1; sub(/-[0-9]+$/, "", name)
		n = split(name, part, "/"); group = part[1]; sub_ = part[2]
		for (i = 1; i <= NF; i++) if ($(i+1) == "ns/op") ns = $i
		sum[group "/" sub_] += ns; cnt[group "/" sub_]++
		if (!(group "/" sub_ in seen)) { order[++k] = group "/" sub_; seen[group "/" sub_] = 1 }
	}
	END {
		for (i = 1; i <= k; i++) {
			key = order[i]; split(key, p, "/")
			base = p[1] "/direct-zk"
			if (!(base in sum) || key == base) continue
			mine = sum[key] / cnt[key]; ref = sum[base] / cnt[base]
			printf "  %-40s %8.3f ms  vs %8.3f ms  ratio %.2f\n", key, mine / 1e6, ref / 1e6, mine / ref
		}
	}' "$out"
