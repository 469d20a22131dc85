package zkrecipes

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

// TestLocalHandoffGrantsBeforeTheDelete: a waiter queued right behind an
// exclusive hold of its own Session takes the lock as soon as that hold is
// released, before ZooKeeper has even received the delete (the connection
// is stalled), with a larger token; the node goes once ZooKeeper is in
// reach again. A waiter of another session, further back, is not granted
// meanwhile.
func TestLocalHandoffGrantsBeforeTheDelete(t *testing.T) {
	zkc := startZK(t)
	p := proxied(t, zkc.Servers()[0])
	s := newSession(t, p.Addr(), 20*time.Second)
	other := newSession(t, zkc.ConnectString(), 20*time.Second)
	ins := zktest.Client(t, zkc.ConnectString())
	const lockPath = "/zklock/handoff"

	h, err := s.Lock(ctxFor(t, 10*time.Second), lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	queued := make(chan int, 4)
	granted := make(chan *Hold, 1)
	go func() {
		w, err := s.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{OnQueued: func(pos, _ int) { queued <- pos }})
		if err != nil {
			t.Errorf("local waiter: %v", err)
		}
		granted <- w
	}()
	if pos := <-queued; pos != 1 {
		t.Fatalf("local waiter queued at %d, want 1", pos)
	}
	foreign := make(chan *Hold, 1)
	otherQueued := make(chan struct{})
	var once sync.Once
	go func() {
		f, err := other.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{OnQueued: func(int, int) { once.Do(func() { close(otherQueued) }) }})
		if err != nil {
			t.Errorf("other session's waiter: %v", err)
		}
		foreign <- f
	}()
	<-otherQueued
	// Stall only once the local waiter waits on its watch of the hold: its
	// watch is set in ZooKeeper, and the reply to the request that set it
	// has reached the Session (replies come in order: a later request's
	// reply comes after it). Until then it waits for that reply, and a
	// handoff is taken when the reply comes.
	zktest.Eventually(t, 10*time.Second, "the local waiter watches the hold", func() bool {
		return slices.Contains(watchedPaths(t, zkc.Servers()[0]), h.Path())
	})
	if _, err := s.conn().Sync(lockPath); err != nil {
		t.Fatal(err)
	}

	p.SetMode(tcpproxy.Stall)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = h.Release(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Release with ZooKeeper out of reach = %v, want the deadline: the delete cannot be confirmed", err)
	}
	var w *Hold
	select {
	case w = <-granted:
	case <-time.After(5 * time.Second):
		t.Fatal("local waiter not granted 5 s after the hold it watched was released")
	}
	if w == nil {
		t.FailNow()
	}
	if w.Token() <= h.Token() {
		t.Errorf("handed-off token %d not above the released hold's %d", w.Token(), h.Token())
	}
	if ok, _, err := ins.Exists(h.Path()); err != nil || !ok {
		t.Errorf("released node %s: exists %v (%v), want it still there: the handoff came before the delete", h.Path(), ok, err)
	}
	select {
	case <-foreign:
		t.Fatal("the other session's waiter was granted while the local waiter holds")
	case <-time.After(200 * time.Millisecond):
	}

	p.SetMode(tcpproxy.Pass)
	if err := h.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Errorf("Release once ZooKeeper is in reach: %v", err)
	}
	if err := w.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	f := <-foreign
	if f == nil {
		t.FailNow()
	}
	if f.Token() <= w.Token() {
		t.Errorf("other session's token %d not above the local waiter's %d", f.Token(), w.Token())
	}
	if err := f.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestNoHandoffOnceTheEpochEnded: a hold whose epoch ended by the own clock
// hands nothing on: its local waiter queues again in the next epoch.
func TestNoHandoffOnceTheEpochEnded(t *testing.T) {
	zkc := startZK(t)
	p := proxied(t, zkc.Servers()[0])
	const timeout = 4 * time.Second
	s := newSession(t, p.Addr(), timeout)
	const lockPath = "/zklock/nohandoff"
	h, err := s.Lock(ctxFor(t, 10*time.Second), lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	queued := make(chan struct{})
	granted := make(chan *Hold, 1)
	var once sync.Once
	go func() {
		w, err := s.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{OnQueued: func(int, int) { once.Do(func() { close(queued) }) }})
		if err != nil {
			t.Errorf("local waiter: %v", err)
		}
		granted <- w
	}()
	<-queued
	p.SetMode(tcpproxy.Stall)
	<-h.Done() // lost by the own clock
	h.Release(ctxFor(t, 100*time.Millisecond))
	select {
	case w := <-granted:
		if w != nil && w.Epoch() == h.Epoch() {
			t.Fatalf("waiter granted in the ended epoch by the lost hold's release")
		}
	case <-time.After(500 * time.Millisecond):
	}
	p.SetMode(tcpproxy.Pass)
	w := <-granted
	if w == nil {
		t.FailNow()
	}
	if w.Epoch() == h.Epoch() {
		t.Errorf("waiter granted in the epoch that ended")
	}
	if err := w.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestCancelledWaiterHandsNothingOn: only a released hold hands the lock
// on. A waiter of the Session that gives up, between the holder and
// another waiter of the Session, hands nothing on: the waiter behind it
// waits for the holder.
func TestCancelledWaiterHandsNothingOn(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 10*time.Second)
	const lockPath = "/zklock/cancelled"
	h, err := s.Lock(ctxFor(t, 10*time.Second), lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lock := func(ctx context.Context, queued chan<- struct{}, got chan<- *Hold) {
		var once sync.Once
		w, err := s.Lock(ctx, lockPath, LockOptions{OnQueued: func(int, int) { once.Do(func() { close(queued) }) }})
		if err != nil && ctx.Err() == nil {
			t.Errorf("Lock: %v", err)
		}
		got <- w
	}
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cQueued, cGot := make(chan struct{}), make(chan *Hold, 1)
	go lock(cctx, cQueued, cGot)
	<-cQueued
	wQueued, wGot := make(chan struct{}), make(chan *Hold, 1)
	go lock(ctxFor(t, time.Minute), wQueued, wGot)
	<-wQueued
	zktest.Eventually(t, 10*time.Second, "the last waiter watches the one before it", func() bool {
		s.handoffs.mu.Lock()
		defer s.handoffs.mu.Unlock()
		n := 0
		for _, r := range s.handoffs.m {
			n += r.watchers
		}
		return n == 2
	})
	cancel()
	if c := <-cGot; c != nil {
		t.Fatal("the cancelled waiter was granted")
	}
	select {
	case <-wGot:
		t.Fatal("the waiter behind a cancelled one was granted while the holder holds")
	case <-time.After(500 * time.Millisecond):
	}
	if err := h.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	w := <-wGot
	if w == nil {
		t.FailNow()
	}
	if err := w.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}
