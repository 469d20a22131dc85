package e2e

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	zklockv1 "github.com/zklock/zklock/clients/go/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// BenchmarkWaitersMemory queues 10,000 callers (from this process) on one
// lock of a zklockd process and reports the zklockd's resident memory, then
// checks that one release grants exactly one of them.
func BenchmarkWaitersMemory(b *testing.B) {
	const waiters = 10000
	zkc := zktest.StartStandalone(b)
	d := startDaemon(b, "A", zkc.ConnectString(), daemonOpts{args: []string{"--log-level", "info"}})
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
		granted := make(chan struct{}, waiters)
		var wg sync.WaitGroup
		for range waiters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stream, err := d.client.Acquire(ctx, &zklockv1.AcquireRequest{Lock: "crowd"})
				if err != nil {
					return
				}
				for {
					r, err := stream.Recv()
					if err != nil {
						return
					}
					if r.GetQueued() != nil {
						queued <- struct{}{}
					}
					if r.GetGranted() != nil {
						granted <- struct{}{}
					}
				}
			}()
		}
		for range waiters {
			<-queued
		}
		b.ReportMetric(float64(rss(b, d.cmd.Process.Pid))/1024, "MB-rss/10k-waiters")
		b.ReportMetric(float64(rss(b, d.cmd.Process.Pid)-rssBefore)/1024, "MB-added/10k-waiters")
		if _, err := d.client.Release(context.Background(), &zklockv1.ReleaseRequest{LeaseId: leaseID}); err != nil {
			b.Fatal(err)
		}
		<-granted
		select {
		case <-granted:
			b.Fatal("one release granted two waiters")
		case <-time.After(500 * time.Millisecond):
		}
		cancel()
		wg.Wait()
	}
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
