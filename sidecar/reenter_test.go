package sidecar

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/tcpproxy"
)

// TestReentryKeepsTheLockUntilTheLastLease: a re-entry is granted at once
// with the outer lease's token and a lease id of its own, re-entries nest,
// detached or stream-bound; the lock stays held, against another sidecar's
// waiter, until the first lease and every re-entry have ended, in any
// order; Describe counts the re-entries.
func TestReentryKeepsTheLockUntilTheLastLease(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)
	const lock = "reentrant"

	outer := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: lock, Owner: "outer"})
	g := outer.granted(10 * time.Second)
	inner := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: lock, Reenter: g.GetLeaseId()})
	gi := inner.next(5 * time.Second).GetGranted()
	if gi == nil || gi.GetFencingToken() != g.GetFencingToken() || gi.GetLeaseId() == g.GetLeaseId() {
		t.Fatalf("re-entry: first event Granted %v, want at once the token %d and a lease id of its own", gi, g.GetFencingToken())
	}
	nested := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: lock, Reenter: gi.GetLeaseId(), Detach: true, Ttl: dur(time.Minute)})
	gn := nested.next(5 * time.Second).GetGranted()
	if gn == nil || gn.GetFencingToken() != g.GetFencingToken() || gn.GetExpiresAt() == nil {
		t.Fatalf("detached re-entry of the re-entry: %v, want Granted with token %d and an expiry", gn, g.GetFencingToken())
	}
	if err := nested.end(5 * time.Second); err != nil {
		t.Fatalf("detached re-entry's stream: %v", err)
	}
	d, err := a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.GetHolders()) != 1 || d.GetHolders()[0].GetReentered() != 2 || d.GetHolders()[0].GetOwner() != "outer" {
		t.Errorf("Describe: holders %v, want the outer lease's node, re-entered 2 times", d.GetHolders())
	}

	other := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: lock, Owner: "other"})
	other.queued(10 * time.Second)

	// The first lease ends first: its re-entries keep the lock.
	outer.cancel()
	if err := outer.end(5 * time.Second); status.Code(err) != codes.Canceled {
		t.Fatalf("outer stream: %v", err)
	}
	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: gn.GetLeaseId()}); err != nil {
		t.Fatalf("Release of the detached re-entry: %v", err)
	}
	// A waiter of the same sidecar, whose create would take along the
	// delete of a node whose stream ended (Hold.ReleaseWhenDone), waits
	// too.
	local := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: lock, Owner: "local"})
	local.queued(10 * time.Second)
	other.none(time.Second)
	local.none(0)
	// A lease that ended cannot be re-entered, even while others hold.
	wantCode(t, acquireErr(t, a.client, &zklockv1.AcquireRequest{Lock: lock, Reenter: g.GetLeaseId()}), codes.NotFound, "")

	inner.cancel()
	go2 := other.granted(10 * time.Second)
	if go2.GetFencingToken() <= g.GetFencingToken() {
		t.Errorf("next holder's token %d, want more than %d", go2.GetFencingToken(), g.GetFencingToken())
	}
	if q := local.queued(10 * time.Second); q.GetPosition() != 1 {
		t.Errorf("local waiter: %v once other holds, want position 1", q)
	}
	local.none(500 * time.Millisecond)
	other.cancel()
	local.granted(10 * time.Second)
}

// TestReentryLostTogether: when the sidecar shuts down, the first lease and
// its re-entry are both told Lost, and the lock is free for another.
func TestReentryLostTogether(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)
	outer := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "together"})
	g := outer.granted(10 * time.Second)
	inner := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "together", Reenter: g.GetLeaseId()})
	inner.granted(5 * time.Second)
	other := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "together"})
	other.queued(10 * time.Second)
	a.stop(t)
	for name, ev := range map[string]*events{"outer": outer, "inner": inner} {
		if r := ev.next(5 * time.Second); r.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SHUTDOWN {
			t.Errorf("%s: %v at shutdown, want Lost SHUTDOWN", name, r)
		}
	}
	other.granted(10 * time.Second)
}

// TestReentryAndPermitsRefused: bad reenter and permits values get a clear
// status and change nothing.
func TestReentryAndPermitsRefused(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	held := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "x"})
	g := held.granted(10 * time.Second)
	shared := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "s", Mode: zklockv1.Mode_MODE_SHARED})
	gs := shared.granted(10 * time.Second)
	sem := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "pool", Permits: 3})
	gp := sem.granted(10 * time.Second)

	for _, c := range []struct {
		name   string
		req    *zklockv1.AcquireRequest
		code   codes.Code
		reason string
		says   []string
	}{
		{"malformed reenter", &zklockv1.AcquireRequest{Lock: "x", Reenter: "nope"}, codes.InvalidArgument, "INVALID_REENTER", []string{"reenter"}},
		{"unknown reenter", &zklockv1.AcquireRequest{Lock: "x", Reenter: strings.Repeat("ab", 16)}, codes.NotFound, "", []string{"reenter"}},
		{"reenter of another lock", &zklockv1.AcquireRequest{Lock: "y", Reenter: g.GetLeaseId()}, codes.InvalidArgument, "INVALID_REENTER", []string{`"x"`, `"y"`}},
		{"exclusive through shared", &zklockv1.AcquireRequest{Lock: "s", Reenter: gs.GetLeaseId(), Mode: zklockv1.Mode_MODE_EXCLUSIVE}, codes.FailedPrecondition, "REENTER_MODE", []string{"shared"}},
		{"reenter with other permits", &zklockv1.AcquireRequest{Lock: "pool", Reenter: gp.GetLeaseId(), Permits: 2}, codes.FailedPrecondition, "PERMITS_DIFFER", []string{"3 permits", "2 permits"}},
		{"negative permits", &zklockv1.AcquireRequest{Lock: "z", Permits: -1}, codes.InvalidArgument, "INVALID_PERMITS", []string{"-1"}},
		{"too many permits", &zklockv1.AcquireRequest{Lock: "z", Permits: maxPermits + 1}, codes.InvalidArgument, "INVALID_PERMITS", []string{"1000001"}},
		{"shared semaphore", &zklockv1.AcquireRequest{Lock: "z", Permits: 2, Mode: zklockv1.Mode_MODE_SHARED}, codes.InvalidArgument, "INVALID_PERMITS", []string{"MODE_SHARED"}},
		{"other permits", &zklockv1.AcquireRequest{Lock: "pool", Permits: 5}, codes.FailedPrecondition, "PERMITS_DIFFER", []string{"3 permits", "5 permits"}},
		{"lock on a semaphore", &zklockv1.AcquireRequest{Lock: "pool"}, codes.FailedPrecondition, "PERMITS_DIFFER", []string{"semaphore of 3 permits", "lock (1 permit)"}},
		{"semaphore on a lock", &zklockv1.AcquireRequest{Lock: "x", Permits: 2}, codes.FailedPrecondition, "PERMITS_DIFFER", []string{"lock (1 permit)", "2 permits"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := acquireErr(t, a.client, c.req)
			wantCode(t, err, c.code, c.reason)
			for _, s := range c.says {
				if msg := status.Convert(err).Message(); !strings.Contains(msg, s) {
					t.Errorf("message %q does not say %q", msg, s)
				}
			}
		})
	}
	// Nothing changed: each lock still has its one holder and no waiter.
	for lock, token := range map[string]int64{"x": g.GetFencingToken(), "s": gs.GetFencingToken(), "pool": gp.GetFencingToken()} {
		d, err := a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.GetHolders()) != 1 || d.GetHolders()[0].GetFencingToken() != token || len(d.GetWaiters()) != 0 {
			t.Errorf("%s after the refusals: holders %v, waiters %v; want its one holder, token %d", lock, d.GetHolders(), d.GetWaiters(), token)
		}
	}
}

// TestSemaphoreThroughGRPC: permits 2 grants two holders at once, each its
// own token, and the third once one of them released.
func TestSemaphoreThroughGRPC(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)
	first := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "two", Permits: 2})
	g1 := first.granted(10 * time.Second)
	second := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "two", Permits: 2})
	g2 := second.granted(10 * time.Second)
	if g1.GetFencingToken() == g2.GetFencingToken() {
		t.Errorf("two holders with token %d", g1.GetFencingToken())
	}
	third := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "two", Permits: 2})
	third.queued(10 * time.Second)
	third.none(time.Second)
	if _, err := b.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g2.GetLeaseId()}); err != nil {
		t.Fatal(err)
	}
	g3 := third.granted(10 * time.Second)
	if g3.GetFencingToken() <= g2.GetFencingToken() {
		t.Errorf("third holder's token %d, want more than %d", g3.GetFencingToken(), g2.GetFencingToken())
	}
}

// acquireErr makes an Acquire that must fail before any grant, and returns
// the status its stream ended with.
func acquireErr(t *testing.T, c zklockv1.LockServiceClient, req *zklockv1.AcquireRequest) error {
	t.Helper()
	ev := acquire(t, c, req)
	err := ev.end(10 * time.Second)
	if err == nil {
		t.Fatalf("Acquire %v ended without an error", req)
	}
	return err
}

// TestReentryLostWithTheEpoch: when the epoch ends (no contact with
// ZooKeeper for most of the session timeout), the first lease and its
// re-entries are all told Lost, and a Release of any of them, or a
// re-entry, answers ABORTED.
func TestReentryLostWithTheEpoch(t *testing.T) {
	_, p := startProxiedZK(t)
	a := startInstance(t, p.Addr(), instanceOpts{timeout: 4 * time.Second})
	a.waitUsable(t)
	outer := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "epoch"})
	g := outer.granted(10 * time.Second)
	inner := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "epoch", Reenter: g.GetLeaseId()})
	gi := inner.granted(5 * time.Second)
	detached := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "epoch", Reenter: gi.GetLeaseId(), Detach: true})
	gd := detached.granted(5 * time.Second)
	st, _ := a.sess.State()
	p.SetMode(tcpproxy.Stall)
	<-st.Epoch.Done()
	for name, ev := range map[string]*events{"outer": outer, "inner": inner} {
		for {
			r := ev.next(10 * time.Second)
			if r.GetSuspended() != nil {
				continue
			}
			if r.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SESSION_EXPIRED {
				t.Errorf("%s: %v once the epoch ended, want Lost SESSION_EXPIRED", name, r)
			}
			break
		}
	}
	for name, id := range map[string]string{"outer": g.GetLeaseId(), "inner": gi.GetLeaseId(), "detached": gd.GetLeaseId()} {
		_, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: id})
		wantCode(t, err, codes.Aborted, "LEASE_LOST")
		_ = name
	}
	wantCode(t, acquireErr(t, a.client, &zklockv1.AcquireRequest{Lock: "epoch", Reenter: gi.GetLeaseId()}), codes.Aborted, "")
	p.SetMode(tcpproxy.Pass)
}
