package zkrecipes

import (
	"context"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zklock/zklock/internal/zktest"
)

// packetsReceived returns ZooKeeper's count of requests received (mntr).
func packetsReceived(t *testing.T, zkc *zktest.Cluster) int64 {
	t.Helper()
	n, err := zktest.PacketsReceived(zkc.Servers()[0])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUncontendedLockIsOneRequest: a lock nobody else holds is taken with
// one request (a multi that creates the node and learns its token from the
// lock node's stat), and the token is the node's czxid, as for a contended
// lock, whose token comes from the same multi.
func TestUncontendedLockIsOneRequest(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 10*time.Second)
	ins := zktest.Client(t, zkc.ConnectString())
	const lockPath = "/zklock/one"
	first, err := s.Lock(ctxFor(t, 10*time.Second), lockPath+"/first", LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release(ctxFor(t, 10*time.Second))
	// A persistent lock node, which the container reaper leaves alone.
	if _, err := ins.Create(lockPath+"/other", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}

	idle := int64(1 << 30) // what reading the count adds to it
	for range 3 {
		before := packetsReceived(t, zkc)
		idle = min(idle, packetsReceived(t, zkc)-before)
	}
	fewest := int64(1 << 30)
	for range 5 { // heartbeats may fall in between: the fewest counts
		before := packetsReceived(t, zkc)
		h, err := s.Lock(ctxFor(t, 10*time.Second), lockPath+"/other", LockOptions{})
		after := packetsReceived(t, zkc)
		if err != nil {
			t.Fatal(err)
		}
		fewest = min(fewest, after-before-idle)
		ok, st, err := ins.Exists(h.Path())
		if err != nil || !ok {
			t.Fatalf("Exists(%s) = %v, %v", h.Path(), ok, err)
		}
		if h.Token() != st.Czxid {
			t.Errorf("token %d, want the node's czxid %d", h.Token(), st.Czxid)
		}
		if err := h.Release(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if fewest != 1 {
		t.Errorf("an uncontended Lock took %d requests, want 1", fewest)
	}

	// Contended: the waiter's token is its node's czxid too.
	queued := make(chan struct{}, 1)
	got := make(chan *Hold, 1)
	go func() {
		w, err := s.Lock(ctxFor(t, time.Minute), lockPath+"/first", LockOptions{OnQueued: func(int, int) {
			select {
			case queued <- struct{}{}:
			default:
			}
		}})
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
		got <- w
	}()
	<-queued
	if err := first.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	w := <-got
	if w == nil {
		t.FailNow()
	}
	_, st, err := ins.Exists(w.Path())
	if err != nil || st == nil || w.Token() != st.Czxid {
		t.Errorf("waiter's token %d, want its node's czxid (%v, %v)", w.Token(), st, err)
	}
	w.Release(ctxFor(t, 10*time.Second))
}

// TestEndedHoldIsDeletedWithTheNextCreate: a hold whose ReleaseWhenDone
// context ended is deleted by the next Lock of its lock node in the request
// that creates the new node, even before anyone called Release: the new
// contender does not queue behind it.
func TestEndedHoldIsDeletedWithTheNextCreate(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 10*time.Second)
	ins := zktest.Client(t, zkc.ConnectString())
	const lockPath = "/zklock/ended"
	for i := range 5 {
		h, err := s.Lock(ctxFor(t, 10*time.Second), lockPath, LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		h.ReleaseWhenDone(ctx)
		cancel()
		var positions []int
		next, err := s.Lock(ctxFor(t, 10*time.Second), lockPath, LockOptions{OnQueued: func(pos, _ int) { positions = append(positions, pos) }})
		if err != nil {
			t.Fatal(err)
		}
		if len(positions) != 1 || positions[0] != 0 {
			t.Errorf("round %d: next Lock queued at %v, want at once at the head", i, positions)
		}
		if ok, _, err := ins.Exists(h.Path()); err != nil || ok {
			t.Errorf("round %d: the ended hold's node %s exists: %v (%v)", i, h.Path(), ok, err)
		}
		if err := h.Release(ctxFor(t, 10*time.Second)); err != nil {
			t.Errorf("round %d: Release of the ended hold after its node went with the next create: %v", i, err)
		}
		if next.Token() <= h.Token() {
			t.Errorf("round %d: token %d not above %d", i, next.Token(), h.Token())
		}
		if err := next.Release(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLockNodeWithoutWriteStillLocks: a lock node whose ACL refuses the
// setData of the one-request create (made by another client with an ACL
// of its own) is still locked, by a plain create, with the same token.
func TestLockNodeWithoutWriteStillLocks(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 10*time.Second)
	ins := zktest.Client(t, zkc.ConnectString())
	if _, err := ins.Create("/zklock", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	const lockPath = "/zklock/nowrite"
	if _, err := ins.Create(lockPath, nil, 0, zk.WorldACL(zk.PermCreate|zk.PermRead|zk.PermDelete)); err != nil {
		t.Fatal(err)
	}
	h, err := s.Lock(ctxFor(t, 10*time.Second), lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, st, err := ins.Exists(h.Path())
	if err != nil || st == nil || h.Token() != st.Czxid {
		t.Errorf("token %d, want the node's czxid (%v, %v)", h.Token(), st, err)
	}
	if err := h.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}
