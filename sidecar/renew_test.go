package sidecar

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
)

// detached takes a detached lease on lock with ttl and returns it.
func detached(t *testing.T, in *instance, lock string, ttl time.Duration) *zklockv1.Granted {
	t.Helper()
	e := acquire(t, in.client, &zklockv1.AcquireRequest{Lock: lock, Detach: true, Ttl: dur(ttl)})
	g := e.granted(wait)
	if err := e.end(wait); err != nil {
		t.Fatalf("detached stream of %s ended with %v", lock, err)
	}
	return g
}

// renewWithin calls Renew and checks that it answers one expiry per id, in
// the order of ids, each ttl after the call (ttl 0: a stream-bound lease,
// no expiry).
func renewWithin(t *testing.T, in *instance, ids []string, ttl *time.Duration, want []time.Duration) []time.Time {
	t.Helper()
	req := &zklockv1.RenewRequest{LeaseIds: ids}
	if ttl != nil {
		req.Ttl = dur(*ttl)
	}
	before := time.Now()
	r, err := in.client.Renew(ctxT(t), req)
	after := time.Now()
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if len(r.GetLeases()) != len(ids) {
		t.Fatalf("Renew of %d ids answered %d leases", len(ids), len(r.GetLeases()))
	}
	out := make([]time.Time, len(ids))
	for i, l := range r.GetLeases() {
		if l.GetLeaseId() != ids[i] {
			t.Errorf("Renew: leases[%d] is not lease_ids[%d]: the answer is not in the request's order", i, i)
		}
		if want[i] == 0 {
			if l.GetExpiresAt() != nil {
				t.Errorf("Renew: leases[%d] (stream-bound) has expires_at %v", i, l.GetExpiresAt().AsTime())
			}
			continue
		}
		got := l.GetExpiresAt().AsTime()
		if l.GetExpiresAt() == nil || got.Before(before.Add(want[i])) || got.After(after.Add(want[i])) {
			t.Errorf("Renew: leases[%d] expires at %v, want %v after the call (between %v and %v)",
				i, got, want[i], before.Add(want[i]), after.Add(want[i]))
		}
		out[i] = got
	}
	return out
}

// infoOf returns the ErrorInfo of a status error.
func infoOf(t *testing.T, err error) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	t.Fatalf("no ErrorInfo in %v", err)
	return nil
}

// TestRenewSeveralWithTTL: Renew of several leases answers each lease's new
// expiry in the order of the request; a ttl given to Renew becomes each
// lease's ttl for later Renews; a lease left out expires at its own ttl
// while the renewed ones are kept.
func TestRenewSeveralWithTTL(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)

	const short, long = 2 * time.Second, time.Minute
	la := detached(t, a, "renew/a", short)
	lb := detached(t, a, "renew/b", short)
	lc := detached(t, a, "renew/c", short)
	ld := detached(t, a, "renew/d", short) // never renewed
	bound := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "renew/s"})
	ls := bound.granted(wait)

	// Out of the order the leases were granted in, a stream-bound lease
	// among them.
	ids := []string{lc.GetLeaseId(), la.GetLeaseId(), ls.GetLeaseId(), lb.GetLeaseId()}
	ttl := long
	renewWithin(t, a, ids, &ttl, []time.Duration{long, long, 0, long})

	// The new ttl sticks: a Renew without one extends by it again.
	ids = []string{lb.GetLeaseId(), lc.GetLeaseId(), la.GetLeaseId()}
	renewWithin(t, a, ids, nil, []time.Duration{long, long, long})

	// The lease left out expires at its own short ttl: another sidecar's
	// waiter gets it, and the sidecar says why it is gone.
	wd := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "renew/d"})
	wd.granted(short + wait)
	_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{ld.GetLeaseId()}})
	wantCode(t, err, codes.Aborted, "LEASE_LOST")
	if info := infoOf(t, err); info.GetMetadata()["lost_reason"] != "LEASE_EXPIRED" {
		t.Errorf("lost lease's ErrorInfo %v, want lost_reason LEASE_EXPIRED", info)
	}

	// The renewed leases are kept past the end of their first ttl.
	var first time.Time
	for _, g := range []*zklockv1.Granted{la, lb, lc} {
		if e := g.GetExpiresAt().AsTime(); e.After(first) {
			first = e
		}
	}
	time.Sleep(time.Until(first.Add(500 * time.Millisecond)))
	for _, lock := range []string{"renew/a", "renew/b", "renew/c"} {
		e := acquire(t, b.client, &zklockv1.AcquireRequest{Lock: lock, Wait: dur(0)})
		e.queued(wait)
		wantCode(t, e.end(wait), codes.DeadlineExceeded, "LOCK_HELD")
	}
	renewWithin(t, a, []string{la.GetLeaseId(), lb.GetLeaseId(), lc.GetLeaseId()}, nil, []time.Duration{long, long, long})
}

// TestRenewWithOneBadID: Renew answers for the whole request. One lost or
// unknown lease among live ones fails the call with that lease's status,
// naming it by its place in the request (never by its id), and changes
// none of the live ones: neither their expiry nor their ttl.
func TestRenewWithOneBadID(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)

	const short, long = 2 * time.Second, time.Minute
	live := detached(t, a, "bad/live", long)
	expiring := detached(t, a, "bad/expiring", short)
	lost := detached(t, a, "bad/lost", time.Second)
	acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "bad/lost"}).granted(time.Second + wait)
	unknown := newLeaseID()
	hour := time.Hour

	_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{
		LeaseIds: []string{live.GetLeaseId(), expiring.GetLeaseId(), unknown}, Ttl: dur(hour)})
	wantCode(t, err, codes.NotFound, "LEASE_NOT_FOUND")
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "lease_ids[2]") || strings.Contains(msg, unknown) {
		t.Errorf("NOT_FOUND message %q: want it to name lease_ids[2], not the id", msg)
	}

	_, err = a.client.Renew(ctxT(t), &zklockv1.RenewRequest{
		LeaseIds: []string{expiring.GetLeaseId(), lost.GetLeaseId(), live.GetLeaseId()}, Ttl: dur(hour)})
	wantCode(t, err, codes.Aborted, "LEASE_LOST")
	info := infoOf(t, err)
	if info.GetMetadata()["lost_reason"] != "LEASE_EXPIRED" || info.GetMetadata()["fencing_token"] != strconv.FormatInt(lost.GetFencingToken(), 10) {
		t.Errorf("ABORTED ErrorInfo %v, want lost_reason LEASE_EXPIRED and fencing_token %d", info, lost.GetFencingToken())
	}
	if strings.Contains(err.Error(), lost.GetLeaseId()) {
		t.Errorf("ABORTED message shows the lease id: %v", err)
	}

	// Neither failed call extended the short lease: it expires at its
	// own time, and another sidecar gets the lock.
	acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "bad/expiring"}).granted(time.Until(expiring.GetExpiresAt().AsTime()) + wait)
	_, err = a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{expiring.GetLeaseId()}})
	wantCode(t, err, codes.Aborted, "LEASE_LOST")
	// Nor did they give the live lease the hour: a Renew without ttl
	// extends it by its own minute.
	renewWithin(t, a, []string{live.GetLeaseId()}, nil, []time.Duration{long})
}
