package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// wantStatus checks an error's code and, if reason is set, the reason of
// the google.rpc.ErrorInfo in its details, which it returns.
func wantStatus(t *testing.T, err error, code codes.Code, reason string) *errdetails.ErrorInfo {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("status %v (%q), want %v", st.Code(), st.Message(), code)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if reason != "" && info.GetReason() != reason {
				t.Fatalf("ErrorInfo reason %s, want %s", info.GetReason(), reason)
			}
			return info
		}
	}
	if reason != "" {
		t.Fatalf("no ErrorInfo in %v, want reason %s", st, reason)
	}
	return nil
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// Two sidecars, two ZooKeeper sessions, one lock: positions and grants
// follow the queue across instances, and the fencing token grows.
func TestQueueAndGrantOrderAcrossInstances(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{})

	ea := a.acquire("a", &zklockv1.AcquireRequest{Lock: "demo", Owner: "a"})
	if q := ea.queued(wait); q.GetPosition() != 0 || q.GetQueueLength() != 1 {
		t.Errorf("a: first Queued = %v, want position 0, queue_length 1", q)
	}
	e := ea.next(wait)
	ga := e.GetGranted()
	if ga == nil {
		t.Fatalf("a: event %v, want Granted", e.AcquireResponse)
	}
	if ga.GetLeaseId() == "" || ga.GetFencingToken() <= 0 || ga.GetExpiresAt() != nil {
		t.Errorf("a: Granted %v: want a lease id, a positive token and no expires_at (stream-bound)", ga)
	}

	eb := b.acquire("b", &zklockv1.AcquireRequest{Lock: "demo", Owner: "b"})
	if q := eb.queued(wait); q.GetPosition() != 1 || q.GetQueueLength() != 2 {
		t.Errorf("b: first Queued = %v, want position 1, queue_length 2", q)
	}
	eb.none(500 * time.Millisecond)

	// Describe reads ZooKeeper, so b sees a's hold.
	d, err := b.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: "demo"})
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if len(d.GetHolders()) != 1 || d.GetHolders()[0].GetOwner() != "a" || d.GetHolders()[0].GetFencingToken() != ga.GetFencingToken() ||
		len(d.GetWaiters()) != 1 || d.GetWaiters()[0].GetOwner() != "b" {
		t.Errorf("Describe on b = %v, want holder a (token %d), waiter b", d, ga.GetFencingToken())
	}

	// A lease id is only good at the sidecar that issued it.
	_, err = b.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: ga.GetLeaseId()})
	wantStatus(t, err, codes.NotFound, "LEASE_NOT_FOUND")
	_, err = b.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{ga.GetLeaseId()}})
	wantStatus(t, err, codes.NotFound, "LEASE_NOT_FOUND")
	eb.none(200 * time.Millisecond)

	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: ga.GetLeaseId()}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if e := ea.next(wait); e.GetReleased() == nil {
		t.Errorf("a: event %v, want Released", e.AcquireResponse)
	}
	if err := ea.end(wait); err != nil {
		t.Errorf("a: stream ended with %v after Released, want OK", err)
	}
	gb, _ := eb.granted(wait)
	if gb.GetFencingToken() <= ga.GetFencingToken() {
		t.Errorf("b's token %d not above a's %d", gb.GetFencingToken(), ga.GetFencingToken())
	}
	if _, err := b.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: gb.GetLeaseId()}); err != nil {
		t.Fatalf("b: Release: %v", err)
	}
	if e := eb.next(wait); e.GetReleased() == nil {
		t.Errorf("b: event %v, want Released", e.AcquireResponse)
	}
	if err := eb.end(wait); err != nil {
		t.Errorf("b: stream ended with %v after Released, want OK", err)
	}
}

// The stream is the lock: when the holder's client drops it, the lock goes
// to the other sidecar's waiter at once, not after the session timeout.
func TestClosingHolderStreamFreesLockAtOnce(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	// A grant within the 30 s session timeout can only come from the release.
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{sessionTimeout: 30 * time.Second})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{sessionTimeout: 30 * time.Second})
	ins := zktest.Client(t, zkc.ConnectString())

	ea := a.acquire("a", &zklockv1.AcquireRequest{Lock: "orders/42"})
	ga, _ := ea.granted(wait)
	eb := b.acquire("b", &zklockv1.AcquireRequest{Lock: "orders/42"})
	eb.queued(wait)
	eb.none(300 * time.Millisecond)

	cancelled := time.Now()
	ea.cancel() // the application dropped its stream (or crashed)
	gb, at := eb.granted(5 * time.Second)
	t.Logf("b granted %v after a's stream was cancelled", at.Sub(cancelled).Round(time.Millisecond))
	if gb.GetFencingToken() <= ga.GetFencingToken() {
		t.Errorf("b's token %d not above a's %d", gb.GetFencingToken(), ga.GetFencingToken())
	}
	holder, _ := holderNode(t, b, ins, "orders/42")
	if c := zktest.Children(t, ins, "/zklock/orders/42"); len(c) != 1 || "/zklock/orders/42/"+c[0] != holder {
		t.Errorf("children of /zklock/orders/42 = %v, want b's node %s only", c, holder)
	}
	// The dropped lease was released, not lost: releasing it again is fine.
	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: ga.GetLeaseId()}); err != nil {
		t.Errorf("Release of the dropped lease: %v", err)
	}

	// An application whose connection closes (it exited or crashed) loses
	// its stream-bound lease at once too, and only its own.
	app := b.otherApp("app on b")
	e2 := app.acquire("app on b", &zklockv1.AcquireRequest{Lock: "orders/43"})
	g2, _ := e2.granted(wait)
	ea2 := a.acquire("a again", &zklockv1.AcquireRequest{Lock: "orders/43"})
	ea2.queued(wait)
	closed := time.Now()
	app.conn.Close()
	ga2, at := ea2.granted(5 * time.Second)
	t.Logf("a granted %v after the other app's connection closed", at.Sub(closed).Round(time.Millisecond))
	if ga2.GetFencingToken() <= g2.GetFencingToken() {
		t.Errorf("a's token %d not above %d", ga2.GetFencingToken(), g2.GetFencingToken())
	}
	eb.none(100 * time.Millisecond) // b's own lease on orders/42 is untouched
	if _, err := b.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: gb.GetLeaseId()}); err != nil {
		t.Errorf("b: Release: %v", err)
	}
}

// A detached lease that is not renewed runs out at its ttl: the waiter on
// the other sidecar gets the lock, and the lease's owner learns it was lost.
func TestDetachedLeaseExpires(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{})

	const ttl = time.Second
	asked := time.Now()
	ea := a.acquire("a", &zklockv1.AcquireRequest{Lock: "job", Detach: true, Ttl: dur(ttl)})
	ga, gat := ea.granted(wait)
	if ga.GetExpiresAt() == nil {
		t.Fatalf("detached Granted %v has no expires_at", ga)
	}
	// The grant happened between the call and the event's arrival, and
	// expires_at is the ttl after it (one clock: the same machine).
	exp := ga.GetExpiresAt().AsTime()
	if exp.Before(asked.Add(ttl)) || exp.After(gat.Add(ttl)) {
		t.Errorf("expires_at is %v after the call and %v after the grant arrived, want the %v ttl after a moment between them",
			exp.Sub(asked), exp.Sub(gat), ttl)
	}
	if err := ea.end(wait); err != nil {
		t.Errorf("detached stream ended with %v after Granted, want OK", err)
	}

	eb := b.acquire("b", &zklockv1.AcquireRequest{Lock: "job"})
	if q := eb.queued(wait); q.GetPosition() != 1 || q.GetQueueLength() != 2 {
		t.Errorf("b: Queued = %v, want position 1, queue_length 2", q)
	}
	gb, at := eb.granted(wait)
	t.Logf("b granted %v after a's lease's expires_at", at.Sub(exp).Round(time.Millisecond))
	if at.Before(exp) {
		t.Errorf("b granted at %v, before a's lease expires at %v", at, exp)
	}
	if gb.GetFencingToken() <= ga.GetFencingToken() {
		t.Errorf("b's token %d not above a's %d", gb.GetFencingToken(), ga.GetFencingToken())
	}

	_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{ga.GetLeaseId()}})
	info := wantStatus(t, err, codes.Aborted, "LEASE_LOST")
	if got := info.GetMetadata()["lost_reason"]; got != "LEASE_EXPIRED" {
		t.Errorf("Renew: lost_reason %q, want LEASE_EXPIRED (ErrorInfo %v)", got, info)
	}
	if got := info.GetMetadata()["fencing_token"]; got != strconv.FormatInt(ga.GetFencingToken(), 10) {
		t.Errorf("Renew: fencing_token %q, want %d", got, ga.GetFencingToken())
	}
	_, err = a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: ga.GetLeaseId()})
	wantStatus(t, err, codes.Aborted, "LEASE_LOST")
}

// Cancelling an Acquire before its grant removes its node at once, and so
// does a wait that runs out; the holder's node stays.
func TestCancelBeforeGrantLeavesNoNode(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{})
	ins := zktest.Client(t, zkc.ConnectString())

	ea := a.acquire("a", &zklockv1.AcquireRequest{Lock: "c"})
	ga, _ := ea.granted(wait)
	holder, _ := holderNode(t, a, ins, "c")
	_, st := exists(t, ins, holder)
	if st.Czxid != ga.GetFencingToken() {
		t.Errorf("holder node's czxid %d, but fencing token %d", st.Czxid, ga.GetFencingToken())
	}
	onlyHolder := func() bool {
		c := zktest.Children(t, ins, "/zklock/c")
		return len(c) == 1 && "/zklock/c/"+c[0] == holder
	}

	ew := b.acquire("b", &zklockv1.AcquireRequest{Lock: "c"})
	ew.queued(wait)
	if c := zktest.Children(t, ins, "/zklock/c"); len(c) != 2 {
		t.Fatalf("children of /zklock/c = %v, want the holder's and the waiter's", c)
	}
	cancelled := time.Now()
	ew.cancel()
	zktest.Eventually(t, 5*time.Second, "the cancelled waiter's node is deleted", onlyHolder)
	t.Logf("waiter's node gone %v after the cancel", time.Since(cancelled).Round(time.Millisecond))

	et := b.acquire("b, wait 300ms", &zklockv1.AcquireRequest{Lock: "c", Wait: dur(300 * time.Millisecond)})
	et.queued(wait)
	wantStatus(t, et.end(wait), codes.DeadlineExceeded, "WAIT_EXPIRED")
	if !onlyHolder() {
		t.Errorf("children of /zklock/c = %v after the wait ran out, want the holder's %s only", zktest.Children(t, ins, "/zklock/c"), holder)
	}
	ea.none(100 * time.Millisecond) // the holder was not disturbed
}

// Renew and Release of a lease the sidecar does not know, and a lock name
// that tries to leave the root, are refused with the right code and change
// nothing in ZooKeeper.
func TestBadRequestsLeaveNoNode(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	ins := zktest.Client(t, zkc.ConnectString())
	unknown := "0123456789abcdef0123456789abcdef"

	_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{unknown}})
	wantStatus(t, err, codes.NotFound, "LEASE_NOT_FOUND")
	_, err = a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: unknown})
	wantStatus(t, err, codes.NotFound, "LEASE_NOT_FOUND")
	_, err = a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: "../etc"})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_LEASE_ID")

	for _, req := range []*zklockv1.AcquireRequest{
		{Lock: "../etc"},
		{Lock: "../etc", Detach: true, Wait: dur(0)},
		{Lock: "a/../../etc"},
	} {
		err := a.acquire("acquire "+req.GetLock(), req).end(wait)
		wantStatus(t, err, codes.InvalidArgument, "INVALID_LOCK_NAME")
		if !strings.Contains(status.Convert(err).Message(), "..") {
			t.Errorf("Acquire(%q): message %q does not name the rule (no .. segment)", req.GetLock(), status.Convert(err).Message())
		}
	}
	_, err = a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: "../etc"})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_LOCK_NAME")

	if c := zktest.Children(t, ins, "/zklock"); len(c) != 0 {
		t.Errorf("bad requests left nodes under /zklock: %v", c)
	}
	if c := zktest.Children(t, ins, "/"); slices.ContainsFunc(c, func(n string) bool { return n != "zookeeper" && n != "zklock" }) {
		t.Errorf("bad requests left nodes outside the root: / has %v", c)
	}
}

// A sidecar that is SIGKILLed cannot release anything: its waiter on the
// other sidecar gets the lock once ZooKeeper expires the dead session, and
// not before.
func TestKilledHolderFreesLockAfterSessionTimeout(t *testing.T) {
	t.Parallel()
	const sessionTimeout = 4 * time.Second
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{sessionTimeout: sessionTimeout})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{sessionTimeout: sessionTimeout})
	ins := zktest.Client(t, zkc.ConnectString())

	ea := a.acquire("a", &zklockv1.AcquireRequest{Lock: "k"})
	ga, _ := ea.granted(wait)
	node, session := holderNode(t, a, ins, "k")
	eb := b.acquire("b", &zklockv1.AcquireRequest{Lock: "k"})
	if q := eb.queued(wait); q.GetPosition() != 1 {
		t.Errorf("b: Queued = %v, want position 1", q)
	}
	eb.none(500 * time.Millisecond)

	killed := a.signal(syscall.SIGKILL)
	if ps := a.waitExit(exitTimeout); ps.Success() {
		t.Errorf("a exited with %v after SIGKILL", ps)
	}
	// Until b is granted, watch a's node: it must outlive the process (the
	// session does) and be gone when b is granted.
	var lastSeen time.Time
	var gb *zklockv1.Granted
	var grantedAt time.Time
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for gb == nil {
		select {
		case e, ok := <-eb.ch:
			if !ok {
				t.Fatalf("b: stream ended (%v), want Granted", eb.final)
			}
			if e.GetQueued() != nil {
				continue
			}
			if gb = e.GetGranted(); gb == nil {
				t.Fatalf("b: event %v, want Granted", e.AcquireResponse)
			}
			grantedAt = e.at
		case <-tick.C:
			if ok, _ := exists(t, ins, node); ok {
				lastSeen = time.Now()
			}
		case <-deadline:
			t.Fatalf("b not granted 15s after a was killed (session timeout %v)", sessionTimeout)
		}
	}
	after := grantedAt.Sub(killed)
	t.Logf("b granted %v after a was SIGKILLed; a's node last seen %v after", after.Round(time.Millisecond), lastSeen.Sub(killed).Round(time.Millisecond))
	if ok, _ := exists(t, ins, node); ok {
		t.Errorf("b granted while a's node %s still exists", node)
	}
	if n := ephemeralsOf(t, ins, "/zklock", session); len(n) != 0 {
		t.Errorf("a's session still owns %v after b was granted", n)
	}
	// The session outlives its process by the session timeout, less the
	// time since its last contact (a heartbeat every tenth of the timeout).
	if after < 3*time.Second {
		t.Errorf("b granted %v after a was killed, before a's %v session could have expired", after, sessionTimeout)
	}
	if lastSeen.Sub(killed) < 2*time.Second {
		t.Errorf("a's node last seen %v after the kill, want it to live about the session timeout", lastSeen.Sub(killed))
	}
	if gb.GetFencingToken() <= ga.GetFencingToken() {
		t.Errorf("b's token %d not above a's %d", gb.GetFencingToken(), ga.GetFencingToken())
	}
}

// SIGTERM: the sidecar releases every lease and deletes its nodes, tells
// holders Lost{SHUTDOWN} and waiters UNAVAILABLE, and exits 0 in time; the
// other sidecar's waiters get the locks at once.
func TestTerminatedSidecarReleasesEverything(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = 5 * time.Second
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{sessionTimeout: 30 * time.Second, shutdownTimeout: shutdownTimeout})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{sessionTimeout: 30 * time.Second})
	ins := zktest.Client(t, zkc.ConnectString())

	held := a.acquire("a holder s1", &zklockv1.AcquireRequest{Lock: "s1", Owner: "a"})
	gHeld, _ := held.granted(wait)
	det := a.acquire("a detached s2", &zklockv1.AcquireRequest{Lock: "s2", Detach: true, Owner: "a"})
	gDet, _ := det.granted(wait)
	if err := det.end(wait); err != nil {
		t.Fatalf("detached stream ended with %v", err)
	}
	waiting := a.acquire("a waiter s1", &zklockv1.AcquireRequest{Lock: "s1", Owner: "a"})
	waiting.queued(wait)
	_, session := holderNode(t, a, ins, "s1")
	bS2 := b.acquire("b waiter s2", &zklockv1.AcquireRequest{Lock: "s2", Owner: "b"})
	bS2.queued(wait)
	bS1 := b.acquire("b waiter s1", &zklockv1.AcquireRequest{Lock: "s1", Owner: "b"})
	if q := bS1.queued(wait); q.GetPosition() != 2 || q.GetQueueLength() != 3 {
		t.Errorf("b: Queued on s1 = %v, want position 2, queue_length 3", q)
	}
	if n := ephemeralsOf(t, ins, "/zklock", session); len(n) != 3 {
		t.Fatalf("a's session owns %v, want its 3 nodes", n)
	}
	bS1.none(200 * time.Millisecond)
	bS2.none(50 * time.Millisecond)

	termed := a.signal(syscall.SIGTERM)
	if e := held.next(wait); e.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SHUTDOWN {
		t.Errorf("a's holder got %v, want Lost{reason: LOST_REASON_SHUTDOWN}", e.AcquireResponse)
	}
	if err := held.end(wait); err != nil {
		t.Errorf("a's holder stream ended with %v after Lost, want OK", err)
	}
	wantStatus(t, waiting.end(wait), codes.Unavailable, "SHUTTING_DOWN")
	ps := a.waitExit(shutdownTimeout + exitTimeout)
	took := time.Since(termed)
	t.Logf("a exited (%v) %v after SIGTERM", ps, took.Round(time.Millisecond))
	if ps.ExitCode() != 0 {
		t.Errorf("a exited with %v after SIGTERM, want 0", ps)
	}
	if took > shutdownTimeout+time.Second {
		t.Errorf("a took %v to exit, past its %v shutdown timeout", took, shutdownTimeout)
	}
	if n := ephemeralsOf(t, ins, "/zklock", session); len(n) != 0 {
		t.Errorf("a's session still owns %v after a exited", n)
	}

	g2, at2 := bS2.granted(5 * time.Second)
	g1, at1 := bS1.granted(5 * time.Second)
	t.Logf("b granted s2 %v and s1 %v after the SIGTERM", at2.Sub(termed).Round(time.Millisecond), at1.Sub(termed).Round(time.Millisecond))
	if g2.GetFencingToken() <= gDet.GetFencingToken() || g1.GetFencingToken() <= gHeld.GetFencingToken() {
		t.Errorf("b's tokens s1 %d, s2 %d not above a's s1 %d, s2 %d", g1.GetFencingToken(), g2.GetFencingToken(), gHeld.GetFencingToken(), gDet.GetFencingToken())
	}
	for _, lock := range []string{"s1", "s2"} {
		if c := zktest.Children(t, ins, "/zklock/"+lock); len(c) != 1 {
			t.Errorf("children of /zklock/%s = %v, want b's node only", lock, c)
		}
	}
}

// SIGTERM while ZooKeeper is down still ends in bounded time: the holder
// is told Lost{SHUTDOWN} at once, and the process exits 0 once the shutdown
// timeout has passed, not waiting for ZooKeeper.
func TestTerminateWithZooKeeperDownIsBounded(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = 2 * time.Second
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{shutdownTimeout: shutdownTimeout})
	held := a.acquire("a holder", &zklockv1.AcquireRequest{Lock: "x"})
	held.granted(wait)
	det := a.acquire("a detached", &zklockv1.AcquireRequest{Lock: "y", Detach: true})
	det.granted(wait)

	zkc.Server(0).Kill()
	if e := held.next(wait); e.GetSuspended() == nil {
		t.Errorf("holder got %v, want Suspended once ZooKeeper is gone", e.AcquireResponse)
	}
	termed := a.signal(syscall.SIGTERM)
	if e := held.next(wait); e.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SHUTDOWN {
		t.Errorf("holder got %v, want Lost{reason: LOST_REASON_SHUTDOWN}", e.AcquireResponse)
	}
	if err := held.end(wait); err != nil {
		t.Errorf("holder's stream ended with %v after Lost, want OK", err)
	}
	ps := a.waitExit(shutdownTimeout + exitTimeout)
	took := time.Since(termed)
	t.Logf("a exited (%v) %v after SIGTERM", ps, took.Round(time.Millisecond))
	if ps.ExitCode() != 0 {
		t.Errorf("a exited with %v, want 0", ps)
	}
	if took > shutdownTimeout+2*time.Second {
		t.Errorf("a took %v to exit, past its %v shutdown timeout", took, shutdownTimeout)
	}
}

// zklockd serves on a unix socket, configured through the environment; a
// second zklockd refuses a socket in use, a stale one left by a killed
// zklockd is replaced, and a clean exit (SIGINT) removes it.
func TestUnixSocket(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	sock := filepath.Join(t.TempDir(), "zklockd.sock")
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{unixSocket: sock, viaEnv: true})
	takeLock := func(d *daemon) {
		t.Helper()
		e := d.acquire(d.name, &zklockv1.AcquireRequest{Lock: "over/unix"})
		g, _ := e.granted(wait)
		if _, err := d.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()}); err != nil {
			t.Fatalf("%s: Release: %v", d.name, err)
		}
		if e := e.next(wait); e.GetReleased() == nil {
			t.Errorf("%s: event %v, want Released", d.name, e.AcquireResponse)
		}
		if err := e.end(wait); err != nil {
			t.Errorf("%s: stream ended with %v after Released", d.name, err)
		}
	}
	takeLock(a)

	// A second zklockd on the same socket fails, and leaves the first alone.
	dup := spawn(t, "dup", zkc.ConnectString(), "unix://"+sock, daemonOpts{})
	if ps := dup.waitExit(exitTimeout); ps.ExitCode() != 1 {
		t.Errorf("second zklockd on a socket in use exited with %v, want 1", ps)
	}
	if out := dup.out.String(); !strings.Contains(out, "in use") {
		t.Errorf("second zklockd's output does not say the socket is in use:\n%s", out)
	}
	takeLock(a)

	// Killed, a leaves its socket file; the next zklockd takes it over.
	a.signal(syscall.SIGKILL)
	a.waitExit(exitTimeout)
	if fi, err := os.Lstat(sock); err != nil {
		t.Fatalf("no stale socket after SIGKILL (%v): the takeover below would test nothing", err)
	} else if fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("%s after SIGKILL is a %v, want the stale socket", sock, fi.Mode().Type())
	}
	c := startDaemon(t, "c", zkc.ConnectString(), daemonOpts{unixSocket: sock})
	takeLock(c)

	c.signal(syscall.SIGINT) // SIGTERM's twin
	if ps := c.waitExit(exitTimeout); ps.ExitCode() != 0 {
		t.Errorf("c exited with %v after SIGINT, want 0", ps)
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("socket %s still there after a clean exit", sock)
	}
}
