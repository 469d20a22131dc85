package e2e

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// TestMetricsEndpoint runs zklockd with --metrics-listen and scrapes it as
// Prometheus would: the lock metrics follow a held lease and a detached
// one that runs out, only /metrics is served, and SIGTERM closes the port.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	metricsAddr := freeLoopbackAddr(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{args: []string{"--metrics-listen", metricsAddr}})
	url := "http://" + metricsAddr + "/metrics"

	held := d.acquire("holder", &zklockv1.AcquireRequest{Lock: "metrics/held", Owner: "e2e"})
	held.granted(wait)
	m := scrapeMetrics(t, url)
	wantSeries(t, m, map[string]float64{
		`zklock_leases_held`:                                 1,
		`zklock_waiters`:                                     0,
		`zklock_acquire_wait_seconds_count`:                  1,
		`zklock_zookeeper_session_state{state="connected"}`:  1,
		`zklock_zookeeper_session_state{state="no_session"}`: 0,
		`zklock_leases_lost_total{reason="lease_expired"}`:   0,
		`grpc_server_started_total{grpc_method="Acquire",grpc_service="zklock.v1.LockService",grpc_type="server_stream"}`: 1,
	})

	det := d.acquire("detached", &zklockv1.AcquireRequest{Lock: "metrics/detached", Detach: true, Ttl: dur(time.Second)})
	det.granted(wait)
	// The expiry is counted in two series, one after the other.
	const lost = `zklock_leases_lost_total{reason="lease_expired"}`
	deadline := time.Now().Add(wait)
	for m = scrapeMetrics(t, url); m[`zklock_lease_expiries_total`] < 1 || m[lost] < 1; m = scrapeMetrics(t, url) {
		if time.Now().After(deadline) {
			t.Fatalf("zklock_lease_expiries_total = %v, %s = %v %v after a 1s ttl, want 1", m[`zklock_lease_expiries_total`], lost, m[lost], wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantSeries(t, m, map[string]float64{
		`zklock_lease_expiries_total`:       1,
		lost:                                1,
		`zklock_leases_held`:                1,
		`zklock_acquire_wait_seconds_count`: 2,
	})

	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + metricsAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /: %s, want 404", resp.Status)
	}

	d.signal(syscall.SIGTERM)
	if ps := d.waitExit(exitTimeout); ps.ExitCode() != 0 {
		t.Errorf("exited with %v after SIGTERM, want 0", ps)
	}
	if resp, err := c.Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("/metrics still answers (%s) after zklockd exited", resp.Status)
	}
}

// scrapeMetrics fetches a Prometheus text exposition and returns each
// series (name{labels}) with its value.
func scrapeMetrics(t testing.TB, url string) map[string]float64 {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: line %q: %v", url, line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return out
}

// wantSeries checks the value of each series.
func wantSeries(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for s, v := range want {
		g, ok := got[s]
		switch {
		case !ok:
			t.Errorf("%s missing from /metrics", s)
		case g != v:
			t.Errorf("%s = %v, want %v", s, g, v)
		}
	}
}
