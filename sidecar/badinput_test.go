package sidecar

import (
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// badRow is one class of bad input, sent over gRPC to a real sidecar.
type badRow struct {
	name string
	// call sends the input and returns the call's status (nil for OK).
	call   func(t *testing.T) error
	code   codes.Code
	reason string            // the ErrorInfo reason; "" if the status has none
	meta   map[string]string // ErrorInfo metadata that must be present
	msg    []string          // each must appear in the message
	// touches is set for rows whose call reaches ZooKeeper: they may leave
	// empty lock (container) nodes, which ZooKeeper removes itself.
	touches bool
}

// TestBadInputChangesNothing sends one call per class of bad input (and per
// limit) and checks that it gets a status naming the rule, leaves no node in
// ZooKeeper, and leaves another caller's held lock alone.
func TestBadInputChangesNothing(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{cfg: Config{MaxTTL: time.Minute}})
	lim := startInstance(t, zkc.ConnectString(), instanceOpts{cfg: Config{MaxWaitersPerLock: 1, MaxLeases: 2}})
	a.waitUsable(t)
	lim.waitUsable(t)
	ins := zktest.Client(t, zkc.ConnectString())

	// The bystander holds a lock on a throughout.
	held := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "bystander", Owner: "bystander"})
	heldGrant := held.granted(wait)
	d, err := a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: "bystander"})
	if err != nil || len(d.GetHolders()) != 1 {
		t.Fatalf("Describe bystander = %v, %v", d, err)
	}
	heldNode := "/zklock/bystander/" + d.GetHolders()[0].GetNode()

	const unknownID = "0123456789abcdef0123456789abcdef"
	acq := func(in *instance, req *zklockv1.AcquireRequest) func(t *testing.T) error {
		return func(t *testing.T) error { return acquire(t, in.client, req).end(wait) }
	}
	// queuedThenEnd is acq for a call that may queue before it ends.
	queuedThenEnd := func(req *zklockv1.AcquireRequest) func(t *testing.T) error {
		return func(t *testing.T) error {
			e := acquire(t, a.client, req)
			e.queued(wait)
			return e.end(wait)
		}
	}
	renew := func(req *zklockv1.RenewRequest) func(t *testing.T) error {
		return func(t *testing.T) error { _, err := a.client.Renew(ctxT(t), req); return err }
	}
	release := func(in *instance, id string) func(t *testing.T) error {
		return func(t *testing.T) error {
			_, err := in.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: id})
			return err
		}
	}
	describe := func(lock string) func(t *testing.T) error {
		return func(t *testing.T) error {
			_, err := a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
			return err
		}
	}
	// raw sends m with its string field set to s as is: grpc-go's codec
	// would refuse to encode invalid UTF-8.
	raw := func(method string, m proto.Message, field protoreflect.Name, s string) func(t *testing.T) error {
		b := withRawString(t, m, field, s)
		return func(t *testing.T) error { return rawCall(t, a, method, b) }
	}
	// detached returns the grant of a new detached lease on a.
	detached := func(t *testing.T, lock string, ttl time.Duration) *zklockv1.Granted {
		t.Helper()
		e := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: lock, Detach: true, Ttl: dur(ttl)})
		g := e.granted(wait)
		if err := e.end(wait); err != nil {
			t.Fatalf("detached stream ended with %v", err)
		}
		return g
	}
	// lostLease returns the grant of a detached lease that expired.
	lostLease := func(t *testing.T) *zklockv1.Granted {
		t.Helper()
		g := detached(t, "expiring", time.Second)
		zktest.Eventually(t, wait, "the expired lease's node is deleted", func() bool {
			return len(zktest.Children(t, ins, "/zklock/expiring")) == 0
		})
		return g
	}

	rows := []badRow{
		// Lock names.
		{name: "name empty", call: acq(a, &zklockv1.AcquireRequest{}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name is empty"}},
		{name: "name too long", call: acq(a, &zklockv1.AcquireRequest{Lock: strings.Repeat("x", 513)}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name is 513 bytes, more than the 512 allowed"}},
		{name: "name invalid UTF-8", call: raw(zklockv1.LockService_Acquire_FullMethodName, &zklockv1.AcquireRequest{}, "lock", "a\xffb"),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name is not valid UTF-8"}},
		{name: "name with a tab", call: acq(a, &zklockv1.AcquireRequest{Lock: "a\tb"}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", "control character U+0009"}},
		{name: "name with NUL", call: acq(a, &zklockv1.AcquireRequest{Lock: "a\x00b"}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", "control character U+0000"}},
		{name: "name with a C1 control", call: acq(a, &zklockv1.AcquireRequest{Lock: "a\u0085b"}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", "control character U+0085"}},
		{name: "name with a private use character", call: acq(a, &zklockv1.AcquireRequest{Lock: "a\ue000b"}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", "the character U+E000, from the range U+D800 to U+F8FF, which ZooKeeper refuses in a path"}},
		// go-zookeeper sends U+FFFF; the server refuses it.
		{name: "name with a special (U+FFF0 to U+FFFF)", call: acq(a, &zklockv1.AcquireRequest{Lock: "orders/\uffff"}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", "the character U+FFFF, from the range U+FFF0 to U+FFFF, which ZooKeeper refuses in a path"}},
		// A surrogate pair in ZooKeeper's UTF-16.
		{name: "name with a character above U+FFFF", call: acq(a, &zklockv1.AcquireRequest{Lock: "orders/😀"}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", "the character U+1F600, above U+FFFF, which ZooKeeper refuses in a path"}},
		{name: "name with a . segment", call: acq(a, &zklockv1.AcquireRequest{Lock: "a/./b"}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", `a "." segment`}},
		{name: "name with a .. segment", call: acq(a, &zklockv1.AcquireRequest{Lock: "../bystander"}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", `a ".." segment`}},
		{name: "name of .. only", call: acq(a, &zklockv1.AcquireRequest{Lock: ".."}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", `a ".." segment`}},
		{name: "name with a leading /", call: acq(a, &zklockv1.AcquireRequest{Lock: "/bystander"}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", "starts with /"}},
		{name: "name with a trailing /", call: acq(a, &zklockv1.AcquireRequest{Lock: "bystander/"}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", "ends with /"}},
		{name: "name with //", call: acq(a, &zklockv1.AcquireRequest{Lock: "a//b"}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", "empty segment (//)"}},
		{name: "name of a queue node (ten digits)", call: acq(a, &zklockv1.AcquireRequest{Lock: strings.TrimPrefix(heldNode, "/zklock/")}),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", "ending in ten digits, which are reserved for queue nodes"}},
		{name: "Describe name with //", call: describe("a//b"),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name", "empty segment (//)"}},
		{name: "Describe name invalid UTF-8", call: raw(zklockv1.LockService_Describe_FullMethodName, &zklockv1.DescribeRequest{}, "lock", "\xc3("),
			code: codes.InvalidArgument, reason: "INVALID_LOCK_NAME", msg: []string{"lock name is not valid UTF-8"}},

		// Owner, mode, ttl, wait.
		{name: "owner too long", call: acq(a, &zklockv1.AcquireRequest{Lock: "x", Owner: strings.Repeat("o", 257)}),
			code: codes.InvalidArgument, reason: "INVALID_OWNER", msg: []string{"owner is 257 bytes, more than the 256 allowed"}},
		{name: "owner with a newline", call: acq(a, &zklockv1.AcquireRequest{Lock: "x", Owner: "a\nb"}),
			code: codes.InvalidArgument, reason: "INVALID_OWNER", msg: []string{"owner has a control character U+000A"}},
		{name: "owner invalid UTF-8", call: raw(zklockv1.LockService_Acquire_FullMethodName, &zklockv1.AcquireRequest{Lock: "x"}, "owner", "\xff"),
			code: codes.InvalidArgument, reason: "INVALID_OWNER", msg: []string{"owner is not valid UTF-8"}},
		{name: "mode unknown", call: acq(a, &zklockv1.AcquireRequest{Lock: "x", Mode: 7}),
			code: codes.InvalidArgument, reason: "INVALID_MODE", msg: []string{"mode 7 is neither MODE_EXCLUSIVE nor MODE_SHARED"}},
		{name: "ttl 0", call: acq(a, &zklockv1.AcquireRequest{Lock: "x", Detach: true, Ttl: dur(0)}),
			code: codes.InvalidArgument, reason: "INVALID_TTL", msg: []string{"ttl 0s must lie between 1s and 1m0s"}},
		{name: "ttl negative", call: acq(a, &zklockv1.AcquireRequest{Lock: "x", Ttl: dur(-time.Second)}),
			code: codes.InvalidArgument, reason: "INVALID_TTL", msg: []string{"ttl -1s must lie between 1s and 1m0s"}},
		{name: "ttl over the max", call: acq(a, &zklockv1.AcquireRequest{Lock: "x", Ttl: dur(2 * time.Minute)}),
			code: codes.InvalidArgument, reason: "INVALID_TTL", msg: []string{"ttl 2m0s must lie between 1s and 1m0s"}},
		{name: "ttl not a duration", call: acq(a, &zklockv1.AcquireRequest{Lock: "x", Ttl: &durationpb.Duration{Seconds: 1, Nanos: -1}}),
			code: codes.InvalidArgument, reason: "INVALID_TTL", msg: []string{"ttl: ", "different signs"}},
		{name: "wait negative", call: acq(a, &zklockv1.AcquireRequest{Lock: "x", Wait: dur(-time.Second)}),
			code: codes.InvalidArgument, reason: "INVALID_WAIT", msg: []string{"wait -1s is negative"}},
		{name: "wait not a duration", call: acq(a, &zklockv1.AcquireRequest{Lock: "x", Wait: &durationpb.Duration{Nanos: 2e9}}),
			code: codes.InvalidArgument, reason: "INVALID_WAIT", msg: []string{"wait: ", "out-of-range nanos"}},

		// Lease ids.
		{name: "Renew without ids", call: renew(&zklockv1.RenewRequest{}),
			code: codes.InvalidArgument, reason: "INVALID_LEASE_ID", msg: []string{"lease_ids is empty"}},
		{name: "Renew with too many ids", call: renew(&zklockv1.RenewRequest{LeaseIds: slices.Repeat([]string{unknownID}, 1001)}),
			code: codes.InvalidArgument, reason: "INVALID_LEASE_ID", msg: []string{"lease_ids has 1001 ids, more than the 1000 allowed"}},
		{name: "Renew malformed id", call: renew(&zklockv1.RenewRequest{LeaseIds: []string{"x"}}),
			code: codes.InvalidArgument, reason: "INVALID_LEASE_ID", msg: []string{"lease_ids[0] is not a lease id (32 hex digits"}},
		{name: "Renew malformed id after an unknown one", call: renew(&zklockv1.RenewRequest{LeaseIds: []string{unknownID, strings.ToUpper(unknownID)}}),
			code: codes.InvalidArgument, reason: "INVALID_LEASE_ID", msg: []string{"lease_ids[1] is not a lease id"}},
		{name: "Renew id invalid UTF-8", call: raw(zklockv1.LockService_Renew_FullMethodName, &zklockv1.RenewRequest{}, "lease_ids", "\xff"),
			code: codes.InvalidArgument, reason: "INVALID_LEASE_ID", msg: []string{"lease_ids[0] is not a lease id"}},
		{name: "Renew unknown id", call: renew(&zklockv1.RenewRequest{LeaseIds: []string{unknownID}}),
			code: codes.NotFound, reason: "LEASE_NOT_FOUND", msg: []string{"lease_ids[0]: lease not known to this sidecar"}},
		{name: "Renew ttl 0", call: renew(&zklockv1.RenewRequest{LeaseIds: []string{unknownID}, Ttl: dur(0)}),
			code: codes.InvalidArgument, reason: "INVALID_TTL", msg: []string{"ttl 0s must lie between 1s and 1m0s"}},
		{name: "Renew ttl over the max", call: renew(&zklockv1.RenewRequest{LeaseIds: []string{unknownID}, Ttl: dur(time.Hour)}),
			code: codes.InvalidArgument, reason: "INVALID_TTL", msg: []string{"ttl 1h0m0s must lie between 1s and 1m0s"}},
		{name: "Renew of a known and an unknown id renews neither", touches: true,
			call: func(t *testing.T) error {
				g := detached(t, "renew-none", time.Minute)
				before := leaseExpiry(t, a, g.GetLeaseId())
				_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g.GetLeaseId(), unknownID}})
				if after := leaseExpiry(t, a, g.GetLeaseId()); !after.Equal(before) {
					t.Errorf("the known lease's expiry moved from %v to %v", before, after)
				}
				if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()}); err != nil {
					t.Fatalf("Release: %v", err)
				}
				return err
			},
			code: codes.NotFound, reason: "LEASE_NOT_FOUND", msg: []string{"lease_ids[1]: lease not known"}},
		{name: "Release without id", call: release(a, ""),
			code: codes.InvalidArgument, reason: "INVALID_LEASE_ID", msg: []string{"lease_id is empty"}},
		{name: "Release malformed id", call: release(a, "<leaseId>"),
			code: codes.InvalidArgument, reason: "INVALID_LEASE_ID", msg: []string{"lease_id is not a lease id (32 hex digits, as Granted.lease_id)"}},
		{name: "Release id invalid UTF-8", call: raw(zklockv1.LockService_Release_FullMethodName, &zklockv1.ReleaseRequest{}, "lease_id", strings.Repeat("\xfe", 32)),
			code: codes.InvalidArgument, reason: "INVALID_LEASE_ID", msg: []string{"lease_id is not a lease id"}},
		{name: "Release unknown id", call: release(a, unknownID),
			code: codes.NotFound, reason: "LEASE_NOT_FOUND", msg: []string{"lease_id: lease not known to this sidecar"}},
		{name: "Release on another sidecar", call: release(lim, heldGrant.GetLeaseId()),
			code: codes.NotFound, reason: "LEASE_NOT_FOUND", msg: []string{"lease_id: lease not known to this sidecar"}},
		{name: "Renew of a lost lease", touches: true,
			call: func(t *testing.T) error {
				g := lostLease(t)
				_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g.GetLeaseId()}})
				wantMeta(t, err, "fencing_token", strconv.FormatInt(g.GetFencingToken(), 10))
				return err
			},
			code: codes.Aborted, reason: "LEASE_LOST", meta: map[string]string{"lost_reason": "LEASE_EXPIRED"},
			msg: []string{"lease was lost (LEASE_EXPIRED): stop using the resource"}},
		{name: "Release of a lost lease", touches: true,
			call: func(t *testing.T) error {
				g := lostLease(t)
				_, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()})
				return err
			},
			code: codes.Aborted, reason: "LEASE_LOST", meta: map[string]string{"lost_reason": "LEASE_EXPIRED"},
			msg: []string{"lease was lost (LEASE_EXPIRED)"}},
		{name: "Release twice", touches: true, code: codes.OK,
			call: func(t *testing.T) error {
				g := detached(t, "twice", time.Minute)
				if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()}); err != nil {
					t.Fatalf("first Release: %v", err)
				}
				_, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()})
				return err
			}},
		{name: "Renew of a released lease", touches: true,
			call: func(t *testing.T) error {
				g := detached(t, "twice", time.Minute)
				if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()}); err != nil {
					t.Fatalf("Release: %v", err)
				}
				_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g.GetLeaseId()}})
				return err
			},
			code: codes.NotFound, reason: "LEASE_NOT_FOUND", msg: []string{"lease_ids[0]: lease was released"}},

		// Limits.
		{name: "--max-waiters-per-lock", touches: true,
			call: atLimit(t, lim, ins, func(t *testing.T) {
				acquire(t, lim.client, &zklockv1.AcquireRequest{Lock: "limits/l"}).granted(wait)
				acquire(t, lim.client, &zklockv1.AcquireRequest{Lock: "limits/l"}).queued(wait)
			}, acq(lim, &zklockv1.AcquireRequest{Lock: "limits/l"})),
			code: codes.ResourceExhausted, reason: "TOO_MANY_WAITERS", meta: map[string]string{"lock": "limits/l"},
			msg: []string{`lock "limits/l" already has 1 waiters in this sidecar (--max-waiters-per-lock)`}},
		{name: "--max-leases", touches: true,
			call: atLimit(t, lim, ins, func(t *testing.T) {
				acquire(t, lim.client, &zklockv1.AcquireRequest{Lock: "limits/a"}).granted(wait)
				acquire(t, lim.client, &zklockv1.AcquireRequest{Lock: "limits/b"}).granted(wait)
			}, acq(lim, &zklockv1.AcquireRequest{Lock: "limits/c"})),
			code: codes.ResourceExhausted, reason: "TOO_MANY_LEASES",
			msg: []string{"this sidecar already has 2 acquires, waiting or granted (--max-leases)"}},
		{name: "Acquire over the message size", call: acq(a, &zklockv1.AcquireRequest{Lock: strings.Repeat("x", 70000)}),
			code: codes.ResourceExhausted, msg: []string{"received message larger than max", "vs. 65536)"}},
		{name: "Renew over the message size", call: renew(&zklockv1.RenewRequest{LeaseIds: slices.Repeat([]string{unknownID}, 2000)}),
			code: codes.ResourceExhausted, msg: []string{"received message larger than max", "vs. 65536)"}},
		{name: "Release over the message size", call: release(a, strings.Repeat("0", 1<<16)),
			code: codes.ResourceExhausted, msg: []string{"received message larger than max", "vs. 65536)"}},

		// Waits that end before the grant.
		{name: "cancel mid-wait", touches: true,
			call: func(t *testing.T) error {
				e := acquire(t, a.client, &zklockv1.AcquireRequest{Lock: "bystander"})
				if q := e.queued(wait); q.GetPosition() != 1 {
					t.Fatalf("Queued %v, want position 1", q)
				}
				e.cancel()
				return e.end(wait)
			},
			// The client's own status: the sidecar's answer is never read.
			code: codes.Canceled, msg: []string{"context canceled"}},
		{name: "wait runs out", touches: true,
			call: queuedThenEnd(&zklockv1.AcquireRequest{Lock: "bystander", Wait: dur(100 * time.Millisecond)}),
			code: codes.DeadlineExceeded, reason: "WAIT_EXPIRED", meta: map[string]string{"lock": "bystander"},
			msg: []string{`lock "bystander" still held after the wait of 100ms`}},
		{name: "try once", touches: true,
			call: queuedThenEnd(&zklockv1.AcquireRequest{Lock: "bystander", Wait: dur(0)}),
			code: codes.DeadlineExceeded, reason: "LOCK_HELD", meta: map[string]string{"lock": "bystander"},
			msg: []string{`lock "bystander" is held by another (wait 0: tried once)`}},
	}

	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			before := walk(t, ins, "/zklock")
			err := row.call(t)
			wantStatus(t, err, row)
			t.Logf("%v %s %q", status.Code(err), row.reason, status.Convert(err).Message())

			// No queue node is left but the bystander's ...
			zktest.Eventually(t, wait, "only the bystander's queue node is left", func() bool {
				return slices.Equal(ephemerals(walk(t, ins, "/zklock")), []string{heldNode})
			})
			// ... and a call that never reached ZooKeeper made no node at all.
			if !row.touches {
				for p := range walk(t, ins, "/zklock") {
					if _, ok := before[p]; !ok {
						t.Errorf("node %s appeared", p)
					}
				}
			}
			zktest.Eventually(t, wait, "a counts the bystander's lease alone, and no waiter", func() bool {
				a.svc.tab.mu.Lock()
				defer a.svc.tab.mu.Unlock()
				return a.svc.tab.active == 1 && len(a.svc.tab.waiters) == 0 && len(a.svc.tab.leases) == 1
			})
			// The bystander still holds, and heard nothing.
			select {
			case r, ok := <-held.ch:
				t.Fatalf("the bystander's stream got %v (open %v)", r, ok)
			default:
			}
			d, err := a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: "bystander"})
			if err != nil {
				t.Fatal(err)
			}
			if hs := d.GetHolders(); len(hs) != 1 || hs[0].GetFencingToken() != heldGrant.GetFencingToken() || len(d.GetWaiters()) != 0 {
				t.Errorf("bystander lock is now %v, want its holder (token %d) alone", d, heldGrant.GetFencingToken())
			}
		})
	}
}

// wantStatus checks err against a row's code, reason, metadata and message.
func wantStatus(t *testing.T, err error, row badRow) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != row.code {
		t.Fatalf("status %v (%q), want %v", st.Code(), st.Message(), row.code)
	}
	for _, m := range row.msg {
		if !strings.Contains(st.Message(), m) {
			t.Errorf("message %q does not say %q", st.Message(), m)
		}
	}
	info := errorInfo(st)
	switch {
	case row.reason == "" && info != nil:
		t.Errorf("ErrorInfo %v, want none", info)
	case row.reason == "":
	case info == nil:
		t.Errorf("no ErrorInfo, want reason %s", row.reason)
	case info.GetReason() != row.reason || info.GetDomain() != errorDomain:
		t.Errorf("ErrorInfo reason %s in %s, want %s in %s", info.GetReason(), info.GetDomain(), row.reason, errorDomain)
	}
	for k, v := range row.meta {
		if got := info.GetMetadata()[k]; got != v {
			t.Errorf("ErrorInfo metadata %s = %q, want %q", k, got, v)
		}
	}
}

// wantMeta checks one ErrorInfo metadata value of err.
func wantMeta(t *testing.T, err error, key, want string) {
	t.Helper()
	if got := errorInfo(status.Convert(err)).GetMetadata()[key]; got != want {
		t.Errorf("ErrorInfo metadata %s = %q, want %q", key, got, want)
	}
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// atLimit returns a call that fills in up with setup's acquires, makes
// call, then ends those acquires and checks that in takes acquires again.
func atLimit(t *testing.T, in *instance, ins *zk.Conn, setup func(t *testing.T), call func(t *testing.T) error) func(t *testing.T) error {
	return func(t *testing.T) error {
		var err error
		t.Run("at the limit", func(t *testing.T) {
			// setup's streams end with this subtest.
			setup(t)
			err = call(t)
		})
		zktest.Eventually(t, wait, "the ended acquires are no longer counted", func() bool {
			in.svc.tab.mu.Lock()
			defer in.svc.tab.mu.Unlock()
			return in.svc.tab.active == 0
		})
		e := acquire(t, in.client, &zklockv1.AcquireRequest{Lock: "limits/after", Wait: dur(0)})
		e.granted(wait)
		e.cancel()
		return err
	}
}

// leaseExpiry returns when a's detached lease id expires.
func leaseExpiry(t *testing.T, a *instance, id string) time.Time {
	t.Helper()
	l, _, _ := a.svc.tab.lookup(id)
	if l == nil {
		t.Fatal("lease not in the table")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// walk returns every node under root (root excluded), each with the session
// that owns it (0 for a persistent or container node).
func walk(t *testing.T, c *zk.Conn, root string) map[string]int64 {
	t.Helper()
	nodes := make(map[string]int64)
	var visit func(p string)
	visit = func(p string) {
		for _, ch := range zktest.Children(t, c, p) {
			cp := path.Join(p, ch)
			ok, st, err := c.Exists(cp)
			if err != nil {
				t.Fatalf("exists %s: %v", cp, err)
			}
			if !ok {
				continue // deleted meanwhile
			}
			nodes[cp] = st.EphemeralOwner
			visit(cp)
		}
	}
	visit(root)
	return nodes
}

// ephemerals returns the sorted paths of the ephemeral nodes among nodes.
func ephemerals(nodes map[string]int64) []string {
	var out []string
	for p, owner := range nodes {
		if owner != 0 {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// withRawString returns m's encoding with its string field set to s, bytes
// as they are.
func withRawString(t *testing.T, m proto.Message, field protoreflect.Name, s string) []byte {
	t.Helper()
	fd := m.ProtoReflect().Descriptor().Fields().ByName(field)
	if fd == nil || fd.Kind() != protoreflect.StringKind {
		t.Fatalf("%s has no string field %s", m.ProtoReflect().Descriptor().FullName(), field)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return appendRawString(b, fd.Number(), s)
}

// rawCodec sends a []byte as the message, as it is, and receives one.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// rawCall calls method of in with the encoded request b and returns the
// call's status; for Acquire, the status the stream ends with.
func rawCall(t *testing.T, in *instance, method string, b []byte) error {
	t.Helper()
	ctx := ctxT(t)
	var out []byte
	if method != zklockv1.LockService_Acquire_FullMethodName {
		return in.conn.Invoke(ctx, method, b, &out, grpc.ForceCodecV2(rawCodec{}))
	}
	s, err := in.conn.NewStream(ctx, &zklockv1.LockService_ServiceDesc.Streams[0], method, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return err
	}
	if err := s.SendMsg(b); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for {
		if err := s.RecvMsg(&out); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(out) > 0 {
			return fmt.Errorf("event %x: the call was not refused", out)
		}
	}
}
