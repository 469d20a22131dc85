package gotest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/zklock/zklock/clients/go/zklock"
	"github.com/zklock/zklock/internal/sidecartest"
	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startSidecar runs an in-process zklockd against a real ZooKeeper and
// returns a client of it and a function that shuts the sidecar down.
func startSidecar(t *testing.T) (*zklock.Client, func()) {
	t.Helper()
	sc := sidecartest.Start(t, zktest.StartStandalone(t).ConnectString())
	return dial(t, sc.Addr), sc.Stop
}

func TestLockTryLockRelease(t *testing.T) {
	c, _ := startSidecar(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var positions []int
	a, err := c.Lock(ctx, "orders/42", zklock.Owner("a"), zklock.OnQueued(func(pos, n int) { positions = append(positions, pos) }))
	if err != nil {
		t.Fatal(err)
	}
	if len(positions) != 1 || positions[0] != 0 {
		t.Errorf("OnQueued positions %v, want [0]", positions)
	}
	if _, err := c.TryLock(ctx, "orders/42"); !errors.Is(err, zklock.ErrLocked) {
		t.Fatalf("TryLock of a held lock = %v, want ErrLocked", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := c.TryLock(ctx, "orders/42")
	if err != nil {
		t.Fatalf("TryLock of a free lock: %v", err)
	}
	if b.Token() <= a.Token() {
		t.Errorf("token %d not above %d", b.Token(), a.Token())
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Lost():
		t.Errorf("released lease reported lost: %v", b.Err())
	default:
	}
}

func TestCancelledWaitLeavesQueue(t *testing.T) {
	c, _ := startSidecar(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := c.Lock(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	queued := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Lock(wctx, "q", zklock.OnQueued(func(int, int) { close(queued) }))
		done <- err
	}()
	<-queued
	wcancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Lock = %v, want context.Canceled", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// The cancelled waiter left the queue: the lock is free.
	zktest.Eventually(t, 10*time.Second, "lock free after the waiter left", func() bool {
		l, err := c.TryLock(ctx, "q")
		if err != nil {
			return false
		}
		l.Release(ctx)
		return true
	})
}

func TestLeaseLostWhenSidecarStops(t *testing.T) {
	c, stop := startSidecar(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := c.Lock(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	select {
	case <-l.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("lease not lost after the sidecar stopped")
	}
	if err := l.Err(); !errors.Is(err, zklock.ErrLost) || !strings.Contains(err.Error(), "SHUTDOWN") {
		t.Errorf("Err() = %v, want ErrLost naming SHUTDOWN", err)
	}
	if _, err := l.Reenter(ctx); !errors.Is(err, zklock.ErrLost) {
		t.Errorf("Reenter of a lost lease = %v, want ErrLost", err)
	}
	if err := l.Release(ctx); !errors.Is(err, zklock.ErrLost) {
		t.Errorf("Release of a lost lease = %v, want ErrLost", err)
	}
}

// dial returns a client of the zklockd at addr, closed when the test ends.
func dial(t *testing.T, addr string, opts ...grpc.DialOption) *zklock.Client {
	t.Helper()
	conn, err := zklock.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return zklock.New(conn)
}

func TestShared(t *testing.T) {
	t.Parallel()
	c, _ := startSidecar(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	a, err := c.Lock(ctx, "shared", zklock.Shared())
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.TryLock(ctx, "shared", zklock.Shared())
	if err != nil {
		t.Fatalf("TryLock(Shared) while another shared holder holds: %v, want granted at once", err)
	}
	if _, err := c.TryLock(ctx, "shared"); !errors.Is(err, zklock.ErrLocked) {
		t.Fatalf("exclusive TryLock while shared holders hold = %v, want ErrLocked", err)
	}

	// An exclusive waiter waits for both shared holders, and a shared
	// contender behind it waits for it.
	positions := make(chan int, 10)
	exclusive := make(chan *zklock.Lease, 1)
	failed := make(chan error, 1)
	go func() {
		l, err := c.Lock(ctx, "shared", zklock.OnQueued(func(pos, _ int) { positions <- pos }))
		if err != nil {
			failed <- err
			return
		}
		exclusive <- l
	}()
	nextPosition := func(want int) {
		t.Helper()
		select {
		case pos := <-positions:
			if pos != want {
				t.Fatalf("exclusive waiter at position %d, want %d", pos, want)
			}
		case err := <-failed:
			t.Fatalf("exclusive Lock: %v", err)
		case <-ctx.Done():
			t.Fatalf("exclusive waiter not at position %d", want)
		}
	}
	nextPosition(2)
	if _, err := c.TryLock(ctx, "shared", zklock.Shared()); !errors.Is(err, zklock.ErrLocked) {
		t.Errorf("shared TryLock behind an exclusive waiter = %v, want ErrLocked", err)
	}
	// b is the node the waiter watches: once it goes, the waiter looks
	// again, and is told its new place rather than granted.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	nextPosition(1)
	select {
	case <-exclusive:
		t.Fatal("exclusive granted while a shared holder holds")
	default:
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	var e *zklock.Lease
	select {
	case e = <-exclusive:
	case err := <-failed:
		t.Fatalf("exclusive Lock: %v", err)
	case <-ctx.Done():
		t.Fatal("exclusive waiter not granted after both shared holders released")
	}
	if e.Token() <= max(a.Token(), b.Token()) {
		t.Errorf("exclusive token %d not above the shared holders' %d and %d", e.Token(), a.Token(), b.Token())
	}
	if err := e.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestWaitRunsOut(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	sc := sidecartest.Start(t, zkc.ConnectString())
	c := dial(t, sc.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	holder, err := c.Lock(ctx, "bounded")
	if err != nil {
		t.Fatal(err)
	}
	const wait = 500 * time.Millisecond
	queued := false
	start := time.Now()
	_, err = c.Lock(ctx, "bounded", zklock.Wait(wait), zklock.OnQueued(func(pos, _ int) { queued = queued || pos == 1 }))
	if !errors.Is(err, zklock.ErrNotGranted) {
		t.Fatalf("Lock with Wait(%v) on a held lock = %v, want ErrNotGranted", wait, err)
	}
	if d := time.Since(start); d < wait {
		t.Errorf("the wait ended after %v, before Wait's %v", d, wait)
	}
	if !queued {
		t.Error("the waiter was never queued behind the holder")
	}
	zkc2 := zktest.Client(t, zkc.ConnectString())
	zktest.Eventually(t, 10*time.Second, "the waiter's node is gone", func() bool {
		return len(zktest.Children(t, zkc2, "/zklock/bounded")) == 1
	})

	// A wait that the ctx's deadline ends is the same error, and still
	// the ctx's.
	dctx, dcancel := context.WithTimeout(ctx, wait)
	defer dcancel()
	_, err = c.Lock(dctx, "bounded")
	if !errors.Is(err, zklock.ErrNotGranted) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock until ctx's deadline on a held lock = %v, want ErrNotGranted and context.DeadlineExceeded", err)
	}
	// A cancelled wait is not "not granted in time".
	cctx, ccancel := context.WithCancel(ctx)
	time.AfterFunc(wait, ccancel)
	if _, err = c.Lock(cctx, "bounded"); !errors.Is(err, context.Canceled) || errors.Is(err, zklock.ErrNotGranted) {
		t.Fatalf("Lock until ctx is cancelled on a held lock = %v, want context.Canceled only", err)
	}
	zktest.Eventually(t, 10*time.Second, "the waiters' nodes are gone", func() bool {
		return len(zktest.Children(t, zkc2, "/zklock/bounded")) == 1
	})
	select {
	case <-holder.Lost():
		t.Fatalf("holder lost: %v", holder.Err())
	default:
	}
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOnSuspended stalls the sidecar's ZooKeeper connection: the holder is
// told the lock may be lost (OnSuspended(true)), and once the connection
// passes again before the session could expire, that it holds it still
// (OnSuspended(false)).
func TestOnSuspended(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	proxy, err := tcpproxy.New(zkc.Servers()[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close) // after the sidecar's shutdown, which needs ZooKeeper
	// Holders are suspended after a third of the session timeout without
	// contact and lost after three quarters of it: 20 s leaves 8 s between.
	sc := sidecartest.StartWith(t, proxy.Addr(), sidecartest.Options{SessionTimeout: 20 * time.Second})
	c := dial(t, sc.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	suspended := make(chan bool, 10)
	l, err := c.Lock(ctx, "suspend", zklock.OnSuspended(func(s bool) { suspended <- s }))
	if err != nil {
		t.Fatal(err)
	}
	next := func(want bool) {
		t.Helper()
		select {
		case s := <-suspended:
			if s != want {
				t.Fatalf("OnSuspended(%v), want OnSuspended(%v)", s, want)
			}
		case <-l.Lost():
			t.Fatalf("lease lost (%v), want OnSuspended(%v)", l.Err(), want)
		case <-time.After(30 * time.Second):
			t.Fatalf("no OnSuspended(%v) after 30s", want)
		}
	}
	proxy.SetMode(tcpproxy.Stall)
	next(true)
	proxy.SetMode(tcpproxy.Pass)
	next(false)
	select {
	case <-l.Lost():
		t.Fatalf("lease lost: %v", l.Err())
	default:
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release after the session survived: %v", err)
	}
}

// TestKeepaliveFindsFrozenSidecar stalls the connection between the client
// and the sidecar, as a sidecar that froze (SIGSTOP, a stuck host) looks to
// the client: only the connection's keepalive pings can tell, and the
// lease must report the loss within their time and timeout.
func TestKeepaliveFindsFrozenSidecar(t *testing.T) {
	t.Parallel()
	sc := sidecartest.Start(t, zktest.StartStandalone(t).ConnectString())
	proxy, err := tcpproxy.New(sc.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	// gRPC clients ping no more often than every 10 s; the sidecar's
	// keepalive EnforcementPolicy allows every 5 s.
	kp := keepalive.ClientParameters{Time: 10 * time.Second, Timeout: time.Second, PermitWithoutStream: true}
	c := dial(t, proxy.Addr(), grpc.WithKeepaliveParams(kp))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := c.Lock(ctx, "frozen")
	if err != nil {
		t.Fatal(err)
	}
	proxy.SetMode(tcpproxy.Stall)
	stalled := time.Now()
	// A ping goes out at most Time after the last bytes read, and fails
	// Timeout later; the rest is slack for a loaded machine.
	bound := kp.Time + kp.Timeout + 10*time.Second
	select {
	case <-l.Lost():
	case <-time.After(bound):
		t.Fatalf("lease not lost %v after its sidecar froze", bound)
	}
	t.Logf("lost after %v: %v", time.Since(stalled), l.Err())
	if err := l.Err(); !errors.Is(err, zklock.ErrLost) {
		t.Errorf("Err() = %v, want ErrLost", err)
	}
	// The sidecar, reachable again, would answer that the lease was
	// released (its stream ended): the client saw the loss and must say so.
	proxy.SetMode(tcpproxy.Pass)
	if err := l.Release(ctx); !errors.Is(err, zklock.ErrLost) {
		t.Errorf("Release of a lease seen lost = %v, want ErrLost", err)
	}
}

// TestReenter: a lease re-entered is granted at once with the same fencing
// token and an id of its own, and the lock stays held until every lease
// that holds it has been released.
func TestReenter(t *testing.T) {
	t.Parallel()
	c, _ := startSidecar(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	a, err := c.Lock(ctx, "reenter", zklock.Owner("a"))
	if err != nil {
		t.Fatal(err)
	}
	queued := false
	b, err := a.Reenter(ctx, zklock.OnQueued(func(int, int) { queued = true }))
	if err != nil {
		t.Fatalf("Reenter of a held lease: %v", err)
	}
	if queued {
		t.Error("a re-entry was queued, want it granted at once")
	}
	// A re-entry by the id alone (as from another process), through a
	// lease that is itself a re-entry.
	d, err := c.Lock(ctx, "reenter", zklock.Reenter(b.ID()))
	if err != nil {
		t.Fatalf("Lock with Reenter(id of a re-entered lease): %v", err)
	}
	ids := map[string]bool{a.ID(): true, b.ID(): true, d.ID(): true}
	if len(ids) != 3 {
		t.Errorf("lease ids %q %q %q, want three different ones", a.ID(), b.ID(), d.ID())
	}
	for _, l := range []*zklock.Lease{b, d} {
		if l.Token() != a.Token() || l.Name() != "reenter" {
			t.Errorf("re-entered lease of %q with token %d, want %q and the first lease's %d", l.Name(), l.Token(), "reenter", a.Token())
		}
	}

	if h, err := c.Leader(ctx, "reenter"); err != nil || h.Owner != "a" || h.Token != a.Token() || h.Reentered != 2 {
		t.Errorf("Leader = %+v, %v; want a with token %d, re-entered twice", h, err, a.Token())
	}

	// Errors, which leave the leases as they were.
	if _, err := c.Lock(ctx, "another", zklock.Reenter(a.ID())); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Reenter of a lease of another lock = %v, want InvalidArgument", err)
	}
	if _, err := c.Lock(ctx, "reenter", zklock.Reenter("not a lease id")); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Reenter of a malformed lease id = %v, want InvalidArgument", err)
	}
	if _, err := a.Reenter(ctx, zklock.Permits(3)); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Reenter of a lock asking for 3 permits = %v, want FailedPrecondition", err)
	}

	// The lock is held until the last of the three leases is released,
	// whichever order they go in.
	for _, l := range []*zklock.Lease{a, d, b} {
		if _, err := c.TryLock(ctx, "reenter"); !errors.Is(err, zklock.ErrLocked) {
			t.Fatalf("TryLock while re-entered leases hold = %v, want ErrLocked", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Reenter(ctx); status.Code(err) != codes.NotFound {
		t.Errorf("Reenter of a released lease = %v, want NotFound", err)
	}
	e, err := c.TryLock(ctx, "reenter")
	if err != nil {
		t.Fatalf("TryLock once every lease was released: %v", err)
	}
	if e.Token() <= a.Token() {
		t.Errorf("next holder's token %d not above %d", e.Token(), a.Token())
	}
	if err := e.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSemaphore: Permits(3) admits three holders at once, each with a
// token of its own; a fourth waits until one of them releases, and a
// contender that asks for another number of permits is refused.
func TestSemaphore(t *testing.T) {
	t.Parallel()
	c, _ := startSidecar(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var held []*zklock.Lease
	for range 3 {
		l, err := c.TryLock(ctx, "pool", zklock.Permits(3))
		if err != nil {
			t.Fatalf("TryLock of semaphore of 3 with %d holders: %v", len(held), err)
		}
		if len(held) > 0 && l.Token() <= held[len(held)-1].Token() {
			t.Errorf("holder %d's token %d not above the previous one's %d", len(held), l.Token(), held[len(held)-1].Token())
		}
		held = append(held, l)
	}
	if _, err := c.TryLock(ctx, "pool", zklock.Permits(3)); !errors.Is(err, zklock.ErrLocked) {
		t.Fatalf("TryLock of a semaphore of 3 with 3 holders = %v, want ErrLocked", err)
	}
	_, err := c.TryLock(ctx, "pool", zklock.Permits(5))
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "3 permits") || !strings.Contains(err.Error(), "5 permits") {
		t.Errorf("TryLock of a semaphore of 3 asking for 5 permits = %v, want FailedPrecondition naming 3 and 5 permits", err)
	}
	if _, err := c.TryLock(ctx, "pool"); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("TryLock of a semaphore as a lock = %v, want FailedPrecondition", err)
	}
	for _, bad := range [][]zklock.Option{{zklock.Permits(-1)}, {zklock.Permits(1000001)}, {zklock.Permits(2), zklock.Shared()}} {
		if _, err := c.TryLock(ctx, "pool-bad", bad...); status.Code(err) != codes.InvalidArgument {
			t.Errorf("TryLock with bad permits = %v, want InvalidArgument", err)
		}
	}

	queued := make(chan struct{}, 10)
	fourth := make(chan *zklock.Lease, 1)
	failed := make(chan error, 1)
	go func() {
		l, err := c.Lock(ctx, "pool", zklock.Permits(3), zklock.OnQueued(func(int, int) { queued <- struct{}{} }))
		if err != nil {
			failed <- err
			return
		}
		fourth <- l
	}()
	select {
	case <-queued:
	case err := <-failed:
		t.Fatalf("fourth Lock: %v", err)
	case <-ctx.Done():
		t.Fatal("fourth contender never queued")
	}
	select {
	case <-fourth:
		t.Fatal("fourth contender granted while 3 of 3 permits are held")
	default:
	}
	if err := held[1].Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-fourth:
		if l.Token() <= held[2].Token() {
			t.Errorf("fourth holder's token %d not above the third's %d", l.Token(), held[2].Token())
		}
		held = append(held, l)
	case err := <-failed:
		t.Fatalf("fourth Lock: %v", err)
	case <-ctx.Done():
		t.Fatal("fourth contender not granted after a holder released")
	}
	for _, l := range []*zklock.Lease{held[0], held[2], held[3]} {
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// observer runs Observe on name until the test ends, and returns the
// states it reports, one at a time.
func observer(t *testing.T, c *zklock.Client, name string) (next func() zklock.State, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	states := make(chan zklock.State, 100)
	done := make(chan struct{})
	var err error // Observe's, once done is closed
	go func() {
		defer close(done)
		err = c.Observe(ctx, name, func(s zklock.State) error {
			select {
			case states <- s:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		<-done
		if len(states) > 0 {
			t.Errorf("Observe reported %d more states than expected, the first %+v", len(states), <-states)
		}
		return err
	}
	t.Cleanup(func() { stop() })
	next = func() zklock.State {
		t.Helper()
		select {
		case s := <-states:
			return s
		case <-done:
			t.Fatalf("Observe ended: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("no state from Observe in 20 s")
		}
		return zklock.State{}
	}
	return next, stop
}

// owners returns the owners of s's holders.
func owners(s zklock.State) []string {
	var o []string
	for _, h := range s.Holders {
		o = append(o, h.Owner)
	}
	return o
}

// TestObserve: Observe reports the present holders, then each change of
// them, with the holders' owners and tokens, and no state that was not.
func TestObserve(t *testing.T) {
	t.Parallel()
	c, _ := startSidecar(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	next, stop := observer(t, c, "watched")
	if s := next(); len(s.Holders) != 0 || s.QueueLength != 0 || s.Permits != 0 {
		t.Fatalf("first state of a free lock %+v, want no holders", s)
	}
	a, err := c.Lock(ctx, "watched", zklock.Owner("a"))
	if err != nil {
		t.Fatal(err)
	}
	s := next()
	if l, ok := s.Leader(); !ok || len(s.Holders) != 1 || l.Owner != "a" || l.Token != a.Token() || l.Shared || l.Node == "" {
		t.Fatalf("state once a holds: %+v, want a alone with token %d", s, a.Token())
	}
	// A waiter changes no holder; the handoff to it is one change.
	queued := make(chan struct{}, 10)
	granted := make(chan *zklock.Lease, 1)
	failed := make(chan error, 1)
	go func() {
		l, err := c.Lock(ctx, "watched", zklock.Owner("b"), zklock.OnQueued(func(int, int) { queued <- struct{}{} }))
		if err != nil {
			failed <- err
			return
		}
		granted <- l
	}()
	select {
	case <-queued:
	case err := <-failed:
		t.Fatal(err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	var b *zklock.Lease
	select {
	case b = <-granted:
	case err := <-failed:
		t.Fatal(err)
	}
	if s := next(); len(s.Holders) != 1 || s.Holders[0].Owner != "b" || s.Holders[0].Token != b.Token() {
		t.Fatalf("state after the handoff to b: %+v, want b alone with token %d", s, b.Token())
	}
	// A re-entry changes no holder either: the lock is free once b and
	// its re-entry are both released.
	r, err := b.Reenter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if s := next(); len(s.Holders) != 0 {
		t.Fatalf("state once b and its re-entry released: %+v, want no holders", s)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Observe after its context was cancelled = %v, want context.Canceled", err)
	}

	t.Run("a semaphore's holders and permits", func(t *testing.T) {
		next, _ := observer(t, c, "watched-pool")
		next()
		var held []*zklock.Lease
		for _, o := range []string{"x", "y"} {
			l, err := c.Lock(ctx, "watched-pool", zklock.Permits(2), zklock.Owner(o))
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, l)
			s := next()
			if got := owners(s); !slices.Equal(got, []string{"x", "y"}[:len(held)]) || s.Permits != 2 {
				t.Fatalf("holders %q, permits %d; want %q and 2", got, s.Permits, []string{"x", "y"}[:len(held)])
			}
		}
		for _, l := range held {
			if err := l.Release(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// y alone may be seen between the two releases, or not.
		for s := next(); len(s.Holders) > 0; s = next() {
			if got := owners(s); !slices.Equal(got, []string{"y"}) {
				t.Fatalf("holders %q while releasing, want [y] or none", got)
			}
		}
	})

	t.Run("f's error ends it", func(t *testing.T) {
		errStop := errors.New("stop")
		calls := 0
		err := c.Observe(ctx, "watched", func(zklock.State) error { calls++; return errStop })
		if !errors.Is(err, errStop) || calls != 1 {
			t.Errorf("Observe = %v after %d calls, want f's error after 1", err, calls)
		}
	})

	t.Run("a bad name", func(t *testing.T) {
		err := c.Observe(ctx, "/bad/", func(zklock.State) error { return nil })
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("Observe of a bad name = %v, want InvalidArgument", err)
		}
	})
}

// TestElection: Campaign waits its turn to lead, Leader and ObserveLeader
// name the leader by the value it campaigned with, and releasing the
// lease resigns.
func TestElection(t *testing.T) {
	t.Parallel()
	c, _ := startSidecar(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if _, err := c.Leader(ctx, "election"); !errors.Is(err, zklock.ErrNoLeader) {
		t.Fatalf("Leader of an election nobody campaigns in = %v, want ErrNoLeader", err)
	}
	octx, ocancel := context.WithCancel(ctx)
	leaders := make(chan string, 10) // "" for none
	observed := make(chan error, 1)
	go func() {
		observed <- c.ObserveLeader(octx, "election", func(l zklock.Holder, ok bool) error {
			if ok != (l.Owner != "") {
				return fmt.Errorf("leader %+v, ok %v", l, ok)
			}
			leaders <- l.Owner
			return nil
		})
	}()
	nextLeader := func(want string) {
		t.Helper()
		select {
		case got := <-leaders:
			if got != want {
				t.Fatalf("ObserveLeader reported %q, want %q", got, want)
			}
		case err := <-observed:
			t.Fatalf("ObserveLeader ended: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatalf("ObserveLeader did not report %q in 20 s", want)
		}
	}
	nextLeader("")

	a, err := c.Campaign(ctx, "election", "10.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	nextLeader("10.0.0.1:8080")
	if l, err := c.Leader(ctx, "election"); err != nil || l.Owner != "10.0.0.1:8080" || l.Token != a.Token() {
		t.Errorf("Leader = %+v, %v; want 10.0.0.1:8080 with token %d", l, err, a.Token())
	}

	queued := make(chan struct{}, 10)
	elected := make(chan *zklock.Lease, 1)
	failed := make(chan error, 1)
	go func() {
		l, err := c.Campaign(ctx, "election", "10.0.0.2:8080", zklock.OnQueued(func(int, int) { queued <- struct{}{} }))
		if err != nil {
			failed <- err
			return
		}
		elected <- l
	}()
	select {
	case <-queued:
	case err := <-failed:
		t.Fatal(err)
	}
	if err := a.Release(ctx); err != nil { // resign
		t.Fatal(err)
	}
	var b *zklock.Lease
	select {
	case b = <-elected:
	case err := <-failed:
		t.Fatal(err)
	}
	nextLeader("10.0.0.2:8080")
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	nextLeader("")

	// Holders that come and go behind the leader change no leader: two
	// shared holders, the second leaving, report nothing until the first
	// leaves too.
	x, err := c.Campaign(ctx, "election", "x", zklock.Shared())
	if err != nil {
		t.Fatal(err)
	}
	nextLeader("x")
	y, err := c.Campaign(ctx, "election", "y", zklock.Shared())
	if err != nil {
		t.Fatal(err)
	}
	if err := y.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := x.Release(ctx); err != nil {
		t.Fatal(err)
	}
	nextLeader("")

	ocancel()
	if err := <-observed; !errors.Is(err, context.Canceled) {
		t.Errorf("ObserveLeader after its context was cancelled = %v, want context.Canceled", err)
	}
	if len(leaders) > 0 {
		t.Errorf("ObserveLeader reported a leader more: %q", <-leaders)
	}
}

// TestDetachedLease: a detached lease outlives its call and is kept by
// KeepAlive well past its ttl; another client releases it by its id; one
// left without renewals is lost within its ttl, and Renew says so.
func TestDetachedLease(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	sc := sidecartest.Start(t, zkc.ConnectString())
	c, other := dial(t, sc.Addr), dial(t, sc.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const ttl = 2 * time.Second
	kept, err := c.Lock(ctx, "detached", zklock.Detach(ttl))
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(kept.ExpiresAt()) <= 0 || time.Until(kept.ExpiresAt()) > ttl+time.Second {
		t.Errorf("a detached lease of ttl %v expires in %v", ttl, time.Until(kept.ExpiresAt()))
	}
	kctx, kcancel := context.WithCancel(ctx)
	kept1 := make(chan error, 1)
	go func() { kept1 <- kept.KeepAlive(kctx) }()
	deadline := time.Now().Add(3 * ttl)
	for time.Now().Before(deadline) {
		if _, err := other.TryLock(ctx, "detached"); !errors.Is(err, zklock.ErrNotGranted) {
			t.Fatalf("TryLock while KeepAlive keeps a detached lease = %v, want ErrNotGranted", err)
		}
		time.Sleep(ttl / 2)
	}
	kcancel()
	if err := <-kept1; err != nil {
		t.Fatalf("KeepAlive = %v, want nil once its ctx ended", err)
	}
	if err := other.Release(ctx, kept.ID()); err != nil {
		t.Fatalf("Release by id from another client: %v", err)
	}
	free, err := other.TryLock(ctx, "detached")
	if err != nil {
		t.Fatalf("TryLock after the release by id: %v", err)
	}
	if err := free.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// KeepAlive of a lease released meanwhile ends without an error.
	again, err := c.Lock(ctx, "detached", zklock.Detach(ttl))
	if err != nil {
		t.Fatal(err)
	}
	kept2 := make(chan error, 1)
	go func() { kept2 <- again.KeepAlive(ctx) }()
	if err := again.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-kept2; err != nil {
		t.Fatalf("KeepAlive of a released lease = %v, want nil", err)
	}

	left, err := c.Lock(ctx, "detached", zklock.Detach(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	zkc2 := zktest.Client(t, zkc.ConnectString())
	zktest.Eventually(t, 20*time.Second, "the node of a detached lease without renewals is gone", func() bool {
		return len(zktest.Children(t, zkc2, "/zklock/detached")) == 0
	})
	if err := left.Renew(ctx); !errors.Is(err, zklock.ErrLost) {
		t.Fatalf("Renew of a lease past its ttl = %v, want ErrLost", err)
	}
	select {
	case <-left.Lost():
	default:
		t.Fatal("Renew found the lease lost, but Lost is open")
	}
	if err := left.KeepAlive(ctx); !errors.Is(err, zklock.ErrLost) {
		t.Errorf("KeepAlive of a lost lease = %v, want ErrLost", err)
	}
	if err := left.Release(ctx); !errors.Is(err, zklock.ErrLost) {
		t.Errorf("Release of a lost lease = %v, want ErrLost", err)
	}
	stream, err := c.Lock(ctx, "detached")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Renew(ctx); !errors.Is(err, zklock.ErrNotDetached) {
		t.Errorf("Renew of a stream-bound lease = %v, want ErrNotDetached", err)
	}
	if err := stream.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestKeepAliveLosesAnUnconfirmedLease: KeepAlive of a detached lease
// whose sidecar is gone declares it lost once its ttl has passed without a
// confirmed renew, rather than renewing in vain for ever.
func TestKeepAliveLosesAnUnconfirmedLease(t *testing.T) {
	t.Parallel()
	c, stop := startSidecar(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ttl = 2 * time.Second
	lease, err := c.Lock(ctx, "unconfirmed", zklock.Detach(ttl))
	if err != nil {
		t.Fatal(err)
	}
	kept := make(chan error, 1)
	go func() { kept <- lease.KeepAlive(ctx) }()
	stop()
	select {
	case err := <-kept:
		if !errors.Is(err, zklock.ErrLost) {
			t.Fatalf("KeepAlive without a sidecar = %v, want ErrLost", err)
		}
	case <-time.After(ttl + 10*time.Second):
		t.Fatalf("KeepAlive still renewing %v after the sidecar stopped (ttl %v)", ttl+10*time.Second, ttl)
	}
	select {
	case <-lease.Lost():
	default:
		t.Fatal("KeepAlive returned ErrLost, but Lost is open")
	}
	if time.Now().Before(lease.ExpiresAt()) {
		t.Errorf("lost at %v, before its expiry %v", time.Now(), lease.ExpiresAt())
	}
}
