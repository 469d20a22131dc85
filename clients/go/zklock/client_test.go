package zklock_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zklock/zklock/clients/go/zklock"
	"github.com/zklock/zklock/internal/sidecartest"
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
	conn, err := zklock.Dial(sc.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return zklock.New(conn), sc.Stop
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
	l.Release(ctx) // closes the stream; the error does not matter
}
