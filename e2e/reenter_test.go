package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// reentered expects a re-entry's first event: Granted at once, with no
// Queued, token's fencing token and a lease id of its own, not one of ids.
func (s *stream) reentered(token int64, ids ...string) *zklockv1.Granted {
	s.t.Helper()
	e := s.next(wait)
	g := e.GetGranted()
	if g == nil {
		s.t.Fatalf("%s: first event %v, want Granted at once", s.name, e.AcquireResponse)
	}
	if g.GetFencingToken() != token {
		s.t.Errorf("%s: fencing token %d, want the re-entered lease's %d", s.name, g.GetFencingToken(), token)
	}
	for _, id := range ids {
		if g.GetLeaseId() == "" || g.GetLeaseId() == id {
			s.t.Errorf("%s: lease id %q, want a new one", s.name, g.GetLeaseId())
		}
	}
	return g
}

// TestReentryKeepsTheLockUntilTheLastLeaseEnds: a lease of one zklockd is
// re-entered, and re-entered again through a re-entry, stream-bound and
// detached: each re-entry is granted at once with the same fencing token
// and a lease id of its own, Describe counts them, and the lock's node
// stays, with another zklockd's contender waiting, until the first lease
// and every re-entry have ended, whatever the order and however each ends
// (Release, the stream's end, the ttl). Then the waiter is granted.
func TestReentryKeepsTheLockUntilTheLastLeaseEnds(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	metricsAddr := freeLoopbackAddr(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{args: []string{"--metrics-listen", metricsAddr}})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{})
	ins := zktest.Client(t, zkc.ConnectString())
	const lock = "jobs/nightly"

	outer := a.acquire("outer", &zklockv1.AcquireRequest{Lock: lock, Owner: "outer"})
	g0, _ := outer.granted(wait)
	node, _ := holderNode(t, a, ins, lock)
	waiter := b.acquire("waiter", &zklockv1.AcquireRequest{Lock: lock, Owner: "waiter"})
	waiter.queued(wait)

	// inner1 re-enters outer; inner2 (detached) re-enters inner1; inner3
	// re-enters inner2.
	inner1 := a.acquire("inner1", &zklockv1.AcquireRequest{Lock: lock, Reenter: g0.GetLeaseId()})
	g1 := inner1.reentered(g0.GetFencingToken(), g0.GetLeaseId())
	const ttl = 6 * time.Second
	inner2 := a.acquire("inner2", &zklockv1.AcquireRequest{Lock: lock, Reenter: g1.GetLeaseId(), Detach: true, Ttl: dur(ttl)})
	g2 := inner2.reentered(g0.GetFencingToken(), g0.GetLeaseId(), g1.GetLeaseId())
	if g2.GetExpiresAt() == nil {
		t.Errorf("inner2: Granted %v: want expires_at (detached)", g2)
	}
	if err := inner2.end(wait); err != nil {
		t.Errorf("inner2: detached stream ended with %v, want OK", err)
	}
	inner3 := a.acquire("inner3", &zklockv1.AcquireRequest{Lock: lock, Reenter: g2.GetLeaseId(), Mode: zklockv1.Mode_MODE_EXCLUSIVE})
	g3 := inner3.reentered(g0.GetFencingToken(), g0.GetLeaseId(), g1.GetLeaseId(), g2.GetLeaseId())

	r, err := b.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
	if err != nil {
		t.Fatalf("Describe on b: %v", err)
	}
	if len(r.GetHolders()) != 1 || r.GetHolders()[0].GetOwner() != "outer" || r.GetHolders()[0].GetFencingToken() != g0.GetFencingToken() ||
		len(r.GetWaiters()) != 1 || r.GetWaiters()[0].GetOwner() != "waiter" {
		t.Errorf("Describe on b = %v, want holder outer (token %d), waiter waiter", r, g0.GetFencingToken())
	}
	r, err = a.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
	if err != nil {
		t.Fatalf("Describe on a: %v", err)
	}
	if len(r.GetHolders()) != 1 || r.GetHolders()[0].GetReentered() != 3 || r.GetHolders()[0].GetMode() != zklockv1.Mode_MODE_EXCLUSIVE {
		t.Errorf("Describe on a = %v, want one exclusive holder, reentered 3", r)
	}
	wantSeries(t, scrapeMetrics(t, "http://"+metricsAddr+"/metrics"), map[string]float64{
		"zklock_reentries_total": 3,
		"zklock_leases_held":     4,
	})

	// stillHeld checks that the waiter still waits and a's node is there.
	stillHeld := func(after string) {
		t.Helper()
		waiter.none(300 * time.Millisecond)
		if ok, _ := exists(t, ins, node); !ok {
			t.Fatalf("the lock's node %s is gone after %s, with leases left", node, after)
		}
	}
	// The first lease ends first: the lock stays.
	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g0.GetLeaseId()}); err != nil {
		t.Fatalf("Release(outer): %v", err)
	}
	if e := outer.next(wait); e.GetReleased() == nil {
		t.Errorf("outer: %v after Release, want Released", e.AcquireResponse)
	}
	if err := outer.end(wait); err != nil {
		t.Errorf("outer: stream ended with %v, want OK", err)
	}
	stillHeld("outer's Release")

	// A re-entry of a re-entry, released.
	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g3.GetLeaseId()}); err != nil {
		t.Fatalf("Release(inner3): %v", err)
	}
	if e := inner3.next(wait); e.GetReleased() == nil {
		t.Errorf("inner3: %v after Release, want Released", e.AcquireResponse)
	}
	if err := inner3.end(wait); err != nil {
		t.Errorf("inner3: stream ended with %v, want OK", err)
	}
	stillHeld("inner3's Release")

	// A stream-bound re-entry whose stream ends: once its lease is over
	// (Renew says it was released), the lock stays.
	inner1.cancel()
	zktest.Eventually(t, wait, "inner1's lease ends with its stream", func() bool {
		_, err := a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g1.GetLeaseId()}})
		return status.Code(err) == codes.NotFound
	})
	stillHeld("inner1's stream ended")

	// The last, detached, ends by its ttl: only then is the waiter granted.
	gw, at := waiter.granted(ttl + wait)
	if exp := g2.GetExpiresAt().AsTime(); at.Before(exp) {
		t.Errorf("waiter granted at %v, before inner2's ttl ran out at %v", at, exp)
	}
	if gw.GetFencingToken() <= g0.GetFencingToken() {
		t.Errorf("waiter's token %d not above the re-entered lock's %d", gw.GetFencingToken(), g0.GetFencingToken())
	}
	if ok, _ := exists(t, ins, node); ok {
		t.Errorf("the lock's node %s is still there once the waiter holds", node)
	}
	_, err = a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g2.GetLeaseId()}})
	wantStatus(t, err, codes.Aborted, "LEASE_LOST")
	wantSeries(t, scrapeMetrics(t, "http://"+metricsAddr+"/metrics"), map[string]float64{"zklock_reentries_total": 3})
}

// TestNestedRunReenters: `zklock run LOCK -- zklock run LOCK -- COMMAND`
// finishes: the inner run re-enters the outer one's lease (ZKLOCK_LEASE,
// ZKLOCK_LOCK) instead of waiting for it, and its command gets the same
// fencing token. The lock is free afterwards.
func TestNestedRunReenters(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := filepath.Join(t.TempDir(), "zklock")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", cli, "github.com/zklock/zklock/cmd/zklock").CombinedOutput(); err != nil {
		t.Fatalf("building zklock: %v\n%s", err, out)
	}
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	ins := zktest.Client(t, zkc.ConnectString())
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ZKLOCK_") {
			env = append(env, kv)
		}
	}
	env = append(env, "ZKLOCK_ADDR="+a.listen)

	for _, argv := range [][]string{
		{cli, "run", "nested", "--", cli, "run", "nested", "--", "true"},
		// The inner command sees the outer one's token, and a third level
		// re-enters the second.
		{cli, "run", "nested", "--", "sh", "-c", fmt.Sprintf(`outer=$ZKLOCK_FENCING_TOKEN
			exec %[1]s run nested -- %[1]s run nested -- sh -c "test -n \"\$ZKLOCK_FENCING_TOKEN\" && test \"\$ZKLOCK_FENCING_TOKEN\" = $outer"`, cli)},
	} {
		// Well under a second when it re-enters; forever when it waits.
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
		cmd.Env = env
		cmd.WaitDelay = 5 * time.Second
		start := time.Now()
		out, err := cmd.CombinedOutput()
		ccancel()
		if err != nil {
			t.Fatalf("%q: %v after %v (want exit 0 at once)\n%s", argv, err, time.Since(start).Round(time.Millisecond), out)
		}
		t.Logf("%q finished in %v", argv[:5], time.Since(start).Round(time.Millisecond))
	}
	zktest.Eventually(t, wait, "the lock's nodes are gone", func() bool { return len(zktest.Children(t, ins, "/zklock/nested")) == 0 })
}
