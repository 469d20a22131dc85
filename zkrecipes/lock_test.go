package zkrecipes

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/zktest"
)

// fencedResource accepts a write only with a token at least as high as any
// it has seen, like a storage system that honours fencing tokens.
type fencedResource struct {
	mu     sync.Mutex
	max    int64
	writes []int64
}

func (r *fencedResource) write(token int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if token < r.max {
		return fmt.Errorf("token %d below %d", token, r.max)
	}
	r.max = token
	r.writes = append(r.writes, token)
	return nil
}

func TestLockExcludesConcurrentContenders(t *testing.T) {
	zkc := startZK(t)
	const sessions, perSession, rounds = 4, 2, 15
	var ss []*Session
	for range sessions {
		ss = append(ss, newSession(t, zkc.ConnectString(), 4*time.Second))
	}
	var (
		writers  atomic.Int32
		readers  atomic.Int32
		res      fencedResource
		wg       sync.WaitGroup
		errs     = make(chan error, sessions*perSession*rounds)
		ctx      = ctxFor(t, 2*time.Minute)
		lockPath = "/zklock/mutex"
	)
	for i := range sessions * perSession {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := ss[i%sessions]
			shared := i >= sessions*perSession-2 // two readers among the writers
			for range rounds {
				h, err := s.Lock(ctx, lockPath, LockOptions{Shared: shared})
				if err != nil {
					errs <- fmt.Errorf("contender %d: Lock: %w", i, err)
					return
				}
				if shared {
					readers.Add(1)
					if n := writers.Load(); n != 0 {
						errs <- fmt.Errorf("reader %d: %d writers hold too", i, n)
					}
				} else {
					if n := writers.Add(1); n != 1 {
						errs <- fmt.Errorf("writer %d: %d writers at once", i, n)
					}
					if n := readers.Load(); n != 0 {
						errs <- fmt.Errorf("writer %d: %d readers hold too", i, n)
					}
					if err := res.write(h.Token()); err != nil {
						errs <- fmt.Errorf("writer %d: fenced write refused: %w", i, err)
					}
				}
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				if shared {
					readers.Add(-1)
				} else {
					writers.Add(-1)
				}
				if err := h.Release(ctx); err != nil {
					errs <- fmt.Errorf("contender %d: Release: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := len(res.writes), (sessions*perSession-2)*rounds; got != want {
		t.Errorf("%d critical sections, want %d", got, want)
	}
	for i := 1; i < len(res.writes); i++ {
		if res.writes[i] <= res.writes[i-1] {
			t.Errorf("token %d after %d: tokens must strictly increase", res.writes[i], res.writes[i-1])
		}
	}
	if c := zktest.Children(t, zktest.Client(t, zkc.ConnectString()), lockPath); len(c) != 0 {
		t.Errorf("nodes left after every release: %v", c)
	}
	for i, s := range ss {
		if n := s.handoffs.size(); n != 0 {
			t.Errorf("session %d keeps %d handoff records after every release", i, n)
		}
	}
}

func TestLockGrantsInArrivalOrder(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 4*time.Second)
	other := newSession(t, zkc.ConnectString(), 4*time.Second)
	ctx := ctxFor(t, time.Minute)
	const lockPath = "/zklock/fifo"
	h0, err := s.Lock(ctx, lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 6
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
		errs  = make(chan error, waiters)
	)
	for i := range waiters {
		queued := make(chan struct{})
		var once sync.Once
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess := s
			if i%2 == 1 {
				sess = other // waiters on two sessions share one queue
			}
			h, err := sess.Lock(ctx, lockPath, LockOptions{OnQueued: func(pos, n int) {
				once.Do(func() { close(queued) })
			}})
			if err != nil {
				errs <- err
				once.Do(func() { close(queued) })
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			errs <- h.Release(ctx)
		}()
		<-queued
	}
	if err := h0.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if want := []int{0, 1, 2, 3, 4, 5}; !slices.Equal(order, want) {
		t.Errorf("granted in order %v, want %v", order, want)
	}
}

func TestWaitersWatchOnlyTheirPredecessor(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 4*time.Second)
	ctx, cancel := context.WithCancel(ctxFor(t, time.Minute))
	const lockPath = "/zklock/watch"
	h0, err := s.Lock(ctx, lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const waiters = 5
	var wg sync.WaitGroup
	for range waiters {
		queued := make(chan struct{})
		var once sync.Once
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Lock(ctx, lockPath, LockOptions{OnQueued: func(int, int) { once.Do(func() { close(queued) }) }})
			once.Do(func() { close(queued) })
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Lock = %v, want context.Canceled", err)
			}
		}()
		<-queued
	}
	ins := zktest.Client(t, zkc.ConnectString())
	queue := queue(zktest.Children(t, ins, lockPath))
	if len(queue) != waiters+1 {
		t.Fatalf("queue has %d nodes, want %d", len(queue), waiters+1)
	}
	// Every node but the last is watched by exactly one waiter, and nobody
	// watches the lock node's children.
	var want []string
	for _, c := range queue[:waiters] {
		want = append(want, lockPath+"/"+c.name)
	}
	var got []string
	zktest.Eventually(t, 10*time.Second, "watches settle", func() bool {
		got = watchedPaths(t, zkc.Servers()[0])
		return len(got) >= waiters
	})
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("watched paths:\n%s\nwant one watch on each predecessor:\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// wchp lists data watches only; zk_watch_count counts children
	// watches too.
	if n := watchCount(t, zkc.Servers()[0]); n != len(got) {
		t.Errorf("%d watches in all, %d of them data watches: want no children watch", n, len(got))
	}
	cancel()
	wg.Wait()
	if err := h0.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	zktest.Eventually(t, 10*time.Second, "cancelled waiters leave no node", func() bool {
		return len(zktest.Children(t, ins, lockPath)) == 0
	})
}

// watchedPaths returns one line per (path, session) watch the server holds,
// from the wchp four-letter word.
func watchedPaths(t *testing.T, addr string) []string {
	t.Helper()
	out, err := zktest.FourLetterWord(addr, "wchp", 5*time.Second)
	if err != nil {
		t.Fatalf("wchp: %v", err)
	}
	var paths []string
	var cur string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "/"):
			cur = strings.TrimSpace(line)
		case strings.TrimSpace(line) != "" && cur != "":
			paths = append(paths, cur)
		}
	}
	return paths
}

func TestCancelledWaiterLeavesNoNode(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 4*time.Second)
	ins := zktest.Client(t, zkc.ConnectString())
	const lockPath = "/zklock/cancel"
	h, err := s.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("cancel while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		queued := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := s.Lock(ctx, lockPath, LockOptions{OnQueued: func(int, int) { close(queued) }})
			done <- err
		}()
		<-queued
		if n := len(zktest.Children(t, ins, lockPath)); n != 2 {
			t.Fatalf("%d nodes while waiting, want 2", n)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Lock = %v, want context.Canceled", err)
		}
		if c := zktest.Children(t, ins, lockPath); len(c) != 1 || c[0] != h.n.getName() {
			t.Errorf("nodes after cancel: %v, want only the holder's", c)
		}
	})
	t.Run("deadline while waiting", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := s.Lock(ctx, lockPath, LockOptions{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock = %v, want context.DeadlineExceeded", err)
		}
		if c := zktest.Children(t, ins, lockPath); len(c) != 1 {
			t.Errorf("nodes after deadline: %v, want only the holder's", c)
		}
	})
	t.Run("try once", func(t *testing.T) {
		if _, err := s.Lock(context.Background(), lockPath, LockOptions{TryOnce: true}); !errors.Is(err, ErrHeld) {
			t.Fatalf("Lock = %v, want ErrHeld", err)
		}
		if c := zktest.Children(t, ins, lockPath); len(c) != 1 {
			t.Errorf("nodes after a failed try: %v, want only the holder's", c)
		}
	})
	if err := h.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestTokensIncreaseAcrossRecreatedLockNode(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 4*time.Second)
	ins := zktest.Client(t, zkc.ConnectString())
	ctx := ctxFor(t, time.Minute)
	const lockPath = "/zklock/recreated"
	var last int64
	for round := range 2 {
		h, err := s.Lock(ctx, lockPath, LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if h.Token() <= last {
			t.Errorf("round %d: token %d, want above %d", round, h.Token(), last)
		}
		if !strings.HasSuffix(h.Path(), "-lock-0000000000") {
			t.Errorf("round %d: node %s, want the first sequence number of a new lock node", round, h.Path())
		}
		last = h.Token()
		if err := h.Release(ctx); err != nil {
			t.Fatal(err)
		}
		// The lock node is a container: ZooKeeper deletes it once empty.
		zktest.Eventually(t, 20*time.Second, "empty lock node is deleted", func() bool {
			ok, _, err := ins.Exists(lockPath)
			return err == nil && !ok
		})
	}
}

func TestSharedHoldersExcludeExclusive(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 4*time.Second)
	ctx := ctxFor(t, time.Minute)
	const lockPath = "/zklock/rw"
	r1, err := s.Lock(ctx, lockPath, LockOptions{Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Lock(ctx, lockPath, LockOptions{Shared: true})
	if err != nil {
		t.Fatalf("second shared hold: %v", err)
	}
	if _, err := s.Lock(ctx, lockPath, LockOptions{TryOnce: true}); !errors.Is(err, ErrHeld) {
		t.Fatalf("exclusive try under readers = %v, want ErrHeld", err)
	}
	got := make(chan *Hold, 1)
	queued := make(chan [2]int, 10) // the writer's position and queue length
	go func() {
		h, err := s.Lock(ctx, lockPath, LockOptions{OnQueued: func(pos, n int) { queued <- [2]int{pos, n} }})
		if err != nil {
			t.Errorf("exclusive Lock: %v", err)
		}
		got <- h
	}()
	wantQueued := func(want [2]int) {
		t.Helper()
		select {
		case q := <-queued:
			if q != want {
				t.Fatalf("writer queued at position %d of %d, want %d of %d", q[0], q[1], want[0], want[1])
			}
		case <-got:
			t.Fatal("writer's Lock returned while readers hold")
		}
	}
	wantQueued([2]int{2, 3})
	// A reader arriving after a queued writer waits behind it.
	if _, err := s.Lock(ctx, lockPath, LockOptions{Shared: true, TryOnce: true}); !errors.Is(err, ErrHeld) {
		t.Fatalf("shared try behind a queued writer = %v, want ErrHeld", err)
	}
	// The writer waits on r2, the reader just before it. r2 leaving does
	// not grant it while r1 still holds: it moves up, and keeps waiting (a
	// negative check: it can only miss a wrong grant that comes late).
	if err := r2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wantQueued([2]int{1, 2})
	select {
	case <-got:
		t.Fatal("writer granted while a reader still holds")
	case <-time.After(300 * time.Millisecond):
	}
	if err := r1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	w := <-got
	if w == nil {
		return
	}
	if w.Token() <= r2.Token() {
		t.Errorf("writer token %d not above reader token %d", w.Token(), r2.Token())
	}
	if err := w.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
