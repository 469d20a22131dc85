package zklock_test

import (
	"context"
	"errors"
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
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Lock with Wait(%v) on a held lock = %v, want DeadlineExceeded", wait, err)
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
