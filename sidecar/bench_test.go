package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	zklockv1 "github.com/zklock/zklock/clients/go/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
	"github.com/zklock/zklock/zkrecipes"
)

// The benchmarks compare lock cycles (acquire, then release) through the
// sidecar with the same cycles by Go programs embedding go-zookeeper's
// zk.Lock, on the same ZooKeeper in the same run. Each workload is a
// sub-benchmark with two sides, "direct" and "sidecar", whose callers are
// goroutines started here, each with its own ZooKeeper session (direct: as
// that many embedded clients would have) or its own gRPC connection and
// Acquire stream into one sidecar (sidecar).
//
// Each release style has the direct baseline that does the same work:
//
//   - release-rpc: the Release RPC answers once ZooKeeper confirmed the
//     delete, so the direct caller calls Unlock, which waits for the delete's
//     reply.
//   - stream-end: ending the Acquire stream releases the lock without the
//     caller waiting for anything, and the sidecar sends the delete. The
//     direct caller does the same: it runs Unlock in a goroutine it does not
//     wait for (go-zookeeper has no asynchronous delete) and goes on to its
//     next Lock. On both sides that next create may reach ZooKeeper before or
//     after the delete: after, it finds the queue empty; before, it queues
//     behind the old node and is granted once the delete is done (zk.Lock by
//     its watch and a new read of the queue, the sidecar on the delete's
//     reply: its local handoff). So on both sides no grant comes before the
//     previous delete, and no caller waits for a delete's reply.
//
// ZKLOCK_BENCH_FIRST=sidecar runs each workload's sidecar side before its
// direct side (default: direct first), so that scripts/bench.sh can alternate
// the order from round to round. Each workload prints one "bench-ratio" line
// that tells tools/benchratio how to compare its two sides.

// BenchmarkLockCycle: one caller, no contention (W1).
func BenchmarkLockCycle(b *testing.B) {
	zkc := zktest.StartStandalone(b)
	runWorkload(b, zkc.ConnectString(), workload{name: "release-rpc", callers: 1, waitDelete: true, ratio: ratio{
		label: "W1 one caller, Release RPC", metric: "ns/op", better: "lower", what: "cycle time"}})
	runWorkload(b, zkc.ConnectString(), workload{name: "stream-end", callers: 1, ratio: ratio{
		label: "W1 one caller, stream end", metric: "ns/op", better: "lower", what: "cycle time",
		note: "direct runs Unlock in a goroutine and does not wait for it"}})
}

// BenchmarkContended: 8 callers cycling on one lock (W2): 8 embedded clients
// with a session each, against 8 streams through one sidecar.
func BenchmarkContended(b *testing.B) {
	zkc := zktest.StartStandalone(b)
	runWorkload(b, zkc.ConnectString(), workload{name: "release-rpc", callers: 8, waitDelete: true, ratio: ratio{
		label: "W2 8 callers, one sidecar, Release RPC", metric: "handoffs/s", better: "higher", what: "handoffs/s"}})
	runWorkload(b, zkc.ConnectString(), workload{name: "stream-end", callers: 8, ratio: ratio{
		label: "W2 8 callers, one sidecar, stream end", metric: "handoffs/s", better: "higher", what: "handoffs/s",
		note: "direct runs Unlock in a goroutine and does not wait for it"}})
}

// workload is one comparison: callers cycling on one lock, each cycle
// released with the Release RPC (waitDelete) or by ending the stream.
type workload struct {
	name       string // the sub-benchmark's name
	callers    int
	waitDelete bool
	ratio      ratio
}

// ratio tells tools/benchratio how to compare a workload's two sides: it
// prints the sidecar's metric over the direct side's, round by round.
type ratio struct {
	label  string // the workload in words
	metric string // the unit compared, as on the result lines: "ns/op", "handoffs/s"
	better string // "lower" or "higher"
	what   string // the metric in words
	note   string // a difference between the sides that remains, if any
}

// runWorkload sets up w's direct and sidecar sides on the ZooKeeper at
// zkAddr and runs them as sub-benchmarks "direct" and "sidecar" of w.name.
// It counts exactly b.N cycles per side and reports handoffs/s when there
// is more than one caller.
func runWorkload(b *testing.B, zkAddr string, w workload) {
	b.Run(w.name, func(b *testing.B) {
		fmt.Printf("bench-ratio\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name(), w.ratio.metric, w.ratio.better, w.ratio.label, w.ratio.what, w.ratio.note)
		d := newDirectSide(b, zkAddr, w.callers, "/direct/"+w.name)
		s := newSidecarSide(b, zkAddr, w.callers, w.name)
		// One untimed cycle per caller and side first, so that no run pays
		// for connecting.
		for i := range w.callers {
			if err := d.cycleWait(i); err != nil {
				b.Fatal("direct: ", err)
			}
			if err := s.cycleRelease(i); err != nil {
				b.Fatal("sidecar: ", err)
			}
		}
		direct := func(b *testing.B) {
			cycle := d.cycleNoWait
			if w.waitDelete {
				cycle = d.cycleWait
			}
			runCallers(b, w.callers, cycle, d.abort)
			d.finish(b)
		}
		sidecar := func(b *testing.B) {
			cycle := s.cycleEnd
			if w.waitDelete {
				cycle = s.cycleRelease
			}
			runCallers(b, w.callers, cycle, s.abort)
			s.finish(b)
		}
		if os.Getenv("ZKLOCK_BENCH_FIRST") == "sidecar" {
			b.Run("sidecar", sidecar)
			b.Run("direct", direct)
		} else {
			b.Run("direct", direct)
			b.Run("sidecar", sidecar)
		}
	})
}

// runCallers starts n callers, each a goroutine calling cycle with its own
// index, until b.N cycles are done in all; then it stops the timer and,
// for n > 1, reports handoffs/s (completed cycles per second). A cycle's
// error goes to abort, which must record it and unblock every caller.
func runCallers(b *testing.B, n int, cycle func(caller int) error, abort func(error)) {
	total := int64(b.N)
	var claimed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for claimed.Add(1) <= total {
				if err := cycle(i); err != nil {
					claimed.Store(total)
					abort(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if n > 1 {
		b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "handoffs/s")
	}
}

// firstErr keeps the first error reported to it.
type firstErr struct {
	mu  sync.Mutex
	err error
}

func (f *firstErr) set(err error) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return false
	}
	f.err = err
	return true
}

func (f *firstErr) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// directSide is n programs embedding go-zookeeper: each caller has its own
// session and its own zk.Lock values (a zk.Lock is not safe for concurrent
// use) on one lock path.
type directSide struct {
	conns   []*zk.Conn
	locks   []*zk.Lock // caller i's reusable lock, for cycleWait
	path    string
	unlocks sync.WaitGroup // cycleNoWait's Unlocks
	err     firstErr
}

func newDirectSide(b *testing.B, zkAddr string, n int, path string) *directSide {
	d := &directSide{path: path}
	for range n {
		conn := zktest.Client(b, zkAddr)
		if _, err := conn.Create("/direct", nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			b.Fatal(err)
		}
		d.conns = append(d.conns, conn)
		d.locks = append(d.locks, zk.NewLock(conn, path, zk.WorldACL(zk.PermAll)))
	}
	return d
}

// cycleWait locks, then unlocks and waits for the delete's reply.
func (d *directSide) cycleWait(i int) error {
	l := d.locks[i]
	if err := l.Lock(); err != nil {
		return fmt.Errorf("Lock: %w", err)
	}
	if err := l.Unlock(); err != nil {
		return fmt.Errorf("Unlock: %w", err)
	}
	return nil
}

// cycleNoWait locks, then unlocks in a goroutine it does not wait for.
func (d *directSide) cycleNoWait(i int) error {
	l := zk.NewLock(d.conns[i], d.path, zk.WorldACL(zk.PermAll))
	if err := l.Lock(); err != nil {
		return fmt.Errorf("Lock: %w", err)
	}
	d.unlocks.Add(1)
	go func() {
		defer d.unlocks.Done()
		if err := l.Unlock(); err != nil {
			d.abort(fmt.Errorf("Unlock: %w", err))
		}
	}()
	return nil
}

// abort records err and closes every session, which ends every caller's
// wait for the lock.
func (d *directSide) abort(err error) {
	if d.err.set(err) {
		for _, c := range d.conns {
			c.Close()
		}
	}
}

// finish waits for the Unlocks not waited for and fails b on any error.
func (d *directSide) finish(b *testing.B) {
	d.unlocks.Wait()
	if err := d.err.get(); err != nil {
		b.Fatal("direct: ", err)
	}
}

// sidecarSide is n callers of one sidecar, each with its own gRPC
// connection (as n apps would have), on one lock.
type sidecarSide struct {
	clients []zklockv1.LockServiceClient
	lock    string
	check   *zk.Conn // reads the lock's queue between runs
	ctx     context.Context
	cancel  context.CancelFunc
	err     firstErr
}

func newSidecarSide(b *testing.B, zkAddr string, n int, lock string) *sidecarSide {
	s := &sidecarSide{lock: lock, check: zktest.Client(b, zkAddr)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	b.Cleanup(s.cancel)
	addr := benchSidecar(b, zkAddr)
	for range n {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		s.clients = append(s.clients, zklockv1.NewLockServiceClient(conn))
	}
	return s
}

// cycleRelease acquires, releases with the Release RPC (which answers once
// ZooKeeper confirmed the delete), then ends the stream.
func (s *sidecarSide) cycleRelease(i int) error {
	id, end, err := s.acquire(i)
	if err != nil {
		return err
	}
	defer end()
	if _, err := s.clients[i].Release(s.ctx, &zklockv1.ReleaseRequest{LeaseId: id}); err != nil {
		return fmt.Errorf("Release: %w", err)
	}
	return nil
}

// cycleEnd acquires, then ends the stream, which releases the lock.
func (s *sidecarSide) cycleEnd(i int) error {
	_, end, err := s.acquire(i)
	if err != nil {
		return err
	}
	end()
	return nil
}

// acquire takes the lock for caller i and returns the lease id and a
// function that ends the stream.
func (s *sidecarSide) acquire(i int) (string, context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(s.ctx)
	stream, err := s.clients[i].Acquire(ctx, &zklockv1.AcquireRequest{Lock: s.lock})
	if err != nil {
		cancel()
		return "", nil, fmt.Errorf("Acquire: %w", err)
	}
	for {
		r, err := stream.Recv()
		if err != nil {
			cancel()
			return "", nil, fmt.Errorf("Acquire: %w", err)
		}
		if g := r.GetGranted(); g != nil {
			return g.GetLeaseId(), cancel, nil
		}
	}
}

// abort records err and cancels every caller's calls.
func (s *sidecarSide) abort(err error) {
	s.err.set(err)
	s.cancel()
}

// finish fails b on any error, and waits until the deletes of ended streams
// are done, as directSide.finish waits for its Unlocks, so that the next run
// starts with an empty queue.
func (s *sidecarSide) finish(b *testing.B) {
	if err := s.err.get(); err != nil {
		b.Fatal("sidecar: ", err)
	}
	zktest.Eventually(b, 30*time.Second, "the sidecar's lock queue is empty", func() bool {
		return len(zktest.Children(b, s.check, "/zklock/"+s.lock)) == 0
	})
}

// benchSidecar starts a sidecar (Start) on a loopback port, waits for its
// session and returns the server's address. Cleanup stops it.
func benchSidecar(b *testing.B, zkAddr string) string {
	b.Helper()
	d, err := Start(DaemonConfig{
		Session: zkrecipes.Config{Servers: strings.Split(zkAddr, ","), SessionTimeout: 10 * time.Second, Logger: zktest.Logger()},
		Service: Config{Logger: zktest.Logger()},
		Server:  ServerOptions{Logger: zktest.Logger()},
	})
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.Shutdown(context.Background())
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- d.Server.Serve(lis) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.Shutdown(ctx)
		if err := <-served; err != nil {
			b.Errorf("Serve: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.WaitUsable(ctx); err != nil {
		b.Fatalf("no ZooKeeper session: %v", err)
	}
	return lis.Addr().String()
}
