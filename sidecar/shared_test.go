package sidecar

import (
	"strings"
	"testing"
	"time"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
)

// contenderWant is what Describe should say of one contender.
type contenderWant struct {
	owner string
	mode  zklockv1.Mode
	token int64 // 0: not known yet (a waiter), only checked to be positive
}

// checkContenders compares Describe's holders or waiters with want, in
// order, and returns their tokens.
func checkContenders(t *testing.T, what string, got []*zklockv1.Contender, want []contenderWant) []int64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Describe: %d %s %v, want %d", len(got), what, got, len(want))
	}
	tokens := make([]int64, len(got))
	for i, c := range got {
		w := want[i]
		if c.GetOwner() != w.owner || c.GetMode() != w.mode {
			t.Errorf("Describe: %s[%d] = owner %q mode %v, want owner %q mode %v", what, i, c.GetOwner(), c.GetMode(), w.owner, w.mode)
		}
		if c.GetFencingToken() <= 0 || (w.token != 0 && c.GetFencingToken() != w.token) {
			t.Errorf("Describe: %s[%d] (%s) token %d, want %d", what, i, w.owner, c.GetFencingToken(), w.token)
		}
		// The default layout names nodes as Curator does: __READ__ marks a
		// shared contender, -lock- an exclusive one (InterProcessMutex).
		marker := "-lock-"
		if w.mode == zklockv1.Mode_MODE_SHARED {
			marker = "-__READ__"
		}
		if !strings.HasPrefix(c.GetNode(), "_c_") || !strings.Contains(c.GetNode(), marker) {
			t.Errorf("Describe: %s[%d] (%s) node %q, want _c_<uuid>%s<seq>", what, i, w.owner, c.GetNode(), marker)
		}
		if c.GetCreateTime() == nil {
			t.Errorf("Describe: %s[%d] (%s) without create_time", what, i, w.owner)
		}
		tokens[i] = c.GetFencingToken()
	}
	return tokens
}

// TestSharedThroughGRPC: MODE_SHARED as the proto promises it, through two
// sidecars: shared holders hold together; an exclusive waiter queued behind
// them is granted only once both released; a shared acquirer that arrives
// behind a queued exclusive one waits for it (no reader overtakes a queued
// writer); Describe shows each contender's mode, owner and token.
func TestSharedThroughGRPC(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)
	const lock = "shared/doc"
	shared, exclusive := zklockv1.Mode_MODE_SHARED, zklockv1.Mode_MODE_EXCLUSIVE

	r1 := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: lock, Mode: shared, Owner: "r1"})
	g1 := r1.granted(wait)
	r2 := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: lock, Mode: shared, Owner: "r2"})
	if q := r2.queued(wait); q.GetPosition() != 1 || q.GetQueueLength() != 2 {
		t.Errorf("second reader's Queued = %v, want position 1 of 2", q)
	}
	g2 := r2.granted(wait) // while r1 holds
	if g1.GetLeaseId() == g2.GetLeaseId() || g1.GetFencingToken() == g2.GetFencingToken() {
		t.Errorf("shared holders share lease id or token: %v and %v", g1, g2)
	}

	w := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: lock, Mode: exclusive, Owner: "w"})
	if q := w.queued(wait); q.GetPosition() != 2 || q.GetQueueLength() != 3 {
		t.Errorf("writer's Queued = %v, want position 2 of 3", q)
	}
	r3 := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: lock, Mode: shared, Owner: "r3"})
	if q := r3.queued(wait); q.GetPosition() != 3 || q.GetQueueLength() != 4 {
		t.Errorf("late reader's Queued = %v, want position 3 of 4", q)
	}
	w.none(300 * time.Millisecond)
	r3.nonePending()

	// Either sidecar describes the lock the same way: it reads ZooKeeper.
	var waitTokens []int64
	for _, in := range []*instance{a, b} {
		d, err := in.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
		if err != nil {
			t.Fatalf("Describe: %v", err)
		}
		checkContenders(t, "holders", d.GetHolders(), []contenderWant{
			{"r1", shared, g1.GetFencingToken()}, {"r2", shared, g2.GetFencingToken()}})
		waitTokens = checkContenders(t, "waiters", d.GetWaiters(), []contenderWant{{"w", exclusive, 0}, {"r3", shared, 0}})
	}

	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g1.GetLeaseId()}); err != nil {
		t.Fatalf("Release r1: %v", err)
	}
	if r := r1.next(wait); r.GetReleased() == nil {
		t.Errorf("r1 got %v, want Released", r)
	}
	// r2 still holds: the writer waits on, and the late reader behind it;
	// each is told it moved up.
	if q := w.queued(wait); q.GetPosition() != 1 || q.GetQueueLength() != 3 {
		t.Errorf("writer's Queued after r1 left = %v, want position 1 of 3", q)
	}
	if q := r3.queued(wait); q.GetPosition() != 2 || q.GetQueueLength() != 3 {
		t.Errorf("late reader's Queued after r1 left = %v, want position 2 of 3", q)
	}
	w.none(300 * time.Millisecond)
	r3.nonePending()
	d, err := b.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	checkContenders(t, "holders", d.GetHolders(), []contenderWant{{"r2", shared, g2.GetFencingToken()}})
	checkContenders(t, "waiters", d.GetWaiters(), []contenderWant{{"w", exclusive, waitTokens[0]}, {"r3", shared, waitTokens[1]}})

	r2.cancel() // the second reader's app goes away: its stream was its lease
	gw := w.granted(wait)
	if gw.GetFencingToken() != waitTokens[0] || gw.GetFencingToken() <= max(g1.GetFencingToken(), g2.GetFencingToken()) {
		t.Errorf("writer's token %d, want %d (Describe's) and above the readers' %d and %d",
			gw.GetFencingToken(), waitTokens[0], g1.GetFencingToken(), g2.GetFencingToken())
	}
	if q := r3.queued(wait); q.GetPosition() != 1 || q.GetQueueLength() != 2 {
		t.Errorf("late reader's Queued after r2 left = %v, want position 1 of 2", q)
	}
	r3.none(300 * time.Millisecond)
	d, err = a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	checkContenders(t, "holders", d.GetHolders(), []contenderWant{{"w", exclusive, gw.GetFencingToken()}})
	checkContenders(t, "waiters", d.GetWaiters(), []contenderWant{{"r3", shared, waitTokens[1]}})

	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: gw.GetLeaseId()}); err != nil {
		t.Fatalf("Release w: %v", err)
	}
	g3 := r3.granted(wait)
	if g3.GetFencingToken() != waitTokens[1] {
		t.Errorf("late reader's token %d, want %d (Describe's)", g3.GetFencingToken(), waitTokens[1])
	}
	d, err = b.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	checkContenders(t, "holders", d.GetHolders(), []contenderWant{{"r3", shared, g3.GetFencingToken()}})
	checkContenders(t, "waiters", d.GetWaiters(), nil)
}

// nonePending checks that no event has arrived yet.
func (e *events) nonePending() {
	e.t.Helper()
	select {
	case r, ok := <-e.ch:
		if ok {
			e.t.Fatalf("unexpected event %v", r)
		}
		e.t.Fatalf("stream ended: %v", <-e.err)
	default:
	}
}
