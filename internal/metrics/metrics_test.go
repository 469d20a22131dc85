package metrics

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
	"github.com/zklock/zklock/sidecar"
	"github.com/zklock/zklock/zkrecipes"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// daemon is an in-process zklockd wired as cmd/zklockd wires it, with its
// metrics served on a loopback port.
type daemon struct {
	sess    *zkrecipes.Session
	srv     *sidecar.Server
	served  chan error
	metrics *Server
	url     string // of /metrics
	conn    *grpc.ClientConn
	client  zklockv1.LockServiceClient
	drained bool // the gRPC server was shut down
	stopped bool
}

func startDaemon(t *testing.T, zkAddr string) *daemon {
	t.Helper()
	log := zktest.Logger()
	mx := New()
	sd, err := sidecar.Start(sidecar.DaemonConfig{
		Session: zkrecipes.Config{Servers: strings.Split(zkAddr, ","), SessionTimeout: 6 * time.Second, Logger: log, Observer: mx},
		Service: sidecar.Config{Logger: log, Metrics: mx},
		Server: sidecar.ServerOptions{Logger: log,
			UnaryInterceptors: mx.UnaryInterceptors(), StreamInterceptors: mx.StreamInterceptors()},
	})
	if err != nil {
		t.Fatal(err)
	}
	mx.FollowSession(sd.Session)
	sess := sd.Session
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{
		sess:   sess,
		srv:    sd.Server,
		served: make(chan error, 1),
		url:    "http://" + mlis.Addr().String() + "/metrics",
	}
	go func() { d.served <- d.srv.Serve(lis) }()
	d.metrics = mx.Serve(mlis, log)
	d.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	d.client = zklockv1.NewLockServiceClient(d.conn)
	t.Cleanup(func() { d.stop(t) })
	return d
}

// shutdownGRPC shuts the gRPC server down as SIGTERM does: every lease is
// released, its holder told Lost{SHUTDOWN}.
func (d *daemon) shutdownGRPC(t *testing.T) {
	if d.drained {
		return
	}
	d.drained = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.srv.Shutdown(ctx)
	if err := <-d.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// stop stops the daemon as cmd/zklockd does: gRPC first, then metrics.
func (d *daemon) stop(t *testing.T) {
	if d.stopped {
		return
	}
	d.stopped = true
	d.shutdownGRPC(t)
	d.metrics.Stop()
	d.conn.Close()
	d.sess.Close()
}

// scrape fetches /metrics and returns each series (name{labels}) with its
// value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := httpClient().Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	return parse(t, resp.Body)
}

// httpClient returns a client that keeps no connection (and so no
// goroutine) once a request is done.
func httpClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

func parse(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// want checks the value of each series.
func want(t *testing.T, got map[string]float64, series map[string]float64) {
	t.Helper()
	for s, v := range series {
		g, ok := got[s]
		switch {
		case !ok:
			t.Errorf("%s missing from /metrics", s)
		case g != v:
			t.Errorf("%s = %v, want %v", s, g, v)
		}
	}
}

// eventually scrapes until cond holds.
func eventually(t *testing.T, url, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := scrape(t, url)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type stream struct {
	cancel context.CancelFunc
	s      zklockv1.LockService_AcquireClient
}

func acquire(t *testing.T, c zklockv1.LockServiceClient, req *zklockv1.AcquireRequest) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := c.Acquire(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return &stream{cancel: cancel, s: s}
}

// next returns the next event that is not a Queued one, unless queued.
func (s *stream) next(t *testing.T, queued bool) *zklockv1.AcquireResponse {
	t.Helper()
	for {
		r, err := s.s.Recv()
		if err != nil {
			t.Fatalf("Acquire stream: %v", err)
		}
		if r.GetQueued() == nil || queued {
			return r
		}
	}
}

// TestMetricsShowTheLockLife takes, hands off, releases and loses leases
// in an in-process zklockd and checks what /metrics says at each step.
func TestMetricsShowTheLockLife(t *testing.T) {
	zkc := zktest.StartStandalone(t, zktest.WithConfig("4lw.commands.whitelist", "*"))
	d := startDaemon(t, zkc.ConnectString())
	eventually(t, d.url, "session state connected", func(m map[string]float64) bool {
		return m[`zklock_zookeeper_session_state{state="connected"}`] == 1
	})
	want(t, scrape(t, d.url), map[string]float64{
		`zklock_zookeeper_session_state{state="suspended"}`:  0,
		`zklock_zookeeper_session_state{state="no_session"}`: 0,
		`zklock_leases_held`:                                         0,
		`zklock_waiters`:                                             0,
		`zklock_acquire_wait_seconds_count`:                          0,
		`zklock_local_handoff_seconds_count`:                         0,
		`zklock_lease_expiries_total`:                                0,
		`zklock_leases_lost_total{reason="lease_expired"}`:           0,
		`zklock_leases_lost_total{reason="session_expired"}`:         0,
		`zklock_leases_lost_total{reason="shutdown"}`:                0,
		`zklock_zookeeper_reconnects_total`:                          0,
		`zklock_zookeeper_session_expiries_total{cause="expired"}`:   0,
		`zklock_zookeeper_session_expiries_total{cause="own_clock"}`: 0,
		`zklock_reentries_total`:                                     0,
		`zklock_observers`:                                           0,
	})

	// A holds, B waits behind it.
	a := acquire(t, d.client, &zklockv1.AcquireRequest{Lock: "metrics/a", Owner: "a"})
	if a.next(t, false).GetGranted() == nil {
		t.Fatal("A: want Granted")
	}
	b := acquire(t, d.client, &zklockv1.AcquireRequest{Lock: "metrics/a", Owner: "b"})
	if q := b.next(t, true).GetQueued(); q == nil || q.GetPosition() != 1 {
		t.Fatalf("B: %v, want Queued at position 1", q)
	}
	want(t, scrape(t, d.url), map[string]float64{
		`zklock_leases_held`:                1,
		`zklock_waiters`:                    1,
		`zklock_acquire_wait_seconds_count`: 1,
	})
	// B watches A's node before A lets go, so that B is handed the lock.
	zktest.Eventually(t, 10*time.Second, "B watches A's node", func() bool {
		w, err := zktest.FourLetterWord(zkc.Servers()[0], "wchp", 5*time.Second)
		return err == nil && strings.Contains(w, "/zklock/metrics/a/")
	})
	a.cancel()
	gb := b.next(t, false).GetGranted()
	if gb == nil {
		t.Fatal("B: want Granted once A let go")
	}
	m := eventually(t, d.url, "A's lease ended", func(m map[string]float64) bool { return m[`zklock_leases_held`] == 1 })
	want(t, m, map[string]float64{
		`zklock_waiters`:                     0,
		`zklock_acquire_wait_seconds_count`:  2,
		`zklock_local_handoff_seconds_count`: 1,
	})
	if s := m[`zklock_local_handoff_seconds_sum`]; s <= 0 || s > 10 {
		t.Errorf("handoff took %vs, want a little above 0", s)
	}
	// B re-enters its lock: one more lease held, one re-entry.
	r := acquire(t, d.client, &zklockv1.AcquireRequest{Lock: "metrics/a", Reenter: gb.GetLeaseId()})
	if r.next(t, true).GetGranted() == nil {
		t.Fatal("B's re-entry: want Granted at once")
	}
	want(t, scrape(t, d.url), map[string]float64{
		`zklock_leases_held`:     2,
		`zklock_reentries_total`: 1,
	})
	r.cancel()
	b.cancel()
	eventually(t, d.url, "B's lease ended", func(m map[string]float64) bool { return m[`zklock_leases_held`] == 0 })

	// A detached lease nobody renews runs out.
	c := acquire(t, d.client, &zklockv1.AcquireRequest{Lock: "metrics/c", Detach: true, Ttl: durationpb.New(time.Second)})
	if c.next(t, false).GetGranted() == nil {
		t.Fatal("C: want Granted")
	}
	// The loss is counted in two series one after the other, and an
	// Acquire's handling time when its handler has returned, after its
	// last event: wait for all of them.
	const acquiresHandled = `grpc_server_handling_seconds_count{grpc_method="Acquire",grpc_service="zklock.v1.LockService",grpc_type="server_stream"}`
	m = eventually(t, d.url, "the detached lease expired, and the four Acquire calls returned", func(m map[string]float64) bool {
		return m[`zklock_lease_expiries_total`] >= 1 && m[`zklock_leases_lost_total{reason="lease_expired"}`] >= 1 && m[acquiresHandled] >= 4
	})
	want(t, m, map[string]float64{
		`zklock_lease_expiries_total`:                      1,
		`zklock_leases_lost_total{reason="lease_expired"}`: 1,
		`zklock_leases_lost_total{reason="shutdown"}`:      0,
		`zklock_leases_held`:                               0,
		`zklock_acquire_wait_seconds_count`:                4,
		acquiresHandled:                                    4,
	})
	if n := m[`grpc_server_handled_total{grpc_code="OK",grpc_method="Acquire",grpc_service="zklock.v1.LockService",grpc_type="server_stream"}`]; n < 1 {
		t.Errorf("grpc_server_handled_total of OK Acquire calls = %v, want at least 1", n)
	}
	if m[`go_goroutines`] <= 0 || m[`process_resident_memory_bytes`] <= 0 {
		t.Error("Go and process metrics missing")
	}

	// A lease held at shutdown is lost with reason shutdown; the metrics
	// are served until the gRPC server has stopped.
	e := acquire(t, d.client, &zklockv1.AcquireRequest{Lock: "metrics/e"})
	if e.next(t, false).GetGranted() == nil {
		t.Fatal("E: want Granted")
	}
	d.shutdownGRPC(t)
	want(t, scrape(t, d.url), map[string]float64{
		`zklock_leases_lost_total{reason="shutdown"}`: 1,
		`zklock_leases_held`:                          0,
	})
	d.stop(t)
	if _, err := httpClient().Get(d.url); err == nil {
		t.Error("/metrics still served after Stop")
	}
}

// TestMetricsFollowTheSession cuts the daemon off ZooKeeper: the session
// state goes suspended then no_session, the held lease is lost with reason
// session_expired, the epoch counts as expired by the own clock, and once
// contact is back the reconnect is counted and the state is connected.
func TestMetricsFollowTheSession(t *testing.T) {
	zkc := zktest.StartStandalone(t)
	p, err := tcpproxy.New(zkc.Servers()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d := startDaemon(t, p.Addr())
	eventually(t, d.url, "session state connected", func(m map[string]float64) bool {
		return m[`zklock_zookeeper_session_state{state="connected"}`] == 1
	})
	a := acquire(t, d.client, &zklockv1.AcquireRequest{Lock: "metrics/session"})
	if a.next(t, false).GetGranted() == nil {
		t.Fatal("want Granted")
	}

	p.SetMode(tcpproxy.Stall)
	eventually(t, d.url, "session state suspended", func(m map[string]float64) bool {
		return m[`zklock_zookeeper_session_state{state="suspended"}`] == 1
	})
	for {
		r := a.next(t, false)
		if r.GetSuspended() != nil {
			continue
		}
		if r.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SESSION_EXPIRED {
			t.Fatalf("event %v, want Lost{SESSION_EXPIRED}", r)
		}
		break
	}
	m := eventually(t, d.url, "the lease counted lost", func(m map[string]float64) bool {
		return m[`zklock_leases_lost_total{reason="session_expired"}`] == 1
	})
	want(t, m, map[string]float64{
		`zklock_leases_held`: 0,
		`zklock_zookeeper_session_expiries_total{cause="own_clock"}`: 1,
		`zklock_zookeeper_session_expiries_total{cause="expired"}`:   0,
		`zklock_zookeeper_session_state{state="no_session"}`:         1,
		`zklock_zookeeper_session_state{state="connected"}`:          0,
	})

	p.SetMode(tcpproxy.Pass)
	m = eventually(t, d.url, "session state connected again", func(m map[string]float64) bool {
		return m[`zklock_zookeeper_session_state{state="connected"}`] == 1
	})
	if n := m[`zklock_zookeeper_reconnects_total`]; n < 1 {
		t.Errorf("zklock_zookeeper_reconnects_total = %v after the connection came back, want at least 1", n)
	}
}

func TestOnlyMetricsPathIsServed(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New().Serve(lis, slog.New(slog.DiscardHandler))
	defer s.Stop()
	c := httpClient()
	for path, code := range map[string]int{"/metrics": 200, "/": 404, "/debug/pprof/": 404, "/metrics/x": 404} {
		resp, err := c.Get(fmt.Sprintf("http://%s%s", lis.Addr(), path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, code)
		}
	}
	s.Stop()
	s.Stop() // a second Stop does nothing
}
