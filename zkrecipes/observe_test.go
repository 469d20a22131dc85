package zkrecipes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

// observeWait bounds the wait for a message an observer must get.
const observeWait = 10 * time.Second

// observation runs one Observe call in the background and keeps what it
// is told.
type observation struct {
	t      *testing.T
	cancel context.CancelFunc
	ch     chan Holders
	done   chan error // Observe's result, once
	err    error
	ended  bool
	// gate, if set, is waited on by f after each delivery, to make a slow
	// observer.
	gate chan struct{}
}

func observe(t *testing.T, s *Session, lockPath string) *observation {
	return observeGated(t, s, lockPath, nil)
}

func observeGated(t *testing.T, s *Session, lockPath string, gate chan struct{}) *observation {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o := &observation{t: t, cancel: cancel, ch: make(chan Holders, 1000), done: make(chan error, 1), gate: gate}
	go func() {
		o.done <- s.Observe(ctx, lockPath, func(h Holders) error {
			o.ch <- h
			if o.gate != nil {
				select {
				case <-o.gate:
				case <-ctx.Done():
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		o.end(observeWait)
	})
	return o
}

// next returns the next message, failing the test after observeWait.
func (o *observation) next(what string) Holders {
	o.t.Helper()
	select {
	case h := <-o.ch:
		return h
	case err := <-o.done:
		o.ended, o.err = true, err
		o.t.Fatalf("%s: Observe ended with %v, want a message", what, err)
	case <-time.After(observeWait):
		o.t.Fatalf("%s: no message after %v", what, observeWait)
	}
	return Holders{}
}

// end waits for Observe to return and returns its error.
func (o *observation) end(d time.Duration) error {
	o.t.Helper()
	if o.ended {
		return o.err
	}
	select {
	case o.err = <-o.done:
		o.ended = true
	case <-time.After(d):
		o.t.Fatalf("Observe still running %v later", d)
	}
	return o.err
}

// holderString says who holds, as "owner@token" per holder, for messages.
func holderString(h Holders) string {
	var parts []string
	for _, c := range h.Contenders {
		parts = append(parts, fmt.Sprintf("%s@%d", c.Data, c.Token))
	}
	return fmt.Sprintf("[%s] of %d", strings.Join(parts, " "), h.QueueLength)
}

// wantHolders checks a message's holders by node name, and the queue's
// length.
func wantHolders(t *testing.T, what string, h Holders, nodes []string, queueLength int) {
	t.Helper()
	got := holderNames(h.Contenders)
	if !slices.Equal(got, nodes) || h.QueueLength != queueLength {
		t.Fatalf("%s: holders %v of %d, want %v of %d", what, got, h.QueueLength, nodes, queueLength)
	}
	for _, c := range h.Contenders {
		if !c.Holds || c.Token <= 0 || c.Created.IsZero() {
			t.Errorf("%s: holder %+v: want Holds, a token and a creation time", what, c)
		}
	}
}

func (s *Session) hubCount() int {
	s.hubs.mu.Lock()
	defer s.hubs.mu.Unlock()
	return len(s.hubs.m)
}

// watchCount returns how many watches the ZooKeeper server at addr keeps,
// data and children watches (zktest.WatchCount).
func watchCount(t *testing.T, addr string) int {
	t.Helper()
	n, err := zktest.WatchCount(addr)
	if err != nil {
		t.Fatalf("mntr: %v", err)
	}
	return int(n)
}

// TestObserveFollowsLockHolders: holds of one lock by two Sessions, in
// turn, each lasting at least 100 ms, are each told to an observer of a
// third Session, in order, with the holder's token and owner label: none
// missed, none invented, none told twice. A waiter joining or leaving
// (holders unchanged) brings no message, though it wakes the hub.
func TestObserveFollowsLockHolders(t *testing.T) {
	zkc := startZK(t)
	servers := zkc.ConnectString()
	const lockPath = "/zklock/observed"
	ctx := ctxFor(t, 2*time.Minute)
	sessions := []*Session{newSession(t, servers, 10*time.Second), newSession(t, servers, 10*time.Second)}
	obs := newSession(t, servers, 10*time.Second)

	o := observe(t, obs, lockPath)
	first := o.next("first message")
	wantHolders(t, "first message (no lock node)", first, nil, 0)
	if first.Semaphore || first.Permits != 0 {
		t.Errorf("first message %+v: want a lock", first)
	}

	type grant struct {
		h   *Hold
		err error
	}
	lockAsync := func(s *Session, owner string, lctx context.Context) chan grant {
		ch := make(chan grant, 1)
		go func() {
			h, err := s.Lock(lctx, lockPath, LockOptions{Data: []byte(owner)})
			ch <- grant{h, err}
		}()
		return ch
	}
	ins := zktest.Client(t, servers)
	// joined waits until the queue has n nodes and the hub has looked at
	// it since looks was read, and checks that it told nothing.
	joined := func(what string, n int, looks, published int64) {
		t.Helper()
		zktest.Eventually(t, observeWait, what+": the queue changes", func() bool {
			return len(zktest.Children(t, ins, lockPath)) == n
		})
		zktest.Eventually(t, observeWait, what+": the hub looks at the queue", func() bool {
			return obs.hubs.looks.Load() > looks
		})
		if p := obs.hubs.published.Load(); p != published {
			t.Errorf("%s: the hub published %d states, want none (holders unchanged)", what, p-published)
		}
	}

	const holds = 10
	g := <-lockAsync(sessions[0], "owner-0", ctx)
	if g.err != nil {
		t.Fatal(g.err)
	}
	cur := g.h
	grantedAt := time.Now()
	want := []string{holderString(Holders{Contenders: []Contender{{Data: []byte("owner-0"), Token: cur.Token()}}, QueueLength: 1})}
	got := []string{holderString(o.next("hold 0"))}
	for i := 1; i < holds; i++ {
		owner := fmt.Sprintf("owner-%d", i)
		// A waiter that leaves again, then the next holder's waiter.
		looks, published := obs.hubs.looks.Load(), obs.hubs.published.Load()
		lctx, cancel := context.WithCancel(ctx)
		gone := lockAsync(sessions[i%2], "leaves", lctx)
		joined(fmt.Sprintf("hold %d: a waiter joins", i), 2, looks, published)
		looks = obs.hubs.looks.Load()
		cancel()
		if g := <-gone; !errors.Is(g.err, context.Canceled) {
			t.Fatalf("cancelled waiter's Lock = %v, %v", g.h, g.err)
		}
		joined(fmt.Sprintf("hold %d: the waiter leaves", i), 1, looks, published)
		looks = obs.hubs.looks.Load()
		next := lockAsync(sessions[i%2], owner, ctx)
		joined(fmt.Sprintf("hold %d: the next holder's waiter joins", i), 2, looks, published)

		time.Sleep(time.Until(grantedAt.Add(100 * time.Millisecond))) // each hold lasts 100 ms
		if err := cur.Release(ctx); err != nil {
			t.Fatal(err)
		}
		g := <-next
		if g.err != nil {
			t.Fatal(g.err)
		}
		cur, grantedAt = g.h, time.Now()
		want = append(want, holderString(Holders{Contenders: []Contender{{Data: []byte(owner), Token: cur.Token()}}, QueueLength: 1}))
		got = append(got, holderString(o.next(fmt.Sprintf("hold %d", i))))
	}
	if err := cur.Release(ctx); err != nil {
		t.Fatal(err)
	}
	want = append(want, holderString(Holders{}))
	got = append(got, holderString(o.next("last release")))
	if !slices.Equal(got, want) {
		t.Errorf("observer told\n%v\nwant\n%v", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p := obs.hubs.published.Load(); p != holds+2 {
		t.Errorf("the hub published %d states, want %d (the first, %d holds, the last release)", p, holds+2, holds)
	}
}

// TestObserveSharesOneWatch: the observers of one lock node in a Session
// share one hub, which reads the lock node once per change for all of
// them, and the Session's only watch is the one on the lock node: none
// per observer, none on a contender's node. The hub ends with the last
// observer, and a later observer starts another.
func TestObserveSharesOneWatch(t *testing.T) {
	zkc := startZK(t)
	servers := zkc.ConnectString()
	const lockPath = "/zklock/shared-watch"
	ctx := ctxFor(t, time.Minute)
	holder := newSession(t, servers, 10*time.Second)
	h, err := holder.Lock(ctx, lockPath, LockOptions{Data: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, servers, 10*time.Second)
	o1 := observe(t, s, lockPath)
	wantHolders(t, "observer 1's first message", o1.next("observer 1"), []string{path2name(h.Path())}, 1)
	o2 := observe(t, s, lockPath)
	wantHolders(t, "observer 2's first message", o2.next("observer 2"), []string{path2name(h.Path())}, 1)
	if n := s.hubCount(); n != 1 {
		t.Errorf("%d hubs for one lock node, want 1", n)
	}
	// The holder's session watches nothing: the one watch is the hub's.
	if n := watchCount(t, zkc.Servers()[0]); n != 1 {
		t.Errorf("ZooKeeper keeps %d watches for two observers of a held lock, want 1 (the hub's on the lock node)", n)
	}

	// A waiter joins (the hub looks, and tells nothing), then the holder
	// releases: one look tells both observers.
	looks := s.hubs.looks.Load()
	waited := make(chan *Hold, 1)
	go func() {
		h, err := newSession(t, servers, 10*time.Second).Lock(ctx, lockPath, LockOptions{Data: []byte("b")})
		if err != nil {
			t.Error(err)
		}
		waited <- h
	}()
	zktest.Eventually(t, observeWait, "the hub looks at the waiter", func() bool {
		return s.hubs.looks.Load() > looks
	})
	looks = s.hubs.looks.Load()
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	h = <-waited
	if h == nil {
		t.FailNow()
	}
	wantHolders(t, "observer 1 after the release", o1.next("observer 1"), []string{path2name(h.Path())}, 1)
	wantHolders(t, "observer 2 after the release", o2.next("observer 2"), []string{path2name(h.Path())}, 1)
	if n := s.hubs.looks.Load() - looks; n != 1 {
		t.Errorf("the hub looked %d times at one change for two observers, want 1", n)
	}
	if n := s.hubs.published.Load(); n != 2 {
		t.Errorf("the hub published %d states, want 2 (the first, the new holder)", n)
	}

	o1.cancel()
	if err := o1.end(observeWait); !errors.Is(err, context.Canceled) {
		t.Errorf("observer 1's Observe = %v, want context.Canceled", err)
	}
	if n := s.hubCount(); n != 1 {
		t.Errorf("%d hubs with one observer left, want 1", n)
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	wantHolders(t, "observer 2 after observer 1 left", o2.next("observer 2"), nil, 0)
	o2.cancel()
	if err := o2.end(observeWait); !errors.Is(err, context.Canceled) {
		t.Errorf("observer 2's Observe = %v, want context.Canceled", err)
	}
	if n := s.hubCount(); n != 0 {
		t.Errorf("%d hubs after the last observer left, want 0", n)
	}
	zktest.Eventually(t, observeWait, "the hub's goroutine ends with its last observer", func() bool {
		return s.hubs.running.Load() == 0
	})
	o3 := observe(t, s, lockPath)
	wantHolders(t, "a later observer's first message", o3.next("observer 3"), nil, 0)
	if r := s.hubs.running.Load(); r != 1 {
		t.Errorf("%d hubs running, want 1", r)
	}
}

func path2name(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// createSeq creates an EPHEMERAL_SEQUENTIAL node as another client would,
// and returns its name.
func createSeq(t *testing.T, c *zk.Conn, parent, prefix, data string) string {
	t.Helper()
	p, err := c.Create(parent+"/"+prefix, []byte(data), zk.FlagEphemeralSequential, zk.WorldACL(zk.PermAll))
	if err != nil {
		t.Fatalf("create %s/%s: %v", parent, prefix, err)
	}
	return path2name(p)
}

func mustCreate(t *testing.T, c *zk.Conn, p, data string) {
	t.Helper()
	if _, err := c.Create(p, []byte(data), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
}

func mustDelete(t *testing.T, c *zk.Conn, p string) {
	t.Helper()
	if err := c.Delete(p, -1); err != nil {
		t.Fatalf("delete %s: %v", p, err)
	}
}

// TestObserveOtherClientsNodes: Kazoo's and Curator's node names count as
// contenders, exclusive and shared (a run of shared holders at the head
// holds together), and a child that ends in no sequence number does not.
// Each holder's owner and token are its node's data and czxid.
func TestObserveOtherClientsNodes(t *testing.T) {
	zkc := startZK(t)
	servers := zkc.ConnectString()
	const lockPath = "/zklock/others"
	c := zktest.Client(t, servers)
	mustCreate(t, c, "/zklock", "")
	mustCreate(t, c, lockPath, "")
	mustCreate(t, c, lockPath+"/not-a-contender", "")
	kazoo := createSeq(t, c, lockPath, "0f1e2d3c4b5a69788796a5b4c3d2e1f0__lock__", "kazoo")
	s := newSession(t, servers, 10*time.Second)
	o := observe(t, s, lockPath)
	first := o.next("first")
	wantHolders(t, "a Kazoo holder", first, []string{kazoo}, 1)
	_, stat, err := c.Get(lockPath + "/" + kazoo)
	if err != nil {
		t.Fatal(err)
	}
	if got := first.Contenders[0]; string(got.Data) != "kazoo" || got.Token != stat.Czxid || got.Shared {
		t.Errorf("Kazoo holder %+v, want data kazoo, token %d, exclusive", got, stat.Czxid)
	}

	curator := createSeq(t, c, lockPath, "_c_7b0c1d2e-3f40-4152-8364-758697a8b9ca-lock-", "curator")
	reader1 := createSeq(t, c, lockPath, "_c_0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9-__READ__", "reader1")
	mustDelete(t, c, lockPath+"/"+kazoo)
	wantHolders(t, "a Curator holder", o.next("Curator holder"), []string{curator}, 2)
	mustDelete(t, c, lockPath+"/"+curator)
	wantHolders(t, "a shared Curator holder", o.next("shared holder"), []string{reader1}, 1)
	reader2 := createSeq(t, c, lockPath, "2b3c4d5e6f708192a3b4c5d6e7f80910__rlock__", "reader2")
	h := o.next("second shared holder")
	wantHolders(t, "two shared holders", h, []string{reader1, reader2}, 2)
	if !h.Contenders[0].Shared || !h.Contenders[1].Shared {
		t.Errorf("shared holders %+v, want Shared", h.Contenders)
	}
}

// TestObserveSemaphore: a lock node with a leases child and no lock
// contenders is a semaphore: its holders are its lease nodes, the first N
// by sequence when its zklock contenders recorded N, every one otherwise;
// the waiters of its mutex (but its head, counted by its lease node) count
// in the queue's length but wake no observer. The lock node turning from a
// lock into a semaphore and back is seen.
func TestObserveSemaphore(t *testing.T) {
	zkc := startZK(t)
	servers := zkc.ConnectString()
	const lockPath = "/zklock/sem"
	leases, locks := lockPath+"/leases", lockPath+"/locks"
	c := zktest.Client(t, servers)
	mustCreate(t, c, "/zklock", "")
	mustCreate(t, c, lockPath, "")
	lockHolder := createSeq(t, c, lockPath, "_c_00000000-0000-4000-8000-000000000001-lock-", "lock holder")
	s := newSession(t, servers, 10*time.Second)
	o := observe(t, s, lockPath)
	wantHolders(t, "a lock", o.next("lock"), []string{lockHolder}, 1)

	mustDelete(t, c, lockPath+"/"+lockHolder)
	wantHolders(t, "the lock released", o.next("released"), nil, 0)
	// Curator's InterProcessSemaphoreV2 comes, without a permits record.
	mustCreate(t, c, locks, "")
	mustCreate(t, c, leases, "")
	l1 := createSeq(t, c, leases, "_c_00000000-0000-4000-8000-000000000011-lease-", "l1")
	h := o.next("first lease")
	wantHolders(t, "a semaphore's first lease", h, []string{l1}, 1)
	if !h.Semaphore || h.Permits != 0 {
		t.Errorf("message %+v: want a semaphore of unknown permits", h)
	}
	l2 := createSeq(t, c, leases, "_c_00000000-0000-4000-8000-000000000012-lease-", "l2")
	wantHolders(t, "every lease holds while the permits are unknown", o.next("second lease"), []string{l1, l2}, 2)

	// zklock contenders record 2 permits (on the leases node); a third
	// contender waits holding the mutex, with its lease made; two more
	// wait for the mutex.
	if _, err := c.Set(leases, []byte("permits=2"), -1); err != nil {
		t.Fatal(err)
	}
	createSeq(t, c, locks, "_c_00000000-0000-4000-8000-000000000021-lock-", "m1")
	l3 := createSeq(t, c, leases, "_c_00000000-0000-4000-8000-000000000013-lease-", "l3")
	createSeq(t, c, locks, "_c_00000000-0000-4000-8000-000000000022-lock-", "m2")
	createSeq(t, c, locks, "_c_00000000-0000-4000-8000-000000000023-lock-", "m3")
	mustDelete(t, c, leases+"/"+l1)
	h = o.next("first lease released")
	wantHolders(t, "the first two leases hold", h, []string{l2, l3}, 4)
	if !h.Semaphore || h.Permits != 2 {
		t.Errorf("message %+v: want a semaphore of 2 permits", h)
	}
	if string(h.Contenders[1].Data) != "l3" {
		t.Errorf("holder %+v, want the data of lease l3", h.Contenders[1])
	}

	// The semaphore empties; a lock contender comes while its empty leases
	// node is still there (a container node stays until ZooKeeper's next
	// sweep; here it is a persistent one): a lock again.
	var ops []any // at once: each holder leaving alone would be a change
	for _, n := range zktest.Children(t, c, leases) {
		ops = append(ops, &zk.DeleteRequest{Path: leases + "/" + n, Version: -1})
	}
	if _, err := c.Multi(ops...); err != nil {
		t.Fatal(err)
	}
	wantHolders(t, "every lease released", o.next("leases released"), nil, 2)
	for _, n := range zktest.Children(t, c, locks) {
		mustDelete(t, c, locks+"/"+n)
	}
	lockHolder = createSeq(t, c, lockPath, "_c_00000000-0000-4000-8000-000000000002-lock-", "lock again")
	h = o.next("a lock again")
	wantHolders(t, "a lock again", h, []string{lockHolder}, 1)
	if h.Semaphore || h.Permits != 0 {
		t.Errorf("message %+v: want a lock", h)
	}
	if n := s.hubs.published.Load(); n != 7 {
		t.Errorf("the hub published %d states, want 7", n)
	}
}

// TestObserveSemaphoreHolds: an observer follows the holds of a semaphore
// of 2 permits taken by two Sessions: each hold that begins or ends is
// told, with the holds' tokens and owners and the permits; a contender
// waiting for a permit, its lease node made, is no holder and brings no
// message.
func TestObserveSemaphoreHolds(t *testing.T) {
	zkc := startZK(t)
	servers := zkc.ConnectString()
	ctx := ctxFor(t, time.Minute)
	const semPath = "/zklock/observed-sem"
	a, b := newSession(t, servers, 10*time.Second), newSession(t, servers, 10*time.Second)
	obs := newSession(t, servers, 10*time.Second)
	o := observe(t, obs, semPath)
	wantHolders(t, "first message", o.next("first"), nil, 0)

	holds := func(hs ...*Hold) string {
		var parts []string
		for _, h := range hs {
			parts = append(parts, fmt.Sprintf("%s@%d", path2name(h.Path())[:8], h.Token()))
		}
		return strings.Join(parts, " ")
	}
	told := func(what string, want string) {
		t.Helper()
		h := o.next(what)
		var parts []string
		for _, c := range h.Contenders {
			parts = append(parts, fmt.Sprintf("%s@%d", c.Node[:8], c.Token))
		}
		if got := strings.Join(parts, " "); got != want || !h.Semaphore || h.Permits != 2 {
			t.Fatalf("%s: told [%s] semaphore %v permits %d, want [%s] of a semaphore of 2 permits", what, got, h.Semaphore, h.Permits, want)
		}
	}
	sem := func(s *Session, owner string) *Hold {
		t.Helper()
		h, err := s.Semaphore(ctx, semPath, 2, LockOptions{Data: []byte(owner)})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a1 := sem(a, "a1")
	told("a1 holds", holds(a1))
	b1 := sem(b, "b1")
	told("b1 holds too", holds(a1, b1))

	looks, published := obs.hubs.looks.Load(), obs.hubs.published.Load()
	waited := make(chan *Hold, 1)
	go func() {
		h, err := a.Semaphore(ctx, semPath, 2, LockOptions{Data: []byte("a2")})
		if err != nil {
			t.Error(err)
		}
		waited <- h
	}()
	ins := zktest.Client(t, servers)
	zktest.Eventually(t, observeWait, "the third contender's lease node is made", func() bool {
		return len(zktest.Children(t, ins, SemaphoreLeases(semPath))) == 3
	})
	zktest.Eventually(t, observeWait, "the hub looks at the leases", func() bool {
		return obs.hubs.looks.Load() > looks
	})
	if p := obs.hubs.published.Load(); p != published {
		t.Errorf("the hub published %d states for a contender waiting for a permit, want none", p-published)
	}
	if err := a1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	a2 := <-waited
	if a2 == nil {
		t.FailNow()
	}
	told("a1 released: a2 holds", holds(b1, a2))
	if err := b1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	told("b1 released", holds(a2))
	if err := a2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if h := o.next("a2 released"); len(h.Contenders) != 0 {
		t.Fatalf("a2 released: told %s, want no holder", holderString(h))
	}
}

// TestObserveSlowObserver: an observer that does not take its messages
// holds up no other observer of the same hub, and is told only the newest
// state once it takes them again.
func TestObserveSlowObserver(t *testing.T) {
	zkc := startZK(t)
	servers := zkc.ConnectString()
	const lockPath = "/zklock/slow"
	s := newSession(t, servers, 10*time.Second)
	gate := make(chan struct{})
	slow := observeGated(t, s, lockPath, gate)
	wantHolders(t, "the slow observer's first message", slow.next("slow"), nil, 0)
	fast := observe(t, s, lockPath)
	wantHolders(t, "the fast observer's first message", fast.next("fast"), nil, 0)

	c := zktest.Client(t, servers)
	mustCreate(t, c, "/zklock", "")
	mustCreate(t, c, lockPath, "")
	var last string
	for i := range 5 {
		if last != "" {
			mustDelete(t, c, lockPath+"/"+last)
			wantHolders(t, fmt.Sprintf("change %d: released", i), fast.next("fast"), nil, 0)
		}
		last = createSeq(t, c, lockPath, "_c_00000000-0000-4000-8000-000000000001-lock-", fmt.Sprint(i))
		wantHolders(t, fmt.Sprintf("change %d: held", i), fast.next("fast"), []string{last}, 1)
	}
	close(gate) // the slow observer takes its messages again
	wantHolders(t, "the slow observer's next message: the newest state", slow.next("slow"), []string{last}, 1)
}

// TestObserveEnds: Observe answers ErrNoSession without a session and
// when its epoch ends (the hub ends too), works again in the next epoch,
// and answers ErrClosed once the Session is closed, leaving no goroutine
// (goleak in TestMain).
func TestObserveEnds(t *testing.T) {
	zkc := startZK(t)
	ctx := ctxFor(t, time.Minute)

	none, err := Connect(Config{Servers: []string{"127.0.0.1:1"}, Logger: zktest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	if err := none.Observe(ctx, "/zklock/x", func(Holders) error { return nil }); !errors.Is(err, ErrNoSession) {
		t.Errorf("Observe without a session = %v, want ErrNoSession", err)
	}

	p := proxied(t, zkc.Servers()[0])
	s := newSession(t, p.Addr(), 3*time.Second)
	const lockPath = "/zklock/ends"
	o := observe(t, s, lockPath)
	wantHolders(t, "first message", o.next("first"), nil, 0)
	st, _ := s.State()
	p.SetMode(tcpproxy.Stall)
	<-st.Epoch.Done()
	if err := o.end(observeWait); !errors.Is(err, ErrNoSession) {
		t.Errorf("Observe after its epoch ended = %v, want ErrNoSession", err)
	}
	zktest.Eventually(t, observeWait, "the hub ends with its epoch", func() bool {
		return s.hubs.running.Load() == 0 && s.hubCount() == 0
	})
	p.SetMode(tcpproxy.Pass)
	waitEpoch(t, s, st.Epoch.ID())
	h, err := newSession(t, zkc.ConnectString(), 10*time.Second).Lock(ctx, lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o = observe(t, s, lockPath)
	wantHolders(t, "first message in the next epoch", o.next("next epoch"), []string{path2name(h.Path())}, 1)

	var wg sync.WaitGroup
	wg.Go(s.Close)
	if err := o.end(observeWait); !errors.Is(err, ErrClosed) {
		t.Errorf("Observe when the Session closed = %v, want ErrClosed", err)
	}
	wg.Wait()
	if err := s.Observe(ctx, lockPath, func(Holders) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Observe after Close = %v, want ErrClosed", err)
	}
	if r := s.hubs.running.Load(); r != 0 {
		t.Errorf("%d hubs running after Close, want 0", r)
	}
}

// TestObserveStopsAtCallbackError: f's error ends Observe with it.
func TestObserveStopsAtCallbackError(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 10*time.Second)
	stop := errors.New("stop")
	if err := s.Observe(ctxFor(t, time.Minute), "/zklock/stop", func(Holders) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Observe = %v, want f's error", err)
	}
	if n := s.hubCount(); n != 0 {
		t.Errorf("%d hubs once the only observer returned, want 0", n)
	}
}
