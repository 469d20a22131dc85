package e2e

import (
	"bufio"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// BenchmarkWaitersMemory queues 10,000 callers (from this process) on one
// lock of a zklockd process (W4) and reports the zklockd's resident memory,
// how its Go runtime splits it (goroutines, goroutine stacks, heap in use,
// from the zklockd's own /metrics), and ZooKeeper's watches: one per
// waiter, on its predecessor, none on the lock node (no child watch). Then
// it hands the lock down the queue by Release, handoffs times, and reports
// the release-to-grant latency (from the start of the Release call to the
// next waiter's Granted) and that each release used up exactly one watch
// and granted exactly one waiter.
func BenchmarkWaitersMemory(b *testing.B) {
	const waiters, handoffs = 10000, 200
	zkc := zktest.StartStandalone(b)
	metricsAddr := freeLoopbackAddr(b)
	d := startDaemon(b, "A", zkc.ConnectString(), daemonOpts{args: []string{"--log-level", "info", "--metrics-listen", metricsAddr}})
	for b.Loop() {
		rssBefore := rss(b, d.cmd.Process.Pid)
		holder, err := d.client.Acquire(context.Background(), &zklockv1.AcquireRequest{Lock: "crowd", Detach: true, Ttl: dur(time.Minute)})
		if err != nil {
			b.Fatal(err)
		}
		var leaseID string
		for leaseID == "" {
			r, err := holder.Recv()
			if err != nil {
				b.Fatal(err)
			}
			leaseID = r.GetGranted().GetLeaseId()
		}
		ctx, cancel := context.WithCancel(context.Background())
		queued := make(chan struct{}, waiters)
		type grant struct {
			lease string
			at    time.Time
		}
		granted := make(chan grant, waiters)
		var wg sync.WaitGroup
		for range waiters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stream, err := d.client.Acquire(ctx, &zklockv1.AcquireRequest{Lock: "crowd"})
				if err != nil {
					return
				}
				told := false // the first Queued: a waiter hears one again whenever its position changes
				for {
					r, err := stream.Recv()
					if err != nil {
						return
					}
					if r.GetQueued() != nil && !told {
						told = true
						queued <- struct{}{}
					}
					if g := r.GetGranted(); g != nil {
						granted <- grant{g.GetLeaseId(), time.Now()}
					}
				}
			}()
		}
		for range waiters {
			<-queued
		}
		// A waiter sets its watch after telling it is queued.
		var watches int
		deadline := time.Now().Add(time.Minute)
		for watches = zkWatches(b, zkc); watches < waiters && time.Now().Before(deadline); watches = zkWatches(b, zkc) {
			time.Sleep(100 * time.Millisecond)
		}
		b.ReportMetric(float64(rss(b, d.cmd.Process.Pid))/1024, "MB-rss/10k-waiters")
		b.ReportMetric(float64(rss(b, d.cmd.Process.Pid)-rssBefore)/1024, "MB-added/10k-waiters")
		// Stacks are the goroutines' (one per stream, grpc-go's handler);
		// the heap in use holds garbage not collected yet besides live data.
		m := scrapeMetrics(b, "http://"+metricsAddr+"/metrics")
		for _, r := range []struct {
			series, unit string
			scale        float64
		}{
			{"go_goroutines", "goroutines", 1},
			{"go_memstats_stack_inuse_bytes", "MB-stacks", 1 << 20},
			{"go_memstats_heap_inuse_bytes", "MB-heap-inuse", 1 << 20},
		} {
			v, ok := m[r.series]
			if !ok {
				b.Fatalf("%s missing from zklockd's /metrics", r.series)
			}
			b.ReportMetric(v/r.scale, r.unit)
		}
		b.ReportMetric(float64(watches), "zk-watches")
		if n := lockNodeWatches(b, zkc, "/zklock/crowd"); n != 0 {
			b.Errorf("%d watches on the lock node itself: a child watch", n)
		}

		var latencies []time.Duration
		for i := range handoffs {
			start := time.Now()
			if _, err := d.client.Release(context.Background(), &zklockv1.ReleaseRequest{LeaseId: leaseID}); err != nil {
				b.Fatal(err)
			}
			select {
			case g := <-granted:
				latencies = append(latencies, g.at.Sub(start))
				leaseID = g.lease
			case <-time.After(10 * time.Second):
				b.Fatalf("handoff %d: no waiter granted 10 s after a Release", i)
			}
		}
		select {
		case <-granted:
			b.Fatal("a release granted two waiters")
		case <-time.After(500 * time.Millisecond):
		}
		if got := zkWatches(b, zkc); got != watches-handoffs {
			b.Errorf("%d watches after %d handoffs from %d, want one used up per handoff", got, handoffs, watches)
		}
		slices.Sort(latencies)
		b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "ms-release-to-grant-p50")
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "ms-release-to-grant-p99")
		cancel()
		wg.Wait()
	}
}

// zkWatches returns how many watches the ZooKeeper server holds (wchs).
func zkWatches(b *testing.B, zkc *zktest.Cluster) int {
	out, err := zktest.FourLetterWord(zkc.Server(0).Addr(), "wchs", 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	_, after, ok := strings.Cut(out, "Total watches:")
	if !ok {
		b.Fatalf("wchs: %q", out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(after))
	if err != nil {
		b.Fatalf("wchs: %q: %v", out, err)
	}
	return n
}

// lockNodeWatches returns how many sessions watch the node p itself
// (wchc lists each session's watched paths).
func lockNodeWatches(b *testing.B, zkc *zktest.Cluster, p string) int {
	out, err := zktest.FourLetterWord(zkc.Server(0).Addr(), "wchc", 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == p {
			n++
		}
	}
	return n
}

// rss returns the resident set size of process pid, in KiB.
func rss(b *testing.B, pid int) int {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatal("no VmRSS in /proc status")
	return 0
}
