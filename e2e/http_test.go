package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/syncbuf"
	"github.com/zklock/zklock/internal/testpki"
	"github.com/zklock/zklock/internal/zktest"
)

// The tests of zklockd's HTTP/JSON gateway (--http-listen) drive it with
// curl, as the README's tour does.

// httpDaemon is a zklockd serving HTTP/JSON too, and how curl reaches it.
type httpDaemon struct {
	*daemon
	base string   // http://host:port or https://host:port
	curl []string // curl's options to reach it (--unix-socket, TLS files)
}

// startHTTPDaemon runs a zklockd with --http-listen on a loopback port, or
// on the unix socket unixSocket if not empty, and returns once it serves.
func startHTTPDaemon(t *testing.T, name, zkAddr string, o daemonOpts, unixSocket string) *httpDaemon {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed (Debian's curl package; .ci/run installs it): %v", err)
	}
	for attempt := 1; ; attempt++ {
		hd := &httpDaemon{base: "http://zklockd"}
		listen := "unix://" + unixSocket
		if unixSocket == "" {
			listen = freeLoopbackAddr(t)
			hd.base = "http://" + listen
		} else {
			hd.curl = []string{"--unix-socket", unixSocket}
		}
		do := o
		do.args = append([]string{"--http-listen", listen}, o.args...)
		d := spawn(t, name, zkAddr, freeLoopbackAddr(t), do)
		err := d.waitServing(startTimeout)
		if err == nil {
			hd.daemon = d
			return hd
		}
		// A port picked free may have been taken before zklockd bound it.
		if d.hasExited() && strings.Contains(d.out.String(), "address already in use") && attempt < 3 {
			t.Logf("%s: a port was taken, trying others", name)
			continue
		}
		t.Fatalf("%s did not serve: %v", name, err)
	}
}

// httpStatus is a gRPC status as the gateway writes it in JSON.
type httpStatus struct {
	Code    codes.Code `json:"code"`
	Message string     `json:"message"`
	Details []struct {
		Type     string            `json:"@type"`
		Reason   string            `json:"reason"`
		Metadata map[string]string `json:"metadata"`
	} `json:"details"`
}

// reason is the status's ErrorInfo reason, "" if it has none.
func (s *httpStatus) reason() string {
	for _, d := range s.Details {
		if d.Type == "type.googleapis.com/google.rpc.ErrorInfo" {
			return d.Reason
		}
	}
	return ""
}

// httpEvent is one line of an Acquire response. Fencing tokens are int64:
// strings in proto3 JSON, which decoding into a string checks.
type httpEvent struct {
	Result *struct {
		Queued *struct {
			Position    int `json:"position"`
			QueueLength int `json:"queueLength"`
		} `json:"queued"`
		Granted  *httpGranted `json:"granted"`
		Released *struct{}    `json:"released"`
		Lost     *struct {
			Reason string `json:"reason"`
		} `json:"lost"`
	} `json:"result"`
	Error *httpStatus `json:"error"`
}

type httpGranted struct {
	LeaseID      string     `json:"leaseId"`
	FencingToken string     `json:"fencingToken"`
	ExpiresAt    *time.Time `json:"expiresAt"` // null for a stream-bound lease
}

// httpContender is a Contender of a Describe or Observe answer.
type httpContender struct {
	Owner        string `json:"owner"`
	FencingToken string `json:"fencingToken"`
	Node         string `json:"node"`
}

type httpDescribe struct {
	Holders []httpContender `json:"holders"`
	Waiters []httpContender `json:"waiters"`
}

// curlRun runs curl with args and the daemon's options, with a bounded
// time, and returns the HTTP status and the body.
func (hd *httpDaemon) curlRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*wait)
	defer cancel()
	argv := append([]string{"-sS", "--write-out", "\n%{http_code}"}, hd.curl...)
	cmd := exec.CommandContext(ctx, "curl", append(argv, args...)...)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %q: %v\n%s%s", args, err, out, stderr.String())
	}
	i := strings.LastIndex(string(out), "\n")
	n, err := strconv.Atoi(string(out[i+1:]))
	if i < 0 || err != nil {
		t.Fatalf("curl %q: no HTTP status at the end of %q", args, out)
	}
	return n, string(out[:i])
}

// post POSTs body to the path and returns the status and the body.
func (hd *httpDaemon) post(t *testing.T, route, body string) (int, string) {
	t.Helper()
	return hd.curlRun(t, "-d", body, hd.base+route)
}

// describe GETs /v1/locks/<lock>.
func (hd *httpDaemon) describe(t *testing.T, lock string) httpDescribe {
	t.Helper()
	code, body := hd.curlRun(t, hd.base+"/v1/locks/"+lock)
	var r httpDescribe
	if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil {
		t.Fatalf("GET /v1/locks/%s: %d %s (%v)", lock, code, body, err)
	}
	return r
}

// wantHTTPStatus checks an HTTP answer: its status, and a body that is the
// gRPC status code (with reason, if not "") that the gRPC API answers.
// stream says the body is an NDJSON line {"error": status}, as a streaming
// call answers.
func wantHTTPStatus(t *testing.T, what string, gotHTTP int, body string, wantHTTP int, code codes.Code, reason string, stream bool) {
	t.Helper()
	var st *httpStatus
	if stream {
		var ev httpEvent
		if err := json.Unmarshal([]byte(body), &ev); err != nil || ev.Error == nil {
			t.Errorf("%s: body %q, want one line {\"error\": status} (%v)", what, body, err)
			return
		}
		st = ev.Error
	} else if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Errorf("%s: body %q, want a status (%v)", what, body, err)
		return
	}
	if gotHTTP != wantHTTP || st.Code != code || st.reason() != reason || st.Message == "" {
		t.Errorf("%s: HTTP %d %s; want HTTP %d with code %v (%d), reason %q and a message", what, gotHTTP, body, wantHTTP, code, code, reason)
	}
}

// curlStream is a curl process reading a streaming answer line by line.
type curlStream struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string // closed at the end of the output
	stderr syncbuf.Buffer
	exited chan struct{}
}

// curlStream starts curl -N on a streaming route; it is killed when the
// test ends.
func (hd *httpDaemon) stream(t *testing.T, route, body string) *curlStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*wait)
	t.Cleanup(cancel)
	argv := append([]string{"-sS", "-N", "-d", body}, hd.curl...)
	cs := &curlStream{t: t, lines: make(chan string, 100), exited: make(chan struct{})}
	cs.cmd = exec.CommandContext(ctx, "curl", append(argv, hd.base+route)...)
	cs.cmd.Stderr = &cs.stderr
	out, err := cs.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.cmd.Start(); err != nil {
		t.Fatalf("curl: %v", err)
	}
	go func() {
		defer close(cs.exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			cs.lines <- sc.Text()
		}
		close(cs.lines)
		cs.cmd.Wait()
	}()
	t.Cleanup(func() {
		cs.cmd.Process.Kill()
		<-cs.exited
	})
	return cs
}

// next returns the next line, failing the test if none comes within
// wait.
func (cs *curlStream) next() string {
	cs.t.Helper()
	select {
	case l, ok := <-cs.lines:
		if !ok {
			cs.t.Fatalf("curl's output ended, want a line (stderr: %s)", cs.stderr.String())
		}
		return l
	case <-time.After(wait):
		cs.t.Fatalf("no line from curl after %v", wait)
	}
	return ""
}

// event decodes the next line as an Acquire event.
func (cs *curlStream) event() httpEvent {
	cs.t.Helper()
	l := cs.next()
	var ev httpEvent
	if err := json.Unmarshal([]byte(l), &ev); err != nil {
		cs.t.Fatalf("line %q: %v", l, err)
	}
	return ev
}

// granted reads Queued lines up to Granted, and returns it and its
// fencing token.
func (cs *curlStream) granted() (*httpGranted, int64) {
	cs.t.Helper()
	for {
		ev := cs.event()
		switch {
		case ev.Result != nil && ev.Result.Queued != nil:
			continue
		case ev.Result != nil && ev.Result.Granted != nil:
			g := ev.Result.Granted
			tok, err := strconv.ParseInt(g.FencingToken, 10, 64)
			if err != nil || len(g.LeaseID) != 32 {
				cs.t.Fatalf("granted %+v: want a 32-digit lease id and a fencing token in a string", g)
			}
			return g, tok
		}
		cs.t.Fatalf("event %+v, want Queued or Granted", ev)
	}
}

// end waits for curl to exit after the last line.
func (cs *curlStream) end() {
	cs.t.Helper()
	select {
	case l, ok := <-cs.lines:
		if ok {
			cs.t.Fatalf("line %q, want the end of the answer", l)
		}
	case <-time.After(wait):
		cs.t.Fatalf("curl's answer still open after %v", wait)
	}
	<-cs.exited
	if !cs.cmd.ProcessState.Success() {
		cs.t.Errorf("curl exited with %v: %s", cs.cmd.ProcessState, cs.stderr.String())
	}
}

// TestHTTPCurlHoldsLockWhileResponseOpen: curl -N on /v1/locks:acquire
// streams Queued and Granted as NDJSON and holds the lock while the answer
// is open: a gRPC contender waits, Describe and Observe (over HTTP) show
// curl holding. Killing curl closes the connection, which releases the
// lock: the gRPC waiter is granted a larger token and curl's node is gone.
func TestHTTPCurlHoldsLockWhileResponseOpen(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	hd := startHTTPDaemon(t, "http", zkc.ConnectString(), daemonOpts{}, "")
	ins := zktest.Client(t, zkc.ConnectString())
	const lock = "http/demo/job-1" // a name with "/", in Describe's path too

	holder := hd.stream(t, "/v1/locks:acquire", `{"lock":"`+lock+`","owner":"curl"}`)
	ev := holder.event()
	if ev.Result == nil || ev.Result.Queued == nil || ev.Result.Queued.Position != 0 || ev.Result.Queued.QueueLength != 1 {
		t.Fatalf("first line %+v, want queued at position 0 of 1", ev)
	}
	_, curlToken := holder.granted()

	waiter := hd.acquire("grpc", &zklockv1.AcquireRequest{Lock: lock, Owner: "grpc"})
	if q := waiter.queued(wait); q.GetPosition() != 1 {
		t.Fatalf("gRPC contender queued %v, want position 1 behind curl", q)
	}
	r := hd.describe(t, lock)
	if len(r.Holders) != 1 || r.Holders[0].Owner != "curl" || r.Holders[0].FencingToken != strconv.FormatInt(curlToken, 10) ||
		len(r.Waiters) != 1 || r.Waiters[0].Owner != "grpc" {
		t.Fatalf("describe %+v, want curl holding with token %d and grpc waiting", r, curlToken)
	}
	curlNode := path.Join("/zklock", lock, r.Holders[0].Node)
	if ok, _ := exists(t, ins, curlNode); !ok {
		t.Fatalf("curl's node %s does not exist", curlNode)
	}
	observer := hd.stream(t, "/v1/locks:observe", `{"lock":"`+lock+`"}`)
	var obs struct {
		Result struct {
			Holders     []httpContender `json:"holders"`
			QueueLength int             `json:"queueLength"`
		} `json:"result"`
	}
	if l := observer.next(); json.Unmarshal([]byte(l), &obs) != nil || len(obs.Result.Holders) != 1 || obs.Result.Holders[0].Owner != "curl" || obs.Result.QueueLength != 2 {
		t.Fatalf("observe's first line %q, want curl holding in a queue of 2", l)
	}

	// Killed, curl closes the connection: the lock is released.
	holder.cmd.Process.Kill()
	g, _ := waiter.granted(wait)
	if g.GetFencingToken() <= curlToken {
		t.Errorf("gRPC waiter granted with token %d, want more than curl's %d", g.GetFencingToken(), curlToken)
	}
	// The sidecar grants its own waiter before ZooKeeper confirms the
	// delete (a local handoff): the node goes soon after.
	zktest.Eventually(t, wait, "curl's node deleted", func() bool {
		ok, _ := exists(t, ins, curlNode)
		return !ok
	})
	if l := observer.next(); json.Unmarshal([]byte(l), &obs) != nil || len(obs.Result.Holders) != 1 || obs.Result.Holders[0].Owner != "grpc" {
		t.Errorf("observe's next line %q, want grpc holding", l)
	}
	if _, err := hd.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if c := zktest.Children(t, ins, path.Join("/zklock", lock)); len(c) != 0 {
		t.Errorf("nodes left after the release: %v", c)
	}
}

// TestHTTPDetachedLease: a detached lease taken with curl ends the answer
// after Granted; renew extends it, release ends it (twice is fine), and a
// lease left to expire answers 409 (ABORTED, LEASE_LOST) to renew.
func TestHTTPDetachedLease(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	hd := startHTTPDaemon(t, "http", zkc.ConnectString(), daemonOpts{}, "")
	ins := zktest.Client(t, zkc.ConnectString())
	const lock = "http/nightly-job"

	acq := hd.stream(t, "/v1/locks:acquire", `{"lock":"`+lock+`","detach":true,"ttl":"30s"}`)
	g, _ := acq.granted()
	acq.end()
	id, first := g.LeaseID, g.ExpiresAt
	if first == nil {
		t.Fatalf("granted %+v: a detached lease has an expiry", g)
	}
	if r := hd.describe(t, lock); len(r.Holders) != 1 {
		t.Fatalf("describe %+v after the detached acquire's answer ended, want one holder", r)
	}

	code, body := hd.post(t, "/v1/leases:renew", `{"leaseIds":["`+id+`"],"ttl":"60s"}`)
	var renewed struct {
		Leases []struct {
			LeaseID   string    `json:"leaseId"`
			ExpiresAt time.Time `json:"expiresAt"`
		} `json:"leases"`
	}
	if err := json.Unmarshal([]byte(body), &renewed); code != 200 || err != nil || len(renewed.Leases) != 1 ||
		renewed.Leases[0].LeaseID != id || !renewed.Leases[0].ExpiresAt.After(*first) {
		t.Fatalf("renew: %d %s (%v), want the lease expiring after %v", code, body, err, first)
	}
	for i := range 2 {
		if code, body := hd.post(t, "/v1/leases:release", `{"lease_id":"`+id+`"}`); code != 200 || strings.TrimSpace(body) != "{}" {
			t.Fatalf("release #%d: %d %s, want 200 {}", i+1, code, body)
		}
	}
	if r := hd.describe(t, lock); len(r.Holders)+len(r.Waiters) != 0 {
		t.Errorf("describe %+v after release, want no contender", r)
	}
	if c := zktest.Children(t, ins, path.Join("/zklock", lock)); len(c) != 0 {
		t.Errorf("nodes left after the release: %v", c)
	}
	code, body = hd.post(t, "/v1/leases:renew", `{"leaseIds":["`+id+`"]}`)
	wantHTTPStatus(t, "renew of a released lease", code, body, 404, codes.NotFound, "LEASE_NOT_FOUND", false)

	short := hd.stream(t, "/v1/locks:acquire", `{"lock":"`+lock+`","detach":true,"ttl":"1s"}`)
	sg, _ := short.granted()
	short.end()
	zktest.Eventually(t, wait, "the unrenewed lease expires", func() bool {
		return len(hd.describe(t, lock).Holders) == 0
	})
	code, body = hd.post(t, "/v1/leases:renew", `{"leaseIds":["`+sg.LeaseID+`"]}`)
	wantHTTPStatus(t, "renew of an expired lease", code, body, 409, codes.Aborted, "LEASE_LOST", false)
}

// TestHTTPBadInput: bad requests get the gRPC API's statuses mapped to
// HTTP, with the status (and its ErrorInfo reason) in the body, and change
// nothing in ZooKeeper; a try-once on a held lock, which fails after its
// Queued line, ends its 200 answer with an {"error": ...} line.
func TestHTTPBadInput(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	hd := startHTTPDaemon(t, "http", zkc.ConnectString(), daemonOpts{}, "")
	ins := zktest.Client(t, zkc.ConnectString())
	unknown := "0123456789abcdef0123456789abcdef"

	for _, tc := range []struct {
		what, route, body string
		http              int
		code              codes.Code
		reason            string
		stream            bool
	}{
		{"acquire of a bad lock name", "/v1/locks:acquire", `{"lock":"a/../../etc"}`, 400, codes.InvalidArgument, "INVALID_LOCK_NAME", true},
		{"acquire with a bad ttl", "/v1/locks:acquire", `{"lock":"http/x","detach":true,"ttl":"0s"}`, 400, codes.InvalidArgument, "INVALID_TTL", true},
		{"re-entry of an unknown lease", "/v1/locks:acquire", `{"lock":"http/x","reenter":"` + unknown + `"}`, 404, codes.NotFound, "LEASE_NOT_FOUND", true},
		{"acquire with a misspelt field", "/v1/locks:acquire", `{"lock":"http/x","detatch":true}`, 400, codes.InvalidArgument, "", false},
		{"acquire of malformed JSON", "/v1/locks:acquire", `{"lock":`, 400, codes.InvalidArgument, "", false},
		{"renew of an unknown lease", "/v1/leases:renew", `{"lease_ids":["` + unknown + `"]}`, 404, codes.NotFound, "LEASE_NOT_FOUND", false},
		{"renew of no lease", "/v1/leases:renew", `{}`, 400, codes.InvalidArgument, "INVALID_LEASE_ID", false},
		{"release of an unknown lease", "/v1/leases:release", `{"lease_id":"` + unknown + `"}`, 404, codes.NotFound, "LEASE_NOT_FOUND", false},
		{"release of a bad lease id", "/v1/leases:release", `{"lease_id":"../etc"}`, 400, codes.InvalidArgument, "INVALID_LEASE_ID", false},
	} {
		code, body := hd.post(t, tc.route, tc.body)
		wantHTTPStatus(t, tc.what, code, body, tc.http, tc.code, tc.reason, tc.stream)
	}
	// curl would resolve the ".." itself.
	code, body := hd.curlRun(t, "--path-as-is", hd.base+"/v1/locks/a/../../etc")
	wantHTTPStatus(t, "describe of a bad lock name", code, body, 400, codes.InvalidArgument, "INVALID_LOCK_NAME", false)
	if c := zktest.Children(t, ins, "/zklock"); len(c) != 0 {
		t.Errorf("bad requests left nodes under /zklock: %v", c)
	}

	// A try-once on a held lock: 200, Queued, then the error line.
	held := hd.acquire("holder", &zklockv1.AcquireRequest{Lock: "http/held"})
	held.granted(wait)
	before := zktest.Children(t, ins, "/zklock/http/held")
	try := hd.stream(t, "/v1/locks:acquire", `{"lock":"http/held","wait":"0s"}`)
	if ev := try.event(); ev.Result == nil || ev.Result.Queued == nil {
		t.Fatalf("try-once: first line %+v, want queued", ev)
	}
	ev := try.event()
	if ev.Error == nil || ev.Error.Code != codes.DeadlineExceeded || ev.Error.reason() != "LOCK_HELD" {
		t.Errorf("try-once: line %+v, want an error line with DEADLINE_EXCEEDED, LOCK_HELD", ev)
	}
	try.end()
	if after := zktest.Children(t, ins, "/zklock/http/held"); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("the failed try-once changed the lock's nodes: %v, then %v", before, after)
	}
}

// TestHTTPUnixSocket: --http-listen unix:///path serves on a socket of
// --socket-mode, which curl --unix-socket reaches.
func TestHTTPUnixSocket(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	sock := filepath.Join(t.TempDir(), "http.sock")
	hd := startHTTPDaemon(t, "http-unix", zkc.ConnectString(), daemonOpts{args: []string{"--socket-mode", "0600"}}, sock)
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %s: %v, %v; want a socket with mode 0600", sock, fi, err)
	}
	httpLockOnce(t, hd, "http/over/unix")
}

// TestHTTPMutualTLS: with --tls-cert, --tls-key and --tls-client-ca the
// HTTP listener speaks TLS and wants a client certificate, as the gRPC one.
func TestHTTPMutualTLS(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	dir := t.TempDir()
	ca := testpki.NewCA(t, "zklock test CA")
	cert, key := ca.Server(t, "127.0.0.1").WriteFiles(t, dir, "server")
	clientCA := testpki.NewCA(t, "zklock clients CA")
	hd := startHTTPDaemon(t, "http-mtls", zkc.ConnectString(), daemonOpts{
		args:  []string{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", clientCA.WriteFile(t, dir, "clients.crt")},
		creds: tlsCreds(ca, clientCA.Client(t, "app-1"), nil),
	}, "")
	hd.base = strings.Replace(hd.base, "http://", "https://", 1)
	clientCert, clientKey := clientCA.Client(t, "curl").WriteFiles(t, dir, "curl")
	caFile := ca.WriteFile(t, dir, "ca.crt")

	hd.curl = []string{"--cacert", caFile}
	if err := exec.Command("curl", "-sS", "--cacert", caFile, hd.base+"/v1/locks/http/tls").Run(); err == nil {
		t.Errorf("curl without a client certificate was served")
	}
	plain := strings.Replace(hd.base, "https://", "http://", 1) + "/v1/locks/http/tls"
	if out, err := exec.Command("curl", "-sS", "--fail", plain).CombinedOutput(); err == nil {
		t.Errorf("plaintext curl was served: %s", out)
	}
	hd.curl = []string{"--cacert", caFile, "--cert", clientCert, "--key", clientKey}
	httpLockOnce(t, hd, "http/tls")
}

// httpLockOnce takes a detached lease on lock with curl, sees it in
// Describe, and releases it.
func httpLockOnce(t *testing.T, hd *httpDaemon, lock string) {
	t.Helper()
	acq := hd.stream(t, "/v1/locks:acquire", fmt.Sprintf(`{"lock":%q,"detach":true}`, lock))
	g, _ := acq.granted()
	acq.end()
	if r := hd.describe(t, lock); len(r.Holders) != 1 {
		t.Fatalf("describe %+v, want one holder", r)
	}
	if code, body := hd.post(t, "/v1/leases:release", fmt.Sprintf(`{"leaseId":%q}`, g.LeaseID)); code != 200 {
		t.Fatalf("release: %d %s", code, body)
	}
	if r := hd.describe(t, lock); len(r.Holders) != 0 {
		t.Fatalf("describe %+v after release, want no holder", r)
	}
}
