package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
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

// The ZooKeeper the benchmarks run against: a standalone server with fsync
// off (W1 to W3), or a 3-server ensemble with fsync on (W1 and W2 again),
// each with the JIT a production server has (the tests' servers stop at C1
// to start fast).
func benchZK(b *testing.B, servers int) *zktest.Cluster {
	opts := []zktest.Option{zktest.WithJVMArgs("-XX:TieredStopAtLevel=4", "-XX:CICompilerCount=2")}
	if servers == 1 {
		return zktest.StartStandalone(b, opts...)
	}
	return zktest.StartEnsemble(b, servers, append(opts, zktest.WithSystemProperty("zookeeper.forceSync", "yes"))...)
}

// W1 and W2 in both release styles on one ZooKeeper.
func lockCycles(b *testing.B, zkc *zktest.Cluster, where string) {
	runWorkload(b, zkc, workload{name: "release-rpc", callers: 1, waitDelete: true, p50: true, zkRequests: where == "",
		ratios: []ratio{{label: "W1 one caller, Release RPC" + where, metric: "p50-ns/cycle", better: "lower", what: "cycle time p50"}}})
	runWorkload(b, zkc, workload{name: "stream-end", callers: 1, p50: true, zkRequests: where == "",
		ratios: []ratio{{label: "W1 one caller, stream end" + where, metric: "p50-ns/cycle", better: "lower", what: "cycle time p50",
			note: noWaitNote}}})
}

func contended(b *testing.B, zkc *zktest.Cluster, where string) {
	runWorkload(b, zkc, workload{name: "release-rpc", callers: 8, waitDelete: true,
		ratios: []ratio{{label: "W2 8 callers, one sidecar, Release RPC" + where, metric: "handoffs/s", better: "higher", what: "handoffs/s"}}})
	runWorkload(b, zkc, workload{name: "stream-end", callers: 8,
		ratios: []ratio{{label: "W2 8 callers, one sidecar, stream end" + where, metric: "handoffs/s", better: "higher", what: "handoffs/s",
			note: noWaitNote}}})
}

// noWaitNote is how the direct side releases in the stream-end style.
const noWaitNote = "direct runs Unlock in a goroutine and does not wait for it"

// BenchmarkLockCycle: one caller, no contention (W1).
func BenchmarkLockCycle(b *testing.B) { lockCycles(b, benchZK(b, 1), "") }

// BenchmarkContended: 8 callers cycling on one lock (W2): 8 embedded clients
// with a session each, against 8 streams through one sidecar.
func BenchmarkContended(b *testing.B) { contended(b, benchZK(b, 1), "") }

// BenchmarkContendedTwoSidecars: W2 with the callers split 4 + 4 over two
// sidecars, whose handoffs between them go through ZooKeeper.
func BenchmarkContendedTwoSidecars(b *testing.B) {
	zkc := benchZK(b, 1)
	runWorkload(b, zkc, workload{name: "release-rpc", callers: 8, sidecars: 2, waitDelete: true,
		ratios: []ratio{{label: "W2 8 callers, two sidecars 4 + 4, Release RPC", metric: "handoffs/s", better: "higher", what: "handoffs/s"}}})
	runWorkload(b, zkc, workload{name: "stream-end", callers: 8, sidecars: 2,
		ratios: []ratio{{label: "W2 8 callers, two sidecars 4 + 4, stream end", metric: "handoffs/s", better: "higher", what: "handoffs/s",
			note: noWaitNote}}})
}

// BenchmarkManyLocks: 64 callers on 64 locks (W3): one session with 64
// goroutines against 64 streams through one sidecar.
func BenchmarkManyLocks(b *testing.B) {
	zkc := benchZK(b, 1)
	runWorkload(b, zkc, workload{name: "release-rpc", callers: 64, locks: 64, sharedSession: true, waitDelete: true, zkRequests: true,
		ratios: []ratio{{label: "W3 64 callers on 64 locks, Release RPC", metric: "cycles/s", better: "higher", what: "cycles/s"}}})
	runWorkload(b, zkc, workload{name: "stream-end", callers: 64, locks: 64, sharedSession: true, zkRequests: true,
		ratios: []ratio{{label: "W3 64 callers on 64 locks, stream end", metric: "cycles/s", better: "higher", what: "cycles/s",
			note: noWaitNote}}})
}

// BenchmarkLockCycleEnsemble and BenchmarkContendedEnsemble: W1 and W2 on a
// 3-server ensemble that syncs its log to disk.
func BenchmarkLockCycleEnsemble(b *testing.B) { lockCycles(b, benchZK(b, 3), ", 3 servers, fsync") }

func BenchmarkContendedEnsemble(b *testing.B) { contended(b, benchZK(b, 3), ", 3 servers, fsync") }

// workload is one comparison: callers cycling on locks, each cycle
// released with the Release RPC (waitDelete) or by ending the stream.
type workload struct {
	name          string // the sub-benchmark's name
	callers       int
	locks         int  // distinct locks, caller i on lock i%locks; default 1
	sharedSession bool // the direct callers share one session (else one each)
	sidecars      int  // the sidecar callers are spread over this many; default 1
	waitDelete    bool
	p50           bool // report the median cycle time
	zkRequests    bool // report the ZooKeeper requests per cycle (mntr)
	ratios        []ratio
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

// runWorkload sets up w's direct and sidecar sides on the ZooKeeper zkc
// and runs them as sub-benchmarks "direct" and "sidecar" of w.name. It
// counts exactly b.N cycles per side and reports its metrics.
func runWorkload(b *testing.B, zkc *zktest.Cluster, w workload) {
	w.locks, w.sidecars = max(w.locks, 1), max(w.sidecars, 1)
	if w.zkRequests {
		w.ratios = append(w.ratios,
			ratio{label: w.ratios[0].label + ", ZooKeeper requests", metric: "zkreq/cycle", better: "lower", what: "requests per cycle"},
			ratio{label: w.ratios[0].label + ", ZooKeeper CPU", metric: "zk-cpu-us/cycle", better: "lower", what: "ZooKeeper CPU per cycle"})
	}
	b.Run(w.name, func(b *testing.B) {
		for _, r := range w.ratios {
			fmt.Printf("bench-ratio\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name(), r.metric, r.better, r.label, r.what, r.note)
		}
		d := newDirectSide(b, zkc.ConnectString(), w, "/direct/"+w.name)
		s := newSidecarSide(b, zkc.ConnectString(), w, w.name)
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
		s.finish(b)
		direct := func(b *testing.B) {
			cycle := d.cycleNoWait
			if w.waitDelete {
				cycle = d.cycleWait
			}
			measure(b, zkc, w, cycle, d.abort, d.finish)
		}
		sidecar := func(b *testing.B) {
			cycle := s.cycleEnd
			if w.waitDelete {
				cycle = s.cycleRelease
			}
			measure(b, zkc, w, cycle, s.abort, s.finish)
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

// measure runs b.N cycles (runCallers), waits for the side to settle
// (finish) and reports w's metrics: the ZooKeeper requests per cycle from
// the servers' packet counts around it, if asked.
func measure(b *testing.B, zkc *zktest.Cluster, w workload, cycle func(int) error, abort func(error), finish func(*testing.B)) {
	before, cpuBefore := packets(b, zkc, w.zkRequests), zkCPU(b, zkc, w.zkRequests)
	runCallers(b, w, cycle, abort)
	finish(b)
	if w.zkRequests {
		b.ReportMetric(float64(packets(b, zkc, true)-before)/float64(b.N), "zkreq/cycle")
		b.ReportMetric(float64((zkCPU(b, zkc, true)-cpuBefore).Microseconds())/float64(b.N), "zk-cpu-us/cycle")
	}
}

// zkCPU returns the CPU time the ZooKeeper servers' processes used so far
// (user and system, from /proc), if asked.
func zkCPU(b *testing.B, zkc *zktest.Cluster, ask bool) time.Duration {
	if !ask {
		return 0
	}
	var ticks int64
	for i := range zkc.Size() {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", zkc.Server(i).PID()))
		if err != nil {
			b.Fatal(err)
		}
		// The fields after the command's closing parenthesis; utime and
		// stime are the 12th and 13th of them.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		for _, k := range []int{11, 12} {
			n, err := strconv.ParseInt(f[k], 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// packets returns the requests the ZooKeeper servers received so far
// (mntr's zk_packets_received, summed), if asked.
func packets(b *testing.B, zkc *zktest.Cluster, ask bool) int64 {
	if !ask {
		return 0
	}
	var sum int64
	for i := range zkc.Size() {
		n, err := zktest.PacketsReceived(zkc.Server(i).Addr())
		if err != nil {
			b.Fatal(err)
		}
		sum += n
	}
	return sum
}

// runCallers starts w.callers callers, each a goroutine calling cycle with
// its own index, until b.N cycles are done in all; then it stops the timer
// and reports handoffs/s (one lock) or cycles/s (several), or the median
// cycle time. A cycle's error goes to abort, which must record it and
// unblock every caller.
func runCallers(b *testing.B, w workload, cycle func(caller int) error, abort func(error)) {
	total := int64(b.N)
	var claimed atomic.Int64
	var wg sync.WaitGroup
	var times []time.Duration // one caller's cycle times, for p50
	b.ResetTimer()
	for i := range w.callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for claimed.Add(1) <= total {
				start := time.Now()
				if err := cycle(i); err != nil {
					claimed.Store(total)
					abort(err)
					return
				}
				if w.p50 && i == 0 {
					times = append(times, time.Since(start))
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	switch {
	case w.p50 && len(times) > 0:
		slices.Sort(times)
		b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns/cycle")
	case w.callers > 1 && w.locks == 1:
		b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "handoffs/s")
	case w.callers > 1:
		b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "cycles/s")
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

// directSide is w.callers programs embedding go-zookeeper, each with its
// own session, or goroutines of one program sharing one session
// (w.sharedSession); each caller has its own zk.Lock values (a zk.Lock is
// not safe for concurrent use), on lock path i%w.locks.
type directSide struct {
	conns   []*zk.Conn     // caller i's session; the same one for all if shared
	locks   []*zk.Lock     // caller i's reusable lock, for cycleWait
	paths   []string       // caller i's lock path
	unlocks sync.WaitGroup // cycleNoWait's Unlocks
	err     firstErr
}

func newDirectSide(b *testing.B, zkAddr string, w workload, base string) *directSide {
	d := &directSide{}
	var shared *zk.Conn
	for i := range w.callers {
		conn := shared
		if conn == nil {
			conn = zktest.Client(b, zkAddr)
			if _, err := conn.Create("/direct", nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				b.Fatal(err)
			}
			if w.sharedSession {
				shared = conn
			}
		}
		p := fmt.Sprintf("%s-%d", base, i%w.locks)
		d.conns = append(d.conns, conn)
		d.paths = append(d.paths, p)
		d.locks = append(d.locks, zk.NewLock(conn, p, zk.WorldACL(zk.PermAll)))
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
	l := zk.NewLock(d.conns[i], d.paths[i], zk.WorldACL(zk.PermAll))
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

// sidecarSide is w.callers callers of w.sidecars sidecars (caller i uses
// sidecar i%w.sidecars), each caller with its own gRPC connection (as that
// many apps would have), on lock i%w.locks.
type sidecarSide struct {
	clients []zklockv1.LockServiceClient
	locks   []string // caller i's lock
	check   *zk.Conn // reads the locks' queues between runs
	ctx     context.Context
	cancel  context.CancelFunc
	err     firstErr
}

func newSidecarSide(b *testing.B, zkAddr string, w workload, base string) *sidecarSide {
	s := &sidecarSide{check: zktest.Client(b, zkAddr)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	b.Cleanup(s.cancel)
	var addrs []string
	for range w.sidecars {
		addrs = append(addrs, benchSidecar(b, zkAddr))
	}
	for i := range w.callers {
		conn, err := grpc.NewClient(addrs[i%len(addrs)], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		s.clients = append(s.clients, zklockv1.NewLockServiceClient(conn))
		s.locks = append(s.locks, fmt.Sprintf("%s-%d", base, i%w.locks))
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
	stream, err := s.clients[i].Acquire(ctx, &zklockv1.AcquireRequest{Lock: s.locks[i]})
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
// starts with empty queues.
func (s *sidecarSide) finish(b *testing.B) {
	if err := s.err.get(); err != nil {
		b.Fatal("sidecar: ", err)
	}
	zktest.Eventually(b, 30*time.Second, "the sidecar's lock queues are empty", func() bool {
		for _, l := range slices.Compact(slices.Sorted(slices.Values(s.locks))) {
			if len(zktest.Children(b, s.check, "/zklock/"+l)) != 0 {
				return false
			}
		}
		return true
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
