package sidecar

import (
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

// endedLeases records the reasons Metrics.LeaseEnded is given.
type endedLeases struct {
	nopMetrics
	mu      sync.Mutex
	reasons []string
}

func (m *endedLeases) LeaseEnded(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reasons = append(m.reasons, reason)
}

func (m *endedLeases) ended() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.reasons)
}

// TestEpochEndEndsEveryLease: when the epoch ends, every lease of it ends
// at once as SESSION_EXPIRED, the detached ones too (which no stream
// follows): they stop counting as held, and Renew answers ABORTED with
// that reason, long before their ttl would have run out.
func TestEpochEndEndsEveryLease(t *testing.T) {
	_, p := startProxiedZK(t)
	m := &endedLeases{}
	a := startInstance(t, p.Addr(), instanceOpts{timeout: 4 * time.Second, cfg: Config{Metrics: m}})
	a.waitUsable(t)
	d1 := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "epoch/d1", Detach: true, Ttl: dur(time.Hour)}).granted(wait)
	d2 := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "epoch/d2", Detach: true, Ttl: dur(time.Hour)}).granted(wait)
	bound := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "epoch/s"})
	bound.granted(wait)

	st, _ := a.sess.State()
	p.SetMode(tcpproxy.Stall)
	<-st.Epoch.Done()
	lostAt := time.Now()
	zktest.Eventually(t, 5*time.Second, "every lease of the epoch ended", func() bool {
		return len(m.ended()) == 3
	})
	if took := time.Since(lostAt); took > 2*time.Second {
		t.Errorf("the leases ended %v after their epoch", took)
	}
	for _, r := range m.ended() {
		if r != "session_expired" {
			t.Errorf("lease ended as %q, want session_expired: %v", r, m.ended())
		}
	}
	e := bound.next(wait)
	if e.GetSuspended() != nil {
		e = bound.next(wait)
	}
	if e.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SESSION_EXPIRED {
		t.Errorf("stream-bound lease: event %v, want Lost SESSION_EXPIRED", e)
	}
	a.svc.tab.mu.Lock()
	live := len(a.svc.tab.leases)
	a.svc.tab.mu.Unlock()
	p.SetMode(tcpproxy.Pass)
	if live != 0 {
		t.Errorf("%d leases still live after their epoch ended", live)
	}
	for _, g := range []*zklockv1.Granted{d1, d2} {
		_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g.GetLeaseId()}})
		wantCode(t, err, codes.Aborted, "LEASE_LOST")
		if r := infoOf(t, err).GetMetadata()["lost_reason"]; r != "SESSION_EXPIRED" {
			t.Errorf("Renew of a detached lease of the ended epoch: lost_reason %q, want SESSION_EXPIRED", r)
		}
	}
}

// TestRenewAfterStreamEnd: a stream-bound lease is released when its stream
// ends, at once for Renew too, even before the sidecar's own follow of the
// stream has seen the end, while the next Acquire of the lock may already
// have deleted its node and been granted.
func TestRenewAfterStreamEnd(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	for i := range 20 {
		e := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "ended"})
		g := e.granted(wait)
		e.cancel()
		// The next Acquire is granted only once the sidecar saw the stream
		// end (the client's cancel reaches it asynchronously), but maybe
		// before the stream's follow did.
		next := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "ended"})
		next.granted(wait)
		_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g.GetLeaseId()}})
		if code := status.Code(err); code != codes.NotFound {
			t.Fatalf("round %d: Renew of a lease whose stream ended = %v, want NOT_FOUND (released)", i, err)
		}
		next.cancel()
	}
}
