package sidecar

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

const wait = 10 * time.Second

func TestAcquireQueuesAndGrantsInTurn(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)

	ea := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "demo", Owner: "a"})
	if q := ea.queued(wait); q.GetPosition() != 0 || q.GetQueueLength() != 1 {
		t.Errorf("first Queued = %v, want position 0 of 1", q)
	}
	ga := ea.granted(wait)
	if ga.GetExpiresAt() != nil {
		t.Errorf("stream-bound lease has expires_at %v", ga.GetExpiresAt())
	}

	eb := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "demo", Owner: "b"})
	if q := eb.queued(wait); q.GetPosition() != 1 || q.GetQueueLength() != 2 {
		t.Errorf("second Queued = %v, want position 1 of 2", q)
	}
	eb.none(300 * time.Millisecond)

	d, err := b.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.GetHolders()) != 1 || d.GetHolders()[0].GetOwner() != "a" || d.GetHolders()[0].GetFencingToken() != ga.GetFencingToken() ||
		len(d.GetWaiters()) != 1 || d.GetWaiters()[0].GetOwner() != "b" {
		t.Errorf("Describe = %v, want holder a (token %d) and waiter b", d, ga.GetFencingToken())
	}

	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: ga.GetLeaseId()}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if r := ea.next(wait); r.GetReleased() == nil {
		t.Errorf("holder's stream got %v, want Released", r)
	}
	if err := ea.end(wait); err != nil {
		t.Errorf("holder's stream ended with %v", err)
	}
	gb := eb.granted(wait)
	if gb.GetFencingToken() <= ga.GetFencingToken() {
		t.Errorf("next holder's token %d not above %d", gb.GetFencingToken(), ga.GetFencingToken())
	}
	// Releasing twice is fine; a released lease cannot be renewed.
	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: ga.GetLeaseId()}); err != nil {
		t.Errorf("second Release: %v", err)
	}
	_, err = a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{ga.GetLeaseId()}})
	wantCode(t, err, codes.NotFound, "LEASE_NOT_FOUND")
}

func TestClosingStreamReleasesAtOnce(t *testing.T) {
	zkc := startZK(t)
	// A long session timeout: a grant within it can only come from the
	// release, not from the session expiring.
	a := startInstance(t, zkc.ConnectString(), instanceOpts{timeout: 30 * time.Second})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{timeout: 30 * time.Second})
	a.waitUsable(t)
	b.waitUsable(t)
	ins := zktest.Client(t, zkc.ConnectString())

	ea := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "orders/42"})
	ga := ea.granted(wait)
	eb := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "orders/42"})
	eb.queued(wait)

	ea.cancel() // the app crashed, or dropped its stream
	gb := eb.granted(5 * time.Second)
	if gb.GetFencingToken() <= ga.GetFencingToken() {
		t.Errorf("token %d not above %d", gb.GetFencingToken(), ga.GetFencingToken())
	}
	if n := len(zktest.Children(t, ins, "/zklock/orders/42")); n != 1 {
		t.Errorf("%d nodes, want the new holder's only", n)
	}
	// The dropped lease is released, not lost.
	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: ga.GetLeaseId()}); err != nil {
		t.Errorf("Release after the stream closed: %v", err)
	}
}

func TestDetachedLease(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)

	t.Run("renewed, it is kept; released, it is gone", func(t *testing.T) {
		// Renewed every 250 ms for 3 s, past its 2 s ttl: a round may take
		// 1.75 s longer than planned before the lease runs out.
		ea := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "job", Detach: true, Ttl: dur(2 * time.Second)})
		g := ea.granted(wait)
		if g.GetExpiresAt() == nil {
			t.Fatal("detached lease without expires_at")
		}
		if err := ea.end(wait); err != nil {
			t.Fatalf("detached stream ended with %v", err)
		}
		for range 12 {
			r, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g.GetLeaseId()}})
			if err != nil {
				t.Fatalf("Renew: %v", err)
			}
			if got := r.GetLeases()[0].GetExpiresAt().AsTime(); !got.After(g.GetExpiresAt().AsTime()) {
				t.Errorf("Renew moved expiry to %v, not after %v", got, g.GetExpiresAt().AsTime())
			}
			time.Sleep(250 * time.Millisecond)
		}
		eb := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "job", Wait: dur(0)})
		eb.queued(wait)
		wantCode(t, eb.end(wait), codes.DeadlineExceeded, "LOCK_HELD")
		if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()}); err != nil {
			t.Fatalf("Release: %v", err)
		}
		eb = acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "job", Wait: dur(0)})
		eb.granted(wait)
	})

	t.Run("not renewed, it expires and frees the lock", func(t *testing.T) {
		ea := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "expiring", Detach: true, Ttl: dur(time.Second)})
		g := ea.granted(wait)
		eb := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "expiring"})
		eb.queued(wait)
		gb := eb.granted(wait)
		if gb.GetFencingToken() <= g.GetFencingToken() {
			t.Errorf("token %d not above %d", gb.GetFencingToken(), g.GetFencingToken())
		}
		_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g.GetLeaseId()}})
		wantCode(t, err, codes.Aborted, "LEASE_LOST")
		if !strings.Contains(err.Error(), "LEASE_EXPIRED") {
			t.Errorf("Renew error %q does not name LEASE_EXPIRED", err)
		}
		_, err = a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()})
		wantCode(t, err, codes.Aborted, "LEASE_LOST")
	})
}

func TestCancelBeforeGrantLeavesNoNode(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	ins := zktest.Client(t, zkc.ConnectString())
	ea := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "c"})
	ea.granted(wait)

	ew := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "c"})
	ew.queued(wait)
	if n := len(zktest.Children(t, ins, "/zklock/c")); n != 2 {
		t.Fatalf("%d nodes, want 2", n)
	}
	ew.cancel()
	zktest.Eventually(t, 5*time.Second, "the cancelled waiter's node is deleted", func() bool {
		return len(zktest.Children(t, ins, "/zklock/c")) == 1
	})

	et := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "c", Wait: dur(200 * time.Millisecond)})
	et.queued(wait)
	wantCode(t, et.end(wait), codes.DeadlineExceeded, "WAIT_EXPIRED")
	if n := len(zktest.Children(t, ins, "/zklock/c")); n != 1 {
		t.Errorf("%d nodes after the wait ran out, want 1", n)
	}
}

func TestShutdownReleasesEveryLease(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{timeout: 30 * time.Second})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)
	ins := zktest.Client(t, zkc.ConnectString())

	held := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "s1"})
	held.granted(wait)
	det := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "s2", Detach: true})
	det.granted(wait)
	waiting := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "s1"})
	waiting.queued(wait)
	other := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "s2"})
	other.queued(wait)

	a.stop(t)
	if r := held.next(wait); r.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SHUTDOWN {
		t.Errorf("holder got %v, want Lost{SHUTDOWN}", r)
	}
	wantCode(t, waiting.end(wait), codes.Unavailable, "SHUTTING_DOWN")
	other.granted(5 * time.Second)
	// a's nodes are gone; b's on s2 holds.
	for p, want := range map[string]int{"/zklock/s1": 0, "/zklock/s2": 1} {
		if n := len(zktest.Children(t, ins, p)); n != want {
			t.Errorf("%s: %d nodes after shutdown, want %d", p, n, want)
		}
	}
}

// TestShutdownCancelsListedWaiters: Shutdown cancels the context of every
// waiting Acquire still listed, and only once the stop context has ended,
// which is how the waiter tells SHUTTING_DOWN from its stream's end; one
// that lists itself after that is cancelled at once.
func TestShutdownCancelsListedWaiters(t *testing.T) {
	s := fuzzService(t) // no session: Shutdown has no lease to release
	stoppedFirst := make(chan bool, 1)
	if n := s.listWaiter(func() { stoppedFirst <- s.stopCtx.Err() != nil }); n == 0 {
		t.Fatal("listWaiter before Shutdown returned 0, want the waiter's number")
	}
	s.unlistWaiter(s.listWaiter(func() { t.Error("Shutdown called the cancel of a waiter that was unlisted") }))
	s.Shutdown(context.Background())
	select {
	case stopped := <-stoppedFirst:
		if !stopped {
			t.Error("Shutdown cancelled a waiter before the stop context ended")
		}
	default:
		t.Error("Shutdown did not cancel the listed waiter")
	}
	called := false
	if n := s.listWaiter(func() { called = true }); n != 0 || !called {
		t.Errorf("listWaiter after Shutdown: number %d, cancelled %v; want 0, cancelled at once", n, called)
	}
}

func TestSuspendedResumedThenLost(t *testing.T) {
	_, p := startProxiedZK(t)
	a := startInstance(t, p.Addr(), instanceOpts{timeout: 4 * time.Second})
	a.waitUsable(t)
	e := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "flaky"})
	g := e.granted(wait)

	p.SetMode(tcpproxy.Stall)
	if r := e.next(wait); r.GetSuspended() == nil {
		t.Fatalf("got %v, want Suspended", r)
	}
	_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g.GetLeaseId()}})
	wantCode(t, err, codes.Unavailable, "SUSPENDED")
	p.SetMode(tcpproxy.Pass)
	if r := e.next(wait); r.GetResumed() == nil {
		t.Fatalf("got %v, want Resumed", r)
	}

	stalled := time.Now()
	p.SetMode(tcpproxy.Stall)
	if r := e.next(wait); r.GetSuspended() == nil {
		t.Fatalf("got %v, want Suspended", r)
	}
	if r := e.next(wait); r.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SESSION_EXPIRED {
		t.Fatalf("got %v, want Lost{SESSION_EXPIRED}", r)
	}
	// Safety, not speed: the holder must hear Lost before ZooKeeper could
	// expire the session and grant the lock to another.
	if d := time.Since(stalled); d >= 4*time.Second {
		t.Errorf("Lost arrived %v after contact stopped, not before the 4s session timeout", d)
	}
	if err := e.end(wait); err != nil {
		t.Errorf("stream ended with %v", err)
	}
	p.SetMode(tcpproxy.Pass)
	_, err = a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g.GetLeaseId()}})
	wantCode(t, err, codes.Aborted, "LEASE_LOST")
}

func TestUnavailableWithoutSession(t *testing.T) {
	a := startInstance(t, "127.0.0.1:1", instanceOpts{})
	e := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "x"})
	wantCode(t, e.end(wait), codes.Unavailable, "NO_SESSION")
	h, err := healthpb.NewHealthClient(a.conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health %v, want NOT_SERVING", h.GetStatus())
	}
}

// TestReleaseOfLeaseLostWithItsEpoch: a detached lease whose epoch ended
// (the session itself survived, so the sidecar deleted the node itself)
// must answer ABORTED, not OK: the lock may have been held by another.
//
// ZooKeeper's replies are dropped while its requests get through, so the
// epoch ends by the sidecar's clock while ZooKeeper keeps the session (see
// zkrecipes' TestEpochEndedOnSurvivingSessionLeavesNoOrphan); the cut is
// healed, and the connection closed, as soon as the epoch ends.
func TestReleaseOfLeaseLostWithItsEpoch(t *testing.T) {
	zkc, p := startProxiedZK(t)
	a := startInstance(t, p.Addr(), instanceOpts{timeout: 8 * time.Second})
	a.waitUsable(t)
	g := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "epoch", Detach: true, Ttl: dur(time.Minute)}).granted(wait)

	st, changed := a.sess.State()
	p.SetMode(tcpproxy.DropReplies)
	<-st.Epoch.Done()
	p.SetMode(tcpproxy.Pass)
	p.Cut()
	for {
		now, _ := a.sess.State()
		if now.Epoch != nil && now.Epoch != st.Epoch {
			if now.Epoch.SessionID() != st.Epoch.SessionID() {
				t.Fatalf("session 0x%x expired (new 0x%x), though ZooKeeper heard from it all along", st.Epoch.SessionID(), now.Epoch.SessionID())
			}
			break
		}
		select {
		case <-changed:
			_, changed = a.sess.State()
		case <-time.After(wait):
			t.Fatal("no new epoch")
		}
	}
	// The sidecar deletes the old epoch's node itself.
	ins := zktest.Client(t, zkc.ConnectString())
	zktest.Eventually(t, wait, "the lost lease's node is deleted", func() bool {
		return len(zktest.Children(t, ins, "/zklock/epoch")) == 0
	})
	_, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()})
	wantCode(t, err, codes.Aborted, "LEASE_LOST")
}

// TestReleaseWhileSuspended: a Release that ZooKeeper cannot confirm yet
// does not answer OK; the lease is no longer renewable; once contact is
// back a Release confirms the delete.
func TestReleaseWhileSuspended(t *testing.T) {
	zkc, p := startProxiedZK(t)
	a := startInstance(t, p.Addr(), instanceOpts{timeout: 20 * time.Second})
	a.waitUsable(t)
	ins := zktest.Client(t, zkc.ConnectString())
	g := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "susp", Detach: true, Ttl: dur(time.Minute)}).granted(wait)

	st, changed := a.sess.State()
	p.SetMode(tcpproxy.Stall)
	for st.Connected {
		<-changed
		st, changed = a.sess.State()
	}
	// The sidecar stops waiting a fifth of the time left (here 500 ms)
	// before the call's deadline, to answer why.
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	_, err := a.client.Release(ctx, &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()})
	cancel()
	wantCode(t, err, codes.Unavailable, "RELEASE_UNCONFIRMED")
	_, err = a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g.GetLeaseId()}})
	wantCode(t, err, codes.NotFound, "LEASE_NOT_FOUND")
	if n := len(zktest.Children(t, ins, "/zklock/susp")); n != 1 {
		t.Fatalf("%d nodes while the delete waits, want 1", n)
	}
	p.SetMode(tcpproxy.Pass)
	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()}); err != nil {
		t.Fatalf("Release once contact is back: %v", err)
	}
	if n := len(zktest.Children(t, ins, "/zklock/susp")); n != 0 {
		t.Errorf("%d nodes after the confirmed Release, want 0", n)
	}
}
