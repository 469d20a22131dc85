package zkrecipes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/zktest"
)

// heardWithin bounds how long after a change of its position a waiter may
// hear of it. The promise is about a second: the poller looks every
// positionPoll (0.5 s), then reads the queue, a few milliseconds here. The
// other half second covers a loaded 2-core machine under -race; without
// the poller a change the waiter's watch does not see is never heard.
const heardWithin = 1500 * time.Millisecond

// place is one OnQueued call.
type place struct {
	pos, n int
	at     time.Time
}

func (p place) String() string { return fmt.Sprintf("%d of %d", p.pos, p.n) }

// pollerCount returns how many position pollers run.
func (s *Session) pollerCount() int {
	p := &s.positions
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pollers)
}

// TestQueuedFollowsEveryChangeAhead is issue 12's queue [holder, A, B, C,
// me], the nodes made by other sessions: every node ahead of me that goes
// changes my position, and I hear each new position within heardWithin
// whether it is the node I watch (C) or not (A, the holder), with no
// watch on the lock node's children and one poller for the lock node.
func TestQueuedFollowsEveryChangeAhead(t *testing.T) {
	zkc := startZK(t)
	servers := zkc.ConnectString()
	ins := zktest.Client(t, servers)
	const lockPath = "/zklock/queued"
	ctx := ctxFor(t, 2*time.Minute)

	holder, err := newSession(t, servers, 10*time.Second).Lock(ctx, lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// waiter queues a Lock of s and returns once its node is in the queue.
	type waiter struct {
		cancel context.CancelFunc
		done   chan error
		hold   chan *Hold
	}
	joined := 1
	queueWaiter := func(s *Session) *waiter {
		t.Helper()
		wctx, cancel := context.WithCancel(ctx)
		w := &waiter{cancel: cancel, done: make(chan error, 1), hold: make(chan *Hold, 1)}
		go func() {
			h, err := s.Lock(wctx, lockPath, LockOptions{})
			if err == nil {
				w.hold <- h
			}
			w.done <- err
		}()
		joined++
		zktest.Eventually(t, 10*time.Second, "the waiter's node is created", func() bool {
			return len(zktest.Children(t, ins, lockPath)) == joined
		})
		return w
	}
	s2, s3 := newSession(t, servers, 10*time.Second), newSession(t, servers, 10*time.Second)
	a, b, c := queueWaiter(s2), queueWaiter(s3), queueWaiter(s2)

	me := newSession(t, servers, 10*time.Second)
	heard := make(chan place, 16)
	granted := make(chan *Hold, 1)
	lockErr := make(chan error, 1)
	go func() {
		h, err := me.Lock(ctx, lockPath, LockOptions{OnQueued: func(pos, n int) { heard <- place{pos, n, time.Now()} }})
		if err != nil {
			lockErr <- err
			return
		}
		granted <- h
	}()
	next := func(step string, from time.Time, want place) {
		t.Helper()
		select {
		case p := <-heard:
			if p.pos != want.pos || p.n != want.n {
				t.Fatalf("%s: heard %v, want %v", step, p, want)
			}
			t.Logf("%s: heard %v after %v", step, p, p.at.Sub(from).Round(time.Millisecond))
			if d := p.at.Sub(from); d > heardWithin {
				t.Errorf("%s: heard %v after %v, want within %v", step, p, d, heardWithin)
			}
		case err := <-lockErr:
			t.Fatalf("%s: Lock: %v", step, err)
		case <-time.After(heardWithin):
			t.Fatalf("%s: nothing heard within %v, want %v", step, heardWithin, want)
		}
	}
	select {
	case p := <-heard:
		if p.pos != 4 || p.n != 5 {
			t.Fatalf("join: heard %v, want 4 of 5", p)
		}
	case err := <-lockErr:
		t.Fatalf("my Lock: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("nothing heard 10 s after joining")
	}

	start := time.Now()
	a.cancel()
	next("A cancelled", start, place{pos: 3, n: 4})
	if err := <-a.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("A's Lock = %v, want context.Canceled", err)
	}
	if n := me.pollerCount(); n != 1 {
		t.Errorf("%d position pollers for one lock node, want 1", n)
	}
	// wchp lists data watches only; zk_watch_count counts children
	// watches too.
	watched := watchedPaths(t, zkc.Servers()[0])
	if slices.Contains(watched, lockPath) || len(watched) == 0 || watchCount(t, zkc.Servers()[0]) != len(watched) {
		t.Errorf("watched paths %v (%d watches in all), want no watch on the lock node %s (no child watch), only on contenders' nodes",
			watched, watchCount(t, zkc.Servers()[0]), lockPath)
	}

	start = time.Now()
	c.cancel() // the node I watch
	next("C cancelled", start, place{pos: 2, n: 3})

	start = time.Now()
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}
	next("holder released", start, place{pos: 1, n: 2})

	var hb *Hold
	select {
	case hb = <-b.hold:
	case <-time.After(10 * time.Second):
		t.Fatal("B not granted after the holder released")
	}
	start = time.Now()
	if err := hb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// My watch on B sees it go: I read the queue, find myself at the head,
	// say so and am granted.
	next("B released", start, place{pos: 0, n: 1})
	var h *Hold
	select {
	case h = <-granted:
	case err := <-lockErr:
		t.Fatalf("my Lock: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not granted after B released")
	}
	// Nothing else was heard: no position twice, none out of order.
	close(heard)
	for p := range heard {
		t.Errorf("heard %v after the last change, want nothing", p)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	zktest.Eventually(t, 5*time.Second, "the poller ends with its last waiter", func() bool {
		return me.pollerCount() == 0
	})
	if err := <-c.done; !errors.Is(err, context.Canceled) {
		t.Errorf("C's Lock = %v, want context.Canceled", err)
	}
}

// TestOnePollerPerLockNode: many waiters of one Session on one lock node
// share one poller, which reads the queue only when it changed, and every
// waiter hears its new position when the head leaves, though only the
// first waiter's watch sees it. The poller ends with its last waiter.
func TestOnePollerPerLockNode(t *testing.T) {
	zkc := startZK(t)
	servers := zkc.ConnectString()
	const lockPath = "/zklock/pollers"
	ctx := ctxFor(t, 2*time.Minute)
	holder, err := newSession(t, servers, 10*time.Second).Lock(ctx, lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, servers, 10*time.Second)
	const waiters = 20
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		heard  = make([][]place, waiters) // by the order the waiters joined in
		joined = make(chan int, waiters)
		errs   = make(chan error, waiters)
	)
	for i := range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := s.Lock(wctx, lockPath, LockOptions{OnQueued: func(pos, n int) {
				mu.Lock()
				heard[i] = append(heard[i], place{pos, n, time.Now()})
				first := len(heard[i]) == 1
				mu.Unlock()
				if first {
					joined <- pos
				}
			}})
			switch {
			case err == nil && i == 0:
				<-wctx.Done() // hold until the end
				h.Release(context.Background())
			case err == nil:
				errs <- fmt.Errorf("waiter %d granted, want only the first", i)
				h.Release(context.Background())
			case !errors.Is(err, context.Canceled):
				errs <- fmt.Errorf("waiter %d: %w", i, err)
			}
		}()
		// One at a time, so that waiter i is at position i+1.
		select {
		case pos := <-joined:
			if pos != i+1 {
				t.Fatalf("waiter %d joined at position %d, want %d", i, pos, i+1)
			}
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatalf("waiter %d heard nothing 10 s after Lock", i)
		}
	}
	if n := s.pollerCount(); n != 1 {
		t.Errorf("%d position pollers for one lock node, want 1", n)
	}
	// A quiet queue: the poller looks, but reads the queue at most once
	// (its first look).
	looks, reads := s.positions.looks.Load(), s.positions.reads.Load()
	zktest.Eventually(t, 10*time.Second, "the poller looks 4 times", func() bool {
		return s.positions.looks.Load() >= looks+4
	})
	if r := s.positions.reads.Load() - reads; r > 1 {
		t.Errorf("%d queue reads by the poller while the queue did not change, want at most 1", r)
	}

	start := time.Now()
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}
	zktest.Eventually(t, 10*time.Second, "every waiter hears it moved up", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := 1; i < waiters; i++ {
			if last := heard[i][len(heard[i])-1]; last.pos != i {
				return false
			}
		}
		return true
	})
	mu.Lock()
	for i := range waiters {
		// Waiter 0 is granted by its watch, without a position on the way;
		// the others hear they moved up by one, in a queue of the waiters.
		want := []string{place{pos: i + 1, n: i + 2}.String()}
		if i > 0 {
			want = append(want, place{pos: i, n: waiters}.String())
		}
		var got []string
		for _, p := range heard[i] {
			got = append(got, p.String())
		}
		if !slices.Equal(got, want) {
			t.Errorf("waiter %d heard %v, want %v", i, got, want)
		}
		if d := heard[i][len(heard[i])-1].at.Sub(start); i > 0 && d > heardWithin {
			t.Errorf("waiter %d heard its new position %v after the release, want within %v", i, d, heardWithin)
		}
	}
	mu.Unlock()
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	zktest.Eventually(t, 5*time.Second, "the poller ends with its last waiter", func() bool {
		return s.pollerCount() == 0
	})
}

// TestPollerEndsWithSession: closing a Session ends its pollers, and the
// waiting Lock calls return ErrClosed.
func TestPollerEndsWithSession(t *testing.T) {
	zkc := startZK(t)
	servers := zkc.ConnectString()
	const lockPath = "/zklock/close"
	ctx := ctxFor(t, time.Minute)
	if _, err := newSession(t, servers, 10*time.Second).Lock(ctx, lockPath, LockOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := Connect(Config{Servers: zkc.Servers(), SessionTimeout: 10 * time.Second, Logger: zktest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitEpoch(t, s, 0)
	queued := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, err := s.Lock(ctx, lockPath, LockOptions{OnQueued: func(int, int) {
			select {
			case queued <- struct{}{}:
			default:
			}
		}})
		done <- err
	}()
	<-queued
	zktest.Eventually(t, 5*time.Second, "the poller runs", func() bool { return s.pollerCount() == 1 })
	s.Close()
	if n := s.pollerCount(); n != 0 {
		t.Errorf("%d pollers after Close, want 0", n)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Lock = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Lock still waiting 10 s after Close")
	}
}
