package zkrecipes

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zklock/zklock/internal/zktest"
)

// TestSemaphoreAdmitsAtMostNInArrivalOrder: a semaphore of 3 with 8
// contenders on two Sessions never has more than 3 holders, and the 5 that
// wait are served in the order they came.
func TestSemaphoreAdmitsAtMostNInArrivalOrder(t *testing.T) {
	zkc := startZK(t)
	sessions := []*Session{newSession(t, zkc.ConnectString(), 4*time.Second), newSession(t, zkc.ConnectString(), 4*time.Second)}
	ctx := ctxFor(t, time.Minute)
	const semPath, permits = "/zklock/pool", 3
	var first []*Hold
	tokens := map[int64]bool{}
	for i := range permits {
		h, err := sessions[i%2].Semaphore(ctx, semPath, permits, LockOptions{TryOnce: true})
		if err != nil {
			t.Fatalf("holder %d: %v", i, err)
		}
		if tokens[h.Token()] {
			t.Errorf("holder %d has token %d, as another holder", i, h.Token())
		}
		tokens[h.Token()] = true
		first = append(first, h)
	}
	if _, err := sessions[0].Semaphore(ctx, semPath, permits, LockOptions{TryOnce: true}); !errors.Is(err, ErrHeld) {
		t.Fatalf("a fourth contender trying once: %v, want ErrHeld", err)
	}

	const waiters = 5
	var (
		holding, most atomic.Int32
		mu            sync.Mutex
		order         []int
		wg            sync.WaitGroup
		errs          = make(chan error, waiters)
	)
	holding.Store(permits)
	most.Store(permits)
	for i := range waiters {
		queued := make(chan struct{})
		var once sync.Once
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := sessions[i%2].Semaphore(ctx, semPath, permits, LockOptions{OnQueued: func(int, int) {
				once.Do(func() { close(queued) })
			}})
			if err != nil {
				errs <- err
				once.Do(func() { close(queued) })
				return
			}
			n := holding.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			holding.Add(-1)
			errs <- h.Release(ctx)
		}()
		<-queued
	}
	for _, h := range first {
		holding.Add(-1)
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if m := most.Load(); m > permits {
		t.Errorf("%d holders at once, want at most %d", m, permits)
	}
	if want := []int{0, 1, 2, 3, 4}; !slices.Equal(order, want) {
		t.Errorf("waiters served in order %v, want %v", order, want)
	}
}

// TestSemaphoreNodesAreCuratorV2s: the nodes are those of Curator's
// InterProcessSemaphoreV2: lease nodes _c_<uuid>-lease-<seq> under
// <path>/leases, its lock's nodes _c_<uuid>-lock-<seq> under <path>/locks
// (whatever the Session's layout), and <path>/leases records the permits.
func TestSemaphoreNodesAreCuratorV2s(t *testing.T) {
	zkc := startZK(t)
	s, err := Connect(Config{Servers: zkc.Servers(), SessionTimeout: 4 * time.Second, Layout: LayoutKazoo})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitEpoch(t, s, 0)
	other := newSession(t, zkc.ConnectString(), 4*time.Second)
	ctx := ctxFor(t, time.Minute)
	const semPath = "/zklock/layout"
	h, err := s.Semaphore(ctx, semPath, 2, LockOptions{Data: []byte("me")})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := other.Semaphore(ctx, semPath, 2, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		w, err := other.Semaphore(ctx, semPath, 2, LockOptions{})
		if err == nil {
			err = w.Release(ctx)
		}
		waiting <- err
	}()
	conn, _, err := zk.Connect(zkc.Servers(), 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lease := regexp.MustCompile(`^_c_[0-9a-f-]{36}-lease-\d{10}$`)
	lock := regexp.MustCompile(`^_c_[0-9a-f-]{36}-lock-\d{10}$`)
	var leases, locks []string
	zktest.Eventually(t, 20*time.Second, "the waiter holds the semaphore's lock and has its lease node", func() bool {
		leases, _, _ = conn.Children(semPath + "/leases")
		locks, _, _ = conn.Children(semPath + "/locks")
		// The waiter holds the lock and has its lease node.
		return len(leases) == 3 && len(locks) == 1
	})
	for _, l := range leases {
		if !lease.MatchString(l) {
			t.Errorf("lease node %q, want _c_<uuid>-lease-<seq>", l)
		}
	}
	if !lock.MatchString(locks[0]) {
		t.Errorf("lock node %q, want _c_<uuid>-lock-<seq>", locks[0])
	}
	data, _, err := conn.Get(h.Path())
	if err != nil || string(data) != "me" || !lease.MatchString(h.Path()[len(semPath+"/leases/"):]) {
		t.Errorf("holder's node %s has %q (%v), want a lease node with the owner's data", h.Path(), data, err)
	}
	if data, _, _ := conn.Get(semPath + "/leases"); string(data) != "permits=2" {
		t.Errorf("%s/leases has %q, want permits=2", semPath, data)
	}
	_, stat, _ := conn.Exists(h.Path())
	if stat == nil || stat.Czxid != h.Token() {
		t.Errorf("token %d, want the lease node's czxid %v", h.Token(), stat)
	}
	if err := h2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{semPath + "/leases", semPath + "/locks"} {
		if c, _, _ := conn.Children(p); len(c) != 0 {
			t.Errorf("%s still has %v after every release", p, c)
		}
	}
}

// TestSemaphorePermitsMustAgree: a contender asking for another number of
// permits than the holders', or a lock on a semaphore's name, or a
// semaphore on a lock's, is refused with a *PermitsError naming both
// numbers, and leaves no node; once the holders are gone, another number
// is taken.
func TestSemaphorePermitsMustAgree(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 4*time.Second)
	other := newSession(t, zkc.ConnectString(), 4*time.Second)
	ctx := ctxFor(t, time.Minute)
	conn, _, err := zk.Connect(zkc.Servers(), 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	count := func(p string) int {
		c, _, _ := conn.Children(p)
		return len(queue(c))
	}

	h, err := s.Semaphore(ctx, "/zklock/sem", 3, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pe *PermitsError
	_, err = other.Semaphore(ctx, "/zklock/sem", 5, LockOptions{})
	if !errors.As(err, &pe) || pe.Want != 5 || pe.Have != 3 {
		t.Errorf("semaphore of 5 on one of 3: %v, want PermitsError 5 vs 3", err)
	}
	_, err = other.Lock(ctx, "/zklock/sem", LockOptions{})
	if !errors.As(err, &pe) || pe.Want != 1 || pe.Have != 3 {
		t.Errorf("lock on a semaphore of 3: %v, want PermitsError 1 vs 3", err)
	}
	if n, m, l := count("/zklock/sem/leases"), count("/zklock/sem/locks"), count("/zklock/sem"); n != 1 || m != 0 || l != 0 {
		t.Errorf("after the refusals: %d lease nodes, %d lock nodes, %d contenders on the name; want 1, 0, 0", n, m, l)
	}

	lk, err := s.Lock(ctx, "/zklock/plain", LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Semaphore(ctx, "/zklock/plain", 2, LockOptions{})
	if !errors.As(err, &pe) || pe.Want != 2 || pe.Have != 1 {
		t.Errorf("semaphore on a held lock: %v, want PermitsError 2 vs 1", err)
	}
	if err := lk.Release(ctx); err != nil {
		t.Fatal(err)
	}

	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	h5, err := other.Semaphore(ctx, "/zklock/sem", 5, LockOptions{})
	if err != nil {
		t.Fatalf("semaphore of 5 once the holders of 3 left: %v", err)
	}
	if err := h5.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSemaphoreWaiterLeavesNoNode: a contender that gives up while it
// waits for a permit deletes its lease node and lets the next one have
// the semaphore's lock.
func TestSemaphoreWaiterLeavesNoNode(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 4*time.Second)
	ctx := ctxFor(t, time.Minute)
	const semPath = "/zklock/cancel"
	var held []*Hold
	for range 2 {
		h, err := s.Semaphore(ctx, semPath, 2, LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, h)
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := s.Semaphore(wctx, semPath, 2, LockOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter: %v, want its deadline", err)
	}
	conn, _, err := zk.Connect(zkc.Servers(), 4*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	zktest.Eventually(t, 20*time.Second, "the waiter's nodes are gone", func() bool {
		leases, _, _ := conn.Children(semPath + "/leases")
		locks, _, _ := conn.Children(semPath + "/locks")
		return len(leases) == 2 && len(locks) == 0
	})
	next := make(chan error, 1)
	go func() {
		h, err := s.Semaphore(ctx, semPath, 2, LockOptions{})
		if err == nil {
			err = h.Release(ctx)
		}
		next <- err
	}()
	if err := held[0].Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-next; err != nil {
		t.Fatal(err)
	}
	if err := held[1].Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSemaphorePermitsFreedWithTheSession: the permits of a Session that
// ends go to the contenders of another, which waits holding the
// semaphore's lock.
func TestSemaphorePermitsFreedWithTheSession(t *testing.T) {
	zkc := startZK(t)
	gone, err := Connect(Config{Servers: zkc.Servers(), SessionTimeout: 4 * time.Second, Logger: zktest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	waitEpoch(t, gone, 0)
	s := newSession(t, zkc.ConnectString(), 4*time.Second)
	ctx := ctxFor(t, time.Minute)
	const semPath = "/zklock/freed"
	for range 2 {
		if _, err := gone.Semaphore(ctx, semPath, 2, LockOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	granted := make(chan error, 2)
	for range 2 {
		go func() {
			h, err := s.Semaphore(ctx, semPath, 2, LockOptions{})
			if err == nil {
				// Hold until both are granted: then the two permits were free.
				granted <- nil
				<-ctx.Done()
				h.Release(context.Background())
				return
			}
			granted <- err
		}()
	}
	select {
	case err := <-granted:
		t.Fatalf("granted while the other Session holds both permits: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	gone.Close()
	for range 2 {
		if err := <-granted; err != nil {
			t.Fatal(err)
		}
	}
}
