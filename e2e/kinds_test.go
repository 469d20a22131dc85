package e2e

import (
	"errors"
	"fmt"
	"math"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// zkTree returns every node of ZooKeeper but /zookeeper's, with its czxid
// and data; it leaves out empty container nodes, which ZooKeeper removes by
// itself. (Not the mzxid: each create of a contender's node stamps the lock
// node's, the data left as it was, to read the token.)
func zkTree(t *testing.T, c *zk.Conn) map[string]string {
	t.Helper()
	tree := map[string]string{}
	var walk func(p string)
	walk = func(p string) {
		for _, ch := range zktest.Children(t, c, p) {
			cp := path.Join(p, ch)
			if cp == "/zookeeper" {
				continue
			}
			data, st, err := c.Get(cp)
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			if err != nil {
				t.Fatalf("Get(%s): %v", cp, err)
			}
			if !(st.EphemeralOwner == math.MinInt64 && st.NumChildren == 0) {
				tree[cp] = fmt.Sprintf("czxid %d data %q", st.Czxid, data)
			}
			walk(cp)
		}
	}
	walk("/")
	return tree
}

// errorInfo returns the google.rpc.ErrorInfo in a status's details, if any.
func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// TestKindsBadInputChangeNothing: bad permits, bad re-entries and a bad
// Observe are each refused with their code, an ErrorInfo reason and a
// message that says what is wrong (and does not echo the secret lease id),
// and change nothing: ZooKeeper's tree is the same after them all, and the
// leases they named still hold, with no re-entry counted.
func TestKindsBadInputChangeNothing(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{})
	ins := zktest.Client(t, zkc.ConnectString())

	// A lock, a shared hold and a semaphore of 3 permits, held at a.
	held := a.acquire("held", &zklockv1.AcquireRequest{Lock: "held", Owner: "held"})
	gHeld, _ := held.granted(wait)
	shared := a.acquire("shared", &zklockv1.AcquireRequest{Lock: "shared", Mode: zklockv1.Mode_MODE_SHARED})
	gShared, _ := shared.granted(wait)
	sem := a.acquire("sem", &zklockv1.AcquireRequest{Lock: "sem", Permits: 3})
	gSem, _ := sem.granted(wait)
	// A released lease, and a lost one (its ttl ran out).
	gone := a.acquire("gone", &zklockv1.AcquireRequest{Lock: "gone", Detach: true})
	gGone, _ := gone.granted(wait)
	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: gGone.GetLeaseId()}); err != nil {
		t.Fatalf("Release(gone): %v", err)
	}
	lost := a.acquire("lost", &zklockv1.AcquireRequest{Lock: "lost", Detach: true, Ttl: dur(time.Second)})
	gLost, _ := lost.granted(wait)
	zktest.Eventually(t, wait, "the lost lease's node is gone", func() bool { return len(zktest.Children(t, ins, "/zklock/lost")) == 0 })
	_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{gLost.GetLeaseId()}})
	wantStatus(t, err, codes.Aborted, "LEASE_LOST")
	before := zkTree(t, ins)

	unknown := "0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		name   string
		d      *daemon
		req    *zklockv1.AcquireRequest
		code   codes.Code
		reason string
		says   []string // in the message
	}{
		{"negative permits", a, &zklockv1.AcquireRequest{Lock: "p", Permits: -1},
			codes.InvalidArgument, "INVALID_PERMITS", []string{"permits"}},
		{"too many permits", a, &zklockv1.AcquireRequest{Lock: "p", Permits: 1000001},
			codes.InvalidArgument, "INVALID_PERMITS", []string{"permits"}},
		{"a shared semaphore", a, &zklockv1.AcquireRequest{Lock: "p", Permits: 3, Mode: zklockv1.Mode_MODE_SHARED},
			codes.InvalidArgument, "INVALID_PERMITS", []string{"permits", "shared"}},
		{"permits other than the semaphore's", b, &zklockv1.AcquireRequest{Lock: "sem", Permits: 5},
			codes.FailedPrecondition, "PERMITS_DIFFER", []string{"semaphore of 3 permits, not a semaphore of 5 permits"}},
		{"a semaphore where a lock is", b, &zklockv1.AcquireRequest{Lock: "held", Permits: 3},
			codes.FailedPrecondition, "PERMITS_DIFFER", []string{"a lock (1 permit), not a semaphore of 3 permits"}},
		{"a lock where a semaphore is", b, &zklockv1.AcquireRequest{Lock: "sem"},
			codes.FailedPrecondition, "PERMITS_DIFFER", []string{"a semaphore of 3 permits, not a lock (1 permit)"}},
		{"malformed reenter", a, &zklockv1.AcquireRequest{Lock: "held", Reenter: "../held"},
			codes.InvalidArgument, "INVALID_REENTER", []string{"reenter"}},
		{"unknown reenter", a, &zklockv1.AcquireRequest{Lock: "held", Reenter: unknown},
			codes.NotFound, "LEASE_NOT_FOUND", []string{"reenter"}},
		{"reenter of another sidecar's lease", b, &zklockv1.AcquireRequest{Lock: "held", Reenter: gHeld.GetLeaseId()},
			codes.NotFound, "LEASE_NOT_FOUND", []string{"reenter"}},
		{"reenter of a released lease", a, &zklockv1.AcquireRequest{Lock: "gone", Reenter: gGone.GetLeaseId()},
			codes.NotFound, "LEASE_NOT_FOUND", []string{"reenter", "released"}},
		{"reenter of a lost lease", a, &zklockv1.AcquireRequest{Lock: "lost", Reenter: gLost.GetLeaseId()},
			codes.Aborted, "LEASE_LOST", []string{"lost"}},
		{"reenter of another lock's lease", a, &zklockv1.AcquireRequest{Lock: "other", Reenter: gHeld.GetLeaseId()},
			codes.InvalidArgument, "INVALID_REENTER", []string{"reenter"}},
		{"exclusive reenter of a shared lease", a, &zklockv1.AcquireRequest{Lock: "shared", Reenter: gShared.GetLeaseId(), Mode: zklockv1.Mode_MODE_EXCLUSIVE},
			codes.FailedPrecondition, "REENTER_MODE", []string{"shared"}},
		{"reenter of a semaphore with other permits", a, &zklockv1.AcquireRequest{Lock: "sem", Reenter: gSem.GetLeaseId(), Permits: 5},
			codes.FailedPrecondition, "PERMITS_DIFFER", []string{"3", "5"}},
		{"reenter of a lock as a semaphore", a, &zklockv1.AcquireRequest{Lock: "held", Reenter: gHeld.GetLeaseId(), Permits: 3},
			codes.FailedPrecondition, "PERMITS_DIFFER", []string{"3"}},
	} {
		err := c.d.acquire(c.name, c.req).end(wait)
		st := status.Convert(err)
		if st.Code() != c.code {
			t.Errorf("%s: status %v (%q), want %v", c.name, st.Code(), st.Message(), c.code)
			continue
		}
		t.Logf("%s: %v: %s", c.name, st.Code(), st.Message())
		if info := errorInfo(err); info == nil || info.GetReason() != c.reason || info.GetDomain() != "zklock.io" {
			t.Errorf("%s: ErrorInfo %v, want reason %s", c.name, info, c.reason)
		}
		for _, s := range c.says {
			if !strings.Contains(strings.ToLower(st.Message()), strings.ToLower(s)) {
				t.Errorf("%s: message %q does not say %q", c.name, st.Message(), s)
			}
		}
		for _, id := range []string{gHeld.GetLeaseId(), gShared.GetLeaseId(), gSem.GetLeaseId(), gGone.GetLeaseId(), gLost.GetLeaseId()} {
			if strings.Contains(st.Message(), id) {
				t.Errorf("%s: message %q shows the lease id", c.name, st.Message())
			}
		}
	}
	for _, name := range []string{"../etc", "", "a//b"} {
		o := a.observe("observe "+name, name)
		<-o.done
		wantStatus(t, o.final, codes.InvalidArgument, "INVALID_LOCK_NAME")
		if len(o.messages()) != 0 {
			t.Errorf("Observe(%q) sent %v before its error", name, o.messages())
		}
	}

	after := zkTree(t, ins)
	for p, v := range after {
		if before[p] != v {
			t.Errorf("%s: %s after the bad requests, was %q", p, v, before[p])
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s is gone after the bad requests", p)
		}
	}
	for _, s := range []*stream{held, shared, sem} {
		s.none(100 * time.Millisecond)
	}
	for _, lock := range []string{"held", "shared", "sem"} {
		r, err := a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
		if err != nil || len(r.GetHolders()) != 1 || r.GetHolders()[0].GetReentered() != 0 {
			t.Errorf("Describe(%s) = %v, %v; want one holder, not re-entered", lock, r, err)
		}
	}
}
