package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// A zklockd stopped by SIGSTOP for longer than its session timeout cannot
// tell anyone anything while it is stopped; ZooKeeper expires its session
// and grants its locks to others. Once continued (SIGCONT), it must check
// its own clock before it answers anything: its stream-bound holder hears
// Lost{SESSION_EXPIRED} first (no Resumed, no Suspended), a Renew or a
// Release of its detached leases answers ABORTED, also for calls sent while
// it was stopped, and its waiter is queued again on the new session. The
// other zklockd's waiters are granted only after the paused one's own-clock
// deadline, so no vouched hold overlaps another. This needs no root, unlike
// the chaos run's pause fault.
func TestPausedZklockdSaysLostOnWaking(t *testing.T) {
	t.Parallel()
	const sessionTimeout = 3 * time.Second
	// The paused zklockd vouches for its holders until its last contact
	// with ZooKeeper, no later than the pause, plus 3/4 of the timeout.
	const ownDeadline = sessionTimeout - sessionTimeout/4
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{sessionTimeout: sessionTimeout})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{sessionTimeout: sessionTimeout})

	holder := a.acquire("a-holder", &zklockv1.AcquireRequest{Lock: "paused/held"})
	gHolder, _ := holder.granted(wait)
	detached := map[string]*zklockv1.Granted{}
	for _, lock := range []string{"paused/renewed", "paused/released"} {
		g, _ := a.acquire("a-"+lock, &zklockv1.AcquireRequest{Lock: lock, Detach: true, Ttl: dur(time.Minute)}).granted(wait)
		detached[lock] = g
	}
	aWaiter := a.acquire("a-waiter", &zklockv1.AcquireRequest{Lock: "paused/held"})
	aWaiter.queued(wait)
	bWaiters := map[string]*stream{}
	for _, lock := range []string{"paused/held", "paused/renewed", "paused/released"} {
		bWaiters[lock] = b.acquire("b-"+lock, &zklockv1.AcquireRequest{Lock: lock})
		bWaiters[lock].queued(wait)
	}

	// A call that reaches ZooKeeper right before the pause: the session's
	// last contact is then the pause, whatever a's heartbeat was doing.
	if _, err := a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: "paused/held"}); err != nil {
		t.Fatal(err)
	}
	paused := a.signal(syscall.SIGSTOP)
	// Calls sent to the stopped zklockd wait in its socket; it must answer
	// them as lost once it runs again.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	renewed, released := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := a.client.Renew(ctx, &zklockv1.RenewRequest{LeaseIds: []string{detached["paused/renewed"].GetLeaseId()}})
		renewed <- err
	}()
	go func() {
		_, err := a.client.Release(ctx, &zklockv1.ReleaseRequest{LeaseId: detached["paused/released"].GetLeaseId()})
		released <- err
	}()

	// ZooKeeper expires a's session and b's waiters get the locks, each
	// with a higher token, never before a stopped vouching for them.
	for lock, s := range bWaiters {
		g, at := s.granted(sessionTimeout + wait)
		if after := at.Sub(paused); after < ownDeadline {
			t.Errorf("b granted %s %v after a was paused, before a's own clock gave it up (%v)", lock, after.Round(time.Millisecond), ownDeadline)
		}
		before := detached[lock]
		if lock == "paused/held" {
			before = gHolder
		}
		if g.GetFencingToken() <= before.GetFencingToken() {
			t.Errorf("b's token %d for %s not above a's %d", g.GetFencingToken(), lock, before.GetFencingToken())
		}
	}
	time.Sleep(time.Until(paused.Add(sessionTimeout + 1500*time.Millisecond)))
	continued := a.signal(syscall.SIGCONT)

	// Events that reached the holder before SIGCONT were sent before the
	// pause (a busy machine may have suspended a for a moment).
	e := holder.next(wait)
	for e.at.Before(continued) && e.GetLost() == nil {
		e = holder.next(wait)
	}
	if lost := e.GetLost(); lost == nil || lost.GetReason() != zklockv1.LostReason_LOST_REASON_SESSION_EXPIRED {
		t.Fatalf("a-holder: first event after waking: %v, want Lost{SESSION_EXPIRED}", e.AcquireResponse)
	}
	if err := holder.end(wait); err != nil {
		t.Errorf("a-holder: stream ended with %v after Lost, want OK", err)
	}
	wantLost := func(what string, err error) {
		t.Helper()
		info := wantStatus(t, err, codes.Aborted, "LEASE_LOST")
		if r := info.GetMetadata()["lost_reason"]; r != "SESSION_EXPIRED" {
			t.Errorf("%s: lost_reason %q, want SESSION_EXPIRED", what, r)
		}
	}
	wantLost("Renew sent during the pause", <-renewed)
	wantLost("Release sent during the pause", <-released)
	_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{detached["paused/renewed"].GetLeaseId()}})
	wantLost("Renew after waking", err)
	_, err = a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: detached["paused/renewed"].GetLeaseId()})
	wantLost("Release after waking", err)

	// a's waiter was never told to retry: it queued again on a's new
	// session, behind b, and gets the lock once b lets go.
	bWaiters["paused/held"].cancel()
	g, _ := aWaiter.granted(startTimeout)
	if g.GetFencingToken() <= gHolder.GetFencingToken() {
		t.Errorf("a's waiter granted token %d, not above a's lost holder's %d", g.GetFencingToken(), gHolder.GetFencingToken())
	}
}
