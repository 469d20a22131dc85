package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

// TestTryOnceWhileSuspended: while contact with ZooKeeper is in doubt, a
// try-once Acquire (wait 0) answers UNAVAILABLE SUSPENDED at once instead
// of waiting for the connection, and a holder keeps its lease if contact
// comes back in time.
func TestTryOnceWhileSuspended(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	p, err := tcpproxy.New(zkc.Servers()[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	d := startDaemon(t, "a", p.Addr(), daemonOpts{sessionTimeout: 20 * time.Second})
	holder := d.acquire("holder", &zklockv1.AcquireRequest{Lock: "suspended/held"})
	holder.granted(wait)

	p.SetMode(tcpproxy.Stall)
	if e := holder.next(wait + 10*time.Second); e.GetSuspended() == nil {
		t.Fatalf("holder: %v, want Suspended", e.AcquireResponse)
	}
	for _, lock := range []string{"suspended/held", "suspended/free"} {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		start := time.Now()
		s, err := d.client.Acquire(ctx, &zklockv1.AcquireRequest{Lock: lock, Wait: dur(0)})
		if err == nil {
			_, err = s.Recv()
		}
		took := time.Since(start)
		cancel()
		wantStatus(t, err, codes.Unavailable, "SUSPENDED")
		if took > time.Second {
			t.Errorf("try-once of %s while suspended answered after %v, want at once", lock, took.Round(time.Millisecond))
		}
	}
	p.SetMode(tcpproxy.Pass)
	if e := holder.next(wait); e.GetResumed() == nil {
		t.Errorf("holder: %v, want Resumed", e.AcquireResponse)
	}
	// One line for each change of state, in the metric's words. The
	// Resumed event may reach the holder before zklockd wrote its line.
	lines := []string{
		`level=WARN msg="zookeeper session suspended: contact in doubt, holders suspended" why="no reply"`,
		`level=INFO msg="zookeeper session connected again: holders resumed"`,
	}
	zktest.Eventually(t, wait, "zklockd logs the suspension and the resumption", func() bool {
		out := d.out.String()
		return strings.Contains(out, lines[0]) && strings.Contains(out, lines[1])
	})
	out := d.out.String()
	for _, line := range lines {
		if n := strings.Count(out, line); n != 1 {
			t.Errorf("log has %d lines %s, want 1", n, line)
		}
	}
	// Nothing of the try-onces was left behind: a try-once now gets the
	// free lock.
	free := d.acquire("free", &zklockv1.AcquireRequest{Lock: "suspended/free", Wait: dur(0)})
	free.granted(wait)
}

// TestFreshZooKeeperAfterDataLoss: ZooKeeper is killed and a server with
// no data takes its place on the same port (a rebuilt ensemble, a restore
// from an older backup). It refuses the handshake of a client that saw
// later transactions than it has, so zklockd must start over with a new
// client: a session again within one session timeout of the server being
// up, the holder told Lost, the waiter queued again and granted, and a new
// Acquire granted. The fresh server's tokens are lower than those granted
// before: zklockd says so in its log and in a metric.
func TestFreshZooKeeperAfterDataLoss(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	const timeout = 4 * time.Second
	metricsAddr := freeLoopbackAddr(t)
	d := startDaemon(t, "a", zkc.Servers()[0], daemonOpts{sessionTimeout: timeout, args: []string{"--metrics-listen", metricsAddr}})
	// Transactions the fresh server will not have seen.
	for i := range 20 {
		s := d.acquire("churn", &zklockv1.AcquireRequest{Lock: fmt.Sprintf("fresh/churn-%d", i)})
		s.granted(wait)
		s.cancel()
	}
	holder := d.acquire("holder", &zklockv1.AcquireRequest{Lock: "fresh/held"})
	held, _ := holder.granted(wait)
	waiter := d.acquire("waiter", &zklockv1.AcquireRequest{Lock: "fresh/held"})
	waiter.queued(wait)

	srv := zkc.Server(0)
	srv.Kill()
	if err := srv.WipeData(); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	up := time.Now()

	if e := nextNot(holder, "Suspended", timeout+wait); e.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SESSION_EXPIRED {
		t.Fatalf("holder: %v, want Lost SESSION_EXPIRED", e.AcquireResponse)
	}
	g, at := waiter.granted(timeout + wait)
	if at.Sub(up) > timeout+5*time.Second {
		t.Errorf("waiter granted %v after the fresh server was up, want within the session timeout (%v) + 5 s", at.Sub(up).Round(time.Millisecond), timeout)
	}
	if g.GetFencingToken() >= held.GetFencingToken() {
		t.Fatalf("the fresh server's token %d is not below the earlier %d: the test shows nothing", g.GetFencingToken(), held.GetFencingToken())
	}
	fresh := d.acquire("fresh", &zklockv1.AcquireRequest{Lock: "fresh/free"})
	if _, at := fresh.granted(timeout + wait); at.Sub(up) > timeout+5*time.Second {
		t.Errorf("new Acquire granted %v after the fresh server was up, want within the session timeout (%v) + 5 s", at.Sub(up).Round(time.Millisecond), timeout)
	}
	wantSeries(t, scrapeMetrics(t, "http://"+metricsAddr+"/metrics"), map[string]float64{
		`zklock_zookeeper_new_clients_total`:                         1,
		`zklock_fencing_token_regressions_total`:                     1,
		`zklock_zookeeper_session_expiries_total{cause="own_clock"}`: 1,
		`zklock_zookeeper_session_state{state="connected"}`:          1,
	})
	// One line per state change, in the metrics' words; none of the client
	// library's misleading "authentication failed".
	out := d.out.String()
	for _, line := range []string{
		`level=WARN msg="zookeeper session suspended`,
		`level=WARN msg="zookeeper server refused this client's handshake"`,
		`level=WARN msg="zookeeper session lost: holders lost" cause=own_clock`,
		`level=WARN msg="zookeeper servers keep refusing this client's handshakes`,
		`level=ERROR msg="fencing tokens went back`,
	} {
		if n := strings.Count(out, line); n != 1 {
			t.Errorf("log has %d lines %s, want 1", n, line)
		}
	}
	if n := strings.Count(out, `level=INFO msg="zookeeper session connected: locks are served"`); n != 2 {
		t.Errorf("log has %d lines saying the session is connected, want 2 (the first session, the new one)", n)
	}
	if strings.Contains(out, "level=WARN msg=\"zookeeper client: authentication failed") {
		t.Error("log has the client library's \"authentication failed\" as a warning")
	}
}

// nextNot returns s's next event that is not of the kind skip ("Suspended"
// or "Queued").
func nextNot(s *stream, skip string, d time.Duration) event {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		e := s.next(time.Until(deadline))
		if (skip == "Suspended" && e.GetSuspended() != nil) || (skip == "Queued" && e.GetQueued() != nil) {
			continue
		}
		return e
	}
}

// TestLostCreateReplyOnEnsemble: on a 3-server ensemble, zklockd's
// connection goes through a follower. An Acquire's create reaches
// ZooKeeper but its reply is lost, and the caller gives up meanwhile. Once
// the connection is back, zklockd finds the node by its prefix, reading
// what the leader knows (a lagging follower might not show it yet), and
// deletes it: it does not block the lock until the session ends.
func TestLostCreateReplyOnEnsemble(t *testing.T) {
	t.Parallel()
	ens := zktest.StartEnsemble(t, 3)
	follower := (ens.Leader() + 1) % ens.Size()
	p, err := tcpproxy.New(ens.Server(follower).Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	a := startDaemon(t, "a", p.Addr(), daemonOpts{sessionTimeout: 10 * time.Second})
	b := startDaemon(t, "b", ens.ConnectString(), daemonOpts{})
	ins := zktest.Client(t, ens.ConnectString())
	const lock = "lostreply/ensemble"
	first := a.acquire("first", &zklockv1.AcquireRequest{Lock: lock}) // makes the lock node
	first.granted(wait)
	first.cancel()
	children := func() []string {
		if _, err := ins.Sync("/zklock/" + lock); err != nil {
			return nil
		}
		return zktest.Children(t, ins, "/zklock/"+lock)
	}
	zktest.Eventually(t, wait, "the first holder's node deleted", func() bool { return len(children()) == 0 })

	p.SetMode(tcpproxy.DropReplies)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := a.client.Acquire(ctx, &zklockv1.AcquireRequest{Lock: lock})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Acquire with its create's reply dropped: %v, want DeadlineExceeded", err)
	}
	if c := children(); len(c) != 1 {
		t.Fatalf("nodes after the create whose reply was lost: %v, want 1 (the create reached ZooKeeper)", c)
	}
	p.SetMode(tcpproxy.Pass)
	p.Cut() // zklockd reconnects at once, to the same session
	zktest.Eventually(t, wait, "zklockd deleted the node of the lost reply", func() bool { return len(children()) == 0 })
	got := b.acquire("b", &zklockv1.AcquireRequest{Lock: lock, Wait: dur(0)})
	got.granted(wait)
	if strings.Contains(a.out.String(), "zookeeper session lost") {
		t.Error("a's session was lost: its node went with it, not by zklockd's delete")
	}
}
