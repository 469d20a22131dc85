package e2e

import (
	"strings"
	"testing"
	"time"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// queuedWithin bounds how long after a change of its position a waiter's
// stream may bring the new Queued. The API promises about a second: the
// sidecar looks at the lock node every 0.5 s, reads its queue, and sends.
// The other second covers a loaded 2-core machine running race-enabled
// zklockds; a change the waiter's own watch does not see was never sent
// before the sidecar looked (issue 12).
const queuedWithin = 2 * time.Second

// Issue 12's queue [holder, A, B, C, me] through two zklockds: holder and B
// on x, A, C and me on y. Every node ahead of me that goes changes my
// position, and my stream brings each new position within queuedWithin,
// whether the node was the one I watch (C) or not (A, the holder), of my
// zklockd's session (A, C) or not (holder); then I am granted. No one
// watches the lock node itself.
func TestQueuedFollowsEveryChangeAhead(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	x := startDaemon(t, "x", zkc.ConnectString(), daemonOpts{})
	y := startDaemon(t, "y", zkc.ConnectString(), daemonOpts{})
	const lock = "queued"

	holder := x.acquire("holder", &zklockv1.AcquireRequest{Lock: lock, Owner: "holder"})
	gh, _ := holder.granted(wait)
	// join queues one more waiter and checks its first Queued.
	join := func(d *daemon, name string, pos int32) *stream {
		t.Helper()
		s := d.acquire(name, &zklockv1.AcquireRequest{Lock: lock, Owner: name})
		if q := s.queued(wait); q.GetPosition() != pos || q.GetQueueLength() != pos+1 {
			t.Fatalf("%s: first Queued %v, want position %d of %d", name, q, pos, pos+1)
		}
		return s
	}
	a := join(y, "A", 1)
	b := join(x, "B", 2)
	c := join(y, "C", 3)
	me := join(y, "me", 4)

	// heard checks that my next event is Queued{pos, n}, within
	// queuedWithin of from.
	heard := func(step string, from time.Time, pos, n int32) {
		t.Helper()
		e := me.next(queuedWithin + time.Second)
		q := e.GetQueued()
		if q == nil || q.GetPosition() != pos || q.GetQueueLength() != n {
			t.Fatalf("%s: event %v, want Queued position %d, queue_length %d", step, e.AcquireResponse, pos, n)
		}
		d := e.at.Sub(from)
		t.Logf("%s: Queued %d of %d after %v", step, pos, n, d.Round(time.Millisecond))
		if d > queuedWithin {
			t.Errorf("%s: Queued %d of %d came %v after the change, want within %v", step, pos, n, d, queuedWithin)
		}
	}

	start := time.Now()
	a.cancel()
	heard("A cancelled", start, 3, 4)
	// wchc lists data watches only; zk_watch_count counts children
	// watches too.
	all, err := zktest.WatchCount(zkc.Server(0).Addr())
	if err != nil {
		t.Fatal(err)
	}
	if onLock, onNodes := lockWatches(t, zkc, "/zklock/"+lock); onLock != 0 || onNodes == 0 || all != int64(onNodes) {
		t.Errorf("%d sessions watch the lock node /zklock/%s and %d its contenders' nodes (%d watches in all), want none on the lock node (no child watch), some on the nodes",
			onLock, lock, onNodes, all)
	}

	start = time.Now()
	c.cancel() // the node my waiter watches
	heard("C cancelled", start, 2, 3)

	start = time.Now()
	if _, err := x.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: gh.GetLeaseId()}); err != nil {
		t.Fatalf("holder: Release: %v", err)
	}
	heard("holder released", start, 1, 2)

	gb, _ := b.granted(wait)
	if _, err := x.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: gb.GetLeaseId()}); err != nil {
		t.Fatalf("B: Release: %v", err)
	}
	// My stream may say position 0 before Granted (its Queued positions only
	// go down).
	gm, _ := me.granted(wait)
	if gm.GetFencingToken() <= gb.GetFencingToken() {
		t.Errorf("my token %d not above B's %d", gm.GetFencingToken(), gb.GetFencingToken())
	}
}

// lockWatches returns how many watches of sessions the ZooKeeper server
// holds on the node p itself and on its children (wchc lists each
// session's watched paths).
func lockWatches(t *testing.T, zkc *zktest.Cluster, p string) (onLock, onChildren int) {
	t.Helper()
	out, err := zktest.FourLetterWord(zkc.Server(0).Addr(), "wchc", 5*time.Second)
	if err != nil {
		t.Fatalf("wchc: %v", err)
	}
	for _, line := range strings.Split(out, "\n") {
		switch line = strings.TrimSpace(line); {
		case line == p:
			onLock++
		case strings.HasPrefix(line, p+"/"):
			onChildren++
		}
	}
	return onLock, onChildren
}
