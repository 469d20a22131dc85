package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

// TestLeaseIDsNeverLogged: a lease id is a secret (whoever has it can
// release the lock), so zklockd never writes one to its log, even at debug
// level, in either format. The test drives every way a lease lives and
// ends, with bad and unknown ids too, then searches the daemon's whole
// output, and its metrics, for every id the clients saw or sent.
func TestLeaseIDsNeverLogged(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			leaseLifecycles(t, format)
		})
	}
}

// leaseIDs collects the lease ids a test saw or sent.
type leaseIDs []string

func (ids *leaseIDs) add(g *zklockv1.Granted) *zklockv1.Granted {
	*ids = append(*ids, g.GetLeaseId())
	return g
}

// randomLeaseID returns an id of a lease's form that no sidecar issued.
func randomLeaseID(t *testing.T) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// leaseIDForms returns the ways a log line could show id or enough of it
// to matter: as is, upper case, either half, and its 16 bytes in base64
// (how slog's JSON shows a []byte).
func leaseIDForms(id string) []string {
	forms := []string{id, strings.ToUpper(id), id[:16], id[16:]}
	if b, err := hex.DecodeString(id); err == nil {
		forms = append(forms, base64.StdEncoding.EncodeToString(b)[:20], base64.URLEncoding.EncodeToString(b)[:20])
	}
	return forms
}

func leaseLifecycles(t *testing.T, format string) {
	const sessionTimeout = 4 * time.Second
	zkc := zktest.StartStandalone(t)
	p, err := tcpproxy.New(zkc.Servers()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	metricsAddr := freeLoopbackAddr(t)
	// startDaemon already asks for --log-level debug.
	d := startDaemon(t, "a", p.Addr(), daemonOpts{sessionTimeout: sessionTimeout,
		args: []string{"--log-format", format, "--metrics-listen", metricsAddr}})
	var ids leaseIDs

	// Stream-bound: released by Release, twice; renewed once released.
	s := d.acquire("released", &zklockv1.AcquireRequest{Lock: "log/a", Owner: "e2e"})
	g, _ := s.granted(wait)
	ids.add(g)
	w := d.acquire("handed", &zklockv1.AcquireRequest{Lock: "log/a", Mode: zklockv1.Mode_MODE_EXCLUSIVE})
	w.queued(wait)
	for range 2 {
		if _, err := d.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()}); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	_, err = d.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{g.GetLeaseId()}})
	wantStatus(t, err, codes.NotFound, "LEASE_NOT_FOUND")
	// Handed over inside the sidecar, then released by closing its stream.
	gw, _ := w.granted(wait)
	ids.add(gw)
	w.cancel()
	zktest.Eventually(t, wait, "the closed stream's lease is released", func() bool {
		r, err := d.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: "log/a"})
		return err == nil && len(r.GetHolders()) == 0
	})
	if _, err := d.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: gw.GetLeaseId()}); err != nil {
		t.Errorf("Release after the stream closed: %v", err)
	}

	// Shared holders; a waiter that gives up, one that tries once.
	r1 := d.acquire("reader-1", &zklockv1.AcquireRequest{Lock: "log/shared", Mode: zklockv1.Mode_MODE_SHARED})
	gr1, _ := r1.granted(wait)
	ids.add(gr1)
	r2 := d.acquire("reader-2", &zklockv1.AcquireRequest{Lock: "log/shared", Mode: zklockv1.Mode_MODE_SHARED})
	gr2, _ := r2.granted(wait)
	ids.add(gr2)
	tw := d.acquire("timed", &zklockv1.AcquireRequest{Lock: "log/shared", Wait: dur(100 * time.Millisecond)})
	tw.queued(wait)
	wantStatus(t, tw.end(wait), codes.DeadlineExceeded, "WAIT_EXPIRED")
	to := d.acquire("try-once", &zklockv1.AcquireRequest{Lock: "log/shared", Wait: dur(0)})
	to.queued(wait)
	wantStatus(t, to.end(wait), codes.DeadlineExceeded, "LOCK_HELD")
	if _, err := d.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: "log/shared"}); err != nil {
		t.Fatalf("Describe: %v", err)
	}
	r1.cancel()
	if _, err := d.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: gr2.GetLeaseId()}); err != nil {
		t.Fatalf("Release: %v", err)
	}

	// Detached: renewed with and without a ttl, then left to expire.
	det := d.acquire("detached", &zklockv1.AcquireRequest{Lock: "log/detached", Detach: true, Ttl: dur(2 * time.Second)})
	gd, _ := det.granted(wait)
	ids.add(gd)
	if err := det.end(wait); err != nil {
		t.Fatalf("detached stream: %v", err)
	}
	if _, err := d.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{gd.GetLeaseId()}, Ttl: dur(time.Second)}); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if _, err := d.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{gd.GetLeaseId()}}); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	next := d.acquire("after-expiry", &zklockv1.AcquireRequest{Lock: "log/detached"})
	gn, _ := next.granted(wait)
	ids.add(gn)
	_, err = d.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{gd.GetLeaseId()}})
	wantStatus(t, err, codes.Aborted, "LEASE_LOST")
	_, err = d.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: gd.GetLeaseId()})
	wantStatus(t, err, codes.Aborted, "LEASE_LOST")
	next.cancel()

	// Unknown ids, alone and among live ones, and an id that is not of a
	// lease's form because it is upper case.
	live := d.acquire("live", &zklockv1.AcquireRequest{Lock: "log/live", Detach: true, Ttl: dur(time.Minute)})
	gl, _ := live.granted(wait)
	ids.add(gl)
	unknown := randomLeaseID(t)
	ids = append(ids, unknown)
	_, err = d.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{gl.GetLeaseId(), unknown}})
	wantStatus(t, err, codes.NotFound, "LEASE_NOT_FOUND")
	_, err = d.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: unknown})
	wantStatus(t, err, codes.NotFound, "LEASE_NOT_FOUND")
	_, err = d.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: strings.ToUpper(gl.GetLeaseId())})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_LEASE_ID")
	_, err = d.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{gl.GetLeaseId(), gl.GetLeaseId()[:31] + "g"}})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_LEASE_ID")

	// The ZooKeeper session is lost: a stream-bound holder hears Lost, a
	// detached lease is lost too, and its Renew and Release say so. A
	// Renew while contact is in doubt answers UNAVAILABLE.
	bound := d.acquire("bound", &zklockv1.AcquireRequest{Lock: "log/session"})
	gb, _ := bound.granted(wait)
	ids.add(gb)
	p.SetMode(tcpproxy.Stall)
	if e := bound.next(wait); e.GetSuspended() == nil {
		t.Fatalf("bound: %v, want Suspended", e.AcquireResponse)
	}
	_, err = d.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{gl.GetLeaseId()}})
	wantStatus(t, err, codes.Unavailable, "SUSPENDED")
	if e := bound.next(sessionTimeout + wait); e.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SESSION_EXPIRED {
		t.Fatalf("bound: %v, want Lost{SESSION_EXPIRED}", e.AcquireResponse)
	}
	p.SetMode(tcpproxy.Pass)
	zktest.Eventually(t, startTimeout, "the daemon has a ZooKeeper session again", func() bool {
		_, err := d.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: "log/session"})
		return err == nil
	})
	for _, id := range []string{gl.GetLeaseId(), gb.GetLeaseId()} {
		_, err = d.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{id}})
		wantStatus(t, err, codes.Aborted, "LEASE_LOST")
		_, err = d.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: id})
		wantStatus(t, err, codes.Aborted, "LEASE_LOST")
	}

	// Shutdown with a stream-bound and a detached lease held.
	held := d.acquire("held", &zklockv1.AcquireRequest{Lock: "log/held"})
	gh, _ := held.granted(wait)
	ids.add(gh)
	hd := d.acquire("held-detached", &zklockv1.AcquireRequest{Lock: "log/held-detached", Detach: true, Ttl: dur(time.Minute)})
	ghd, _ := hd.granted(wait)
	ids.add(ghd)
	if _, err := d.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{ghd.GetLeaseId()}}); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	metrics := scrapeText(t, "http://"+metricsAddr+"/metrics")
	d.signal(syscall.SIGTERM)
	if e := held.next(wait); e.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SHUTDOWN {
		t.Errorf("held: %v, want Lost{SHUTDOWN}", e.AcquireResponse)
	}
	if st := d.waitExit(exitTimeout); !st.Success() {
		t.Errorf("zklockd exited with %v", st)
	}

	out := d.out.String()
	// The search means something only if the calls were logged.
	for _, want := range []string{"Acquire", "Renew", "Release", "Describe", "lease expired"} {
		if !strings.Contains(out, want) {
			t.Errorf("the debug log does not mention %q: the calls were not logged", want)
		}
	}
	for i, id := range ids {
		for _, form := range leaseIDForms(id) {
			if strings.Contains(out, form) {
				t.Errorf("the log shows lease id #%d (as %q)", i, form)
			}
			if strings.Contains(metrics, form) {
				t.Errorf("the metrics show lease id #%d (as %q)", i, form)
			}
		}
	}
	t.Logf("searched %d bytes of log for %d lease ids", len(out), len(ids))
}

// scrapeText returns what an HTTP GET of url answers.
func scrapeText(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
