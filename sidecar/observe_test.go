package sidecar

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/grpc/codes"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

// observers counts the Observe streams Metrics is told of.
type observers struct {
	nopMetrics
	mu             sync.Mutex
	started, ended int
}

func (m *observers) ObserveStarted() { m.mu.Lock(); m.started++; m.mu.Unlock() }
func (m *observers) ObserveEnded()   { m.mu.Lock(); m.ended++; m.mu.Unlock() }

func (m *observers) counts() (started, ended int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.started, m.ended
}

// observeStream reads an Observe stream in the background.
type observeStream struct {
	t      *testing.T
	cancel context.CancelFunc
	ch     chan *zklockv1.ObserveResponse
	err    chan error // the stream's final error
}

func observeLock(t *testing.T, c zklockv1.LockServiceClient, lock string) *observeStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.Observe(ctx, &zklockv1.ObserveRequest{Lock: lock})
	if err != nil {
		cancel()
		t.Fatalf("Observe: %v", err)
	}
	o := &observeStream{t: t, cancel: cancel, ch: make(chan *zklockv1.ObserveResponse, 100), err: make(chan error, 1)}
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				o.err <- err
				close(o.ch)
				return
			}
			o.ch <- r
		}
	}()
	t.Cleanup(func() {
		cancel()
		for range o.ch {
		}
	})
	return o
}

func (o *observeStream) next(what string) *zklockv1.ObserveResponse {
	o.t.Helper()
	select {
	case r, ok := <-o.ch:
		if !ok {
			err := <-o.err
			o.err <- err
			o.t.Fatalf("%s: Observe ended: %v", what, err)
		}
		return r
	case <-time.After(wait):
		o.t.Fatalf("%s: no message after %v", what, wait)
	}
	return nil
}

// end waits for the stream to end, with no message before, and returns
// its status.
func (o *observeStream) end(what string) error {
	o.t.Helper()
	select {
	case r, ok := <-o.ch:
		if ok {
			o.t.Fatalf("%s: message %v, want the stream to end", what, r)
		}
		err := <-o.err
		o.err <- err
		return err
	case <-time.After(wait):
		o.t.Fatalf("%s: stream still open after %v", what, wait)
	}
	return nil
}

// holderOwners says who holds in r, as "owner@token" each, and the queue's
// length.
func holderOwners(r *zklockv1.ObserveResponse) string {
	var parts []string
	for _, h := range r.GetHolders() {
		parts = append(parts, fmt.Sprintf("%s@%d", h.GetOwner(), h.GetFencingToken()))
	}
	return fmt.Sprintf("[%s] of %d", strings.Join(parts, " "), r.GetQueueLength())
}

func wantObserved(t *testing.T, what string, r *zklockv1.ObserveResponse, want string) {
	t.Helper()
	if got := holderOwners(r); got != want {
		t.Fatalf("%s: observed %s, want %s", what, got, want)
	}
	for _, h := range r.GetHolders() {
		if h.GetCreateTime() == nil || h.GetNode() == "" || h.GetMode() == zklockv1.Mode_MODE_UNSPECIFIED {
			t.Errorf("%s: holder %v without create_time, node or mode", what, h)
		}
	}
}

// TestObserveThroughGRPC: an observer's first message is the lock's
// present holders; then one message per change of holder, whichever
// sidecar holds, with Describe's contender fields (owner, token, node,
// mode); a waiter joining brings none. A second observer of the same lock
// starts with the present state. Metrics count the streams.
func TestObserveThroughGRPC(t *testing.T) {
	zkc := startZK(t)
	m := &observers{}
	a := startInstance(t, zkc.ConnectString(), instanceOpts{cfg: Config{Metrics: m}})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)
	const lock = "observe/grpc"

	o := observeLock(t, a.client, lock)
	wantObserved(t, "first message", o.next("first"), "[] of 0")

	b1 := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: lock, Owner: "b1"})
	g1 := b1.granted(wait)
	r := o.next("b1 holds")
	wantObserved(t, "b1 holds", r, fmt.Sprintf("[b1@%d] of 1", g1.GetFencingToken()))
	if h := r.GetHolders()[0]; h.GetMode() != zklockv1.Mode_MODE_EXCLUSIVE || !strings.HasPrefix(h.GetNode(), "_c_") || r.GetPermits() != 0 {
		t.Errorf("holder %v permits %d: want an exclusive Curator-named node, 0 permits", h, r.GetPermits())
	}
	a1 := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: lock, Owner: "a1"})
	a1.queued(wait)
	b1.cancel() // the stream is the lock
	g2 := a1.granted(wait)
	// Had the waiter's joining brought a message, this would be it.
	wantObserved(t, "a1 holds", o.next("a1 holds"), fmt.Sprintf("[a1@%d] of 1", g2.GetFencingToken()))

	o2 := observeLock(t, a.client, lock)
	wantObserved(t, "second observer's first message", o2.next("second observer"), fmt.Sprintf("[a1@%d] of 1", g2.GetFencingToken()))
	a1.cancel()
	wantObserved(t, "a1 released", o.next("released"), "[] of 0")
	wantObserved(t, "a1 released, second observer", o2.next("released"), "[] of 0")
	if s, e := m.counts(); s != 2 || e != 0 {
		t.Errorf("ObserveStarted %d, ObserveEnded %d, want 2 and 0", s, e)
	}
	o.cancel()
	o2.cancel()
	zktest.Eventually(t, wait, "ObserveEnded for both streams", func() bool {
		_, e := m.counts()
		return e == 2
	})
}

// TestObserveBadInput: a bad lock name is INVALID_ARGUMENT, before
// anything else; without a ZooKeeper session, UNAVAILABLE NO_SESSION.
func TestObserveBadInput(t *testing.T) {
	a := startInstance(t, "127.0.0.1:1", instanceOpts{})
	for _, name := range []string{"", "/a", "a//b", "a/../b", strings.Repeat("x", 513)} {
		wantCode(t, observeLock(t, a.client, name).end(fmt.Sprintf("name %q", name)), codes.InvalidArgument, "INVALID_LOCK_NAME")
	}
	wantCode(t, observeLock(t, a.client, "x").end("no session"), codes.Unavailable, "NO_SESSION")
}

// TestObserveEnds: an Observe stream ends with UNAVAILABLE NO_SESSION when
// the sidecar's epoch ends, and SHUTTING_DOWN when the sidecar shuts down.
func TestObserveEnds(t *testing.T) {
	_, p := startProxiedZK(t)
	m := &observers{}
	a := startInstance(t, p.Addr(), instanceOpts{timeout: 4 * time.Second, cfg: Config{Metrics: m}})
	a.waitUsable(t)
	o := observeLock(t, a.client, "observe/ends")
	wantObserved(t, "first message", o.next("first"), "[] of 0")
	st, _ := a.sess.State()
	p.SetMode(tcpproxy.Stall)
	<-st.Epoch.Done()
	wantCode(t, o.end("epoch ended"), codes.Unavailable, "NO_SESSION")
	p.SetMode(tcpproxy.Pass)

	a.waitUsable(t)
	o = observeLock(t, a.client, "observe/ends")
	wantObserved(t, "first message in the next epoch", o.next("first"), "[] of 0")
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		a.stop(t)
	}()
	wantCode(t, o.end("shutdown"), codes.Unavailable, "SHUTTING_DOWN")
	<-stopped
	if s, e := m.counts(); s != 2 || e != 2 {
		t.Errorf("ObserveStarted %d, ObserveEnded %d, want 2 and 2", s, e)
	}
}

// TestObserveAndDescribeSemaphore: on a semaphore in Curator's
// InterProcessSemaphoreV2 layout, with the permits record zklock writes,
// Observe and Describe show its lease nodes as holders (the first N), the
// lease beyond them and the mutex's nodes but its head (the contender of
// that lease) as Describe's waiters, and its permits.
func TestObserveAndDescribeSemaphore(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	const lock = "observe/sem"
	path := "/zklock/" + lock
	c := zktest.Client(t, zkc.ConnectString())
	for _, p := range []string{"/zklock", "/zklock/observe", path, path + "/leases", path + "/locks"} {
		if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Set(path+"/leases", []byte("permits=2"), -1); err != nil {
		t.Fatal(err)
	}
	create := func(p, owner string) int64 {
		t.Helper()
		made, err := c.Create(p, []byte(owner), zk.FlagEphemeralSequential, zk.WorldACL(zk.PermAll))
		if err != nil {
			t.Fatal(err)
		}
		_, stat, err := c.Get(made)
		if err != nil {
			t.Fatal(err)
		}
		return stat.Czxid
	}
	l1 := create(path+"/leases/_c_00000000-0000-4000-8000-000000000001-lease-", "l1")
	l2 := create(path+"/leases/_c_00000000-0000-4000-8000-000000000002-lease-", "l2")
	create(path+"/locks/_c_00000000-0000-4000-8000-000000000003-lock-", "m3")
	create(path+"/leases/_c_00000000-0000-4000-8000-000000000003-lease-", "l3")
	create(path+"/locks/_c_00000000-0000-4000-8000-000000000004-lock-", "m4")

	o := observeLock(t, a.client, lock)
	r := o.next("first")
	wantObserved(t, "a semaphore of 2 permits, full", r, fmt.Sprintf("[l1@%d l2@%d] of 4", l1, l2))
	if r.GetPermits() != 2 {
		t.Errorf("Observe: permits %d, want 2", r.GetPermits())
	}
	d, err := a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
	if err != nil {
		t.Fatal(err)
	}
	var holders, waiters []string
	for _, h := range d.GetHolders() {
		holders = append(holders, h.GetOwner())
	}
	for _, w := range d.GetWaiters() {
		waiters = append(waiters, w.GetOwner())
	}
	if got := fmt.Sprint(holders, waiters, d.GetPermits()); got != "[l1 l2] [l3 m4] 2" {
		t.Errorf("Describe: holders, waiters, permits %s, want [l1 l2] [l3 m4] 2", got)
	}
}

// TestObserveSemaphoreThroughGRPC: a semaphore of 2 permits taken through
// two sidecars: Observe tells its holders and permits, a contender
// waiting for a permit is not one of them, and Describe lists it as the
// waiter.
func TestObserveSemaphoreThroughGRPC(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)
	const lock = "observe/pool"
	o := observeLock(t, b.client, lock)
	wantObserved(t, "first message", o.next("first"), "[] of 0")

	s1 := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: lock, Owner: "s1", Permits: 2})
	g1 := s1.granted(wait)
	wantObserved(t, "s1 holds", o.next("s1"), fmt.Sprintf("[s1@%d] of 1", g1.GetFencingToken()))
	s2 := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: lock, Owner: "s2", Permits: 2})
	g2 := s2.granted(wait)
	r := o.next("s2")
	wantObserved(t, "s2 holds too", r, fmt.Sprintf("[s1@%d s2@%d] of 2", g1.GetFencingToken(), g2.GetFencingToken()))
	if r.GetPermits() != 2 {
		t.Errorf("Observe: permits %d, want 2", r.GetPermits())
	}
	s3 := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: lock, Owner: "s3", Permits: 2})
	s3.queued(wait)
	zktest.Eventually(t, wait, "Describe: s3 waits", func() bool {
		d, err := a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
		if err != nil {
			t.Fatal(err)
		}
		return len(d.GetWaiters()) == 1
	})
	d, err := a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%d %s %d", len(d.GetHolders()), d.GetWaiters()[0].GetOwner(), d.GetPermits()); got != "2 s3 2" {
		t.Errorf("Describe: holders, waiter, permits %s, want 2 s3 2", got)
	}
	s1.cancel()
	g3 := s3.granted(wait)
	wantObserved(t, "s1 released", o.next("s1 released"), fmt.Sprintf("[s2@%d s3@%d] of 2", g2.GetFencingToken(), g3.GetFencingToken()))
}

// TestObserveLimit: past MaxObservers open streams, Observe answers
// RESOURCE_EXHAUSTED TOO_MANY_OBSERVERS; a stream that ends frees its
// place.
func TestObserveLimit(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{cfg: Config{MaxObservers: 2}})
	a.waitUsable(t)
	first := observeLock(t, a.client, "limit/a")
	wantObserved(t, "first observer", first.next("first"), "[] of 0")
	second := observeLock(t, a.client, "limit/b")
	wantObserved(t, "second observer", second.next("first"), "[] of 0")
	wantCode(t, observeLock(t, a.client, "limit/c").end("third observer"), codes.ResourceExhausted, "TOO_MANY_OBSERVERS")
	first.cancel()
	wantCode(t, first.end("cancelled"), codes.Canceled, "")
	zktest.Eventually(t, 10*time.Second, "the cancelled stream's place is free", func() bool {
		a.svc.mu.Lock()
		defer a.svc.mu.Unlock()
		return a.svc.observers < 2
	})
	third := observeLock(t, a.client, "limit/c")
	wantObserved(t, "third observer once the first left", third.next("first"), "[] of 0")
}
