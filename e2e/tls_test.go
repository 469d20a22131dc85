package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/clients/go/zklock"
	"github.com/zklock/zklock/internal/testpki"
	"github.com/zklock/zklock/internal/zktest"
)

// tlsCreds returns client credentials that trust ca and, if cert is not
// nil, present it.
func tlsCreds(ca *testpki.CA, cert *testpki.Pair, mod func(*tls.Config)) credentials.TransportCredentials {
	c := &tls.Config{RootCAs: ca.Pool()}
	if cert != nil {
		c.Certificates = []tls.Certificate{cert.TLS}
	}
	if mod != nil {
		mod(c)
	}
	return credentials.NewTLS(c)
}

// probe dials d with creds and asks for its health; it returns the
// call's error.
func probe(t *testing.T, d *daemon, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+d.listen, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err == nil && r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health %v, want SERVING", r.GetStatus())
	}
	return err
}

// wantRefused checks that a probe with creds fails at the connection.
func wantRefused(t *testing.T, d *daemon, what string, creds credentials.TransportCredentials) {
	t.Helper()
	err := probe(t, d, creds)
	if status.Code(err) != codes.Unavailable {
		t.Errorf("%s: health check = %v, want UNAVAILABLE (connection refused)", what, err)
		return
	}
	t.Logf("%s: refused: %v", what, err)
}

// lockOnce takes and releases lock through d, checking the Granted and
// Released events.
func lockOnce(t *testing.T, d *daemon, lock string) {
	t.Helper()
	s := d.acquire(d.name, &zklockv1.AcquireRequest{Lock: lock})
	g, _ := s.granted(wait)
	if _, err := d.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()}); err != nil {
		t.Fatalf("%s: Release: %v", d.name, err)
	}
	if e := s.next(wait); e.GetReleased() == nil {
		t.Errorf("%s: event %v, want Released", d.name, e.AcquireResponse)
	}
}

// TestTLSServesOnlyTLS: with --tls-cert and --tls-key, a client that trusts
// the CA takes a lock and checks health over TLS 1.3 (1.2 is still
// accepted); plaintext, an untrusted server certificate and TLS 1.1 are
// refused.
func TestTLSServesOnlyTLS(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	dir := t.TempDir()
	ca := testpki.NewCA(t, "zklock test CA")
	cert, key := ca.Server(t, "127.0.0.1").WriteFiles(t, dir, "server")
	d := startDaemon(t, "tls", zkc.ConnectString(), daemonOpts{
		args:  []string{"--tls-cert", cert, "--tls-key", key},
		creds: tlsCreds(ca, nil, nil),
	}) // startDaemon waited for SERVING: health works over TLS

	lockOnce(t, d, "tls/demo")
	var p peer.Peer
	if _, err := d.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: "tls/demo"}, grpc.Peer(&p)); err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if info, ok := p.AuthInfo.(credentials.TLSInfo); !ok || info.State.Version != tls.VersionTLS13 {
		t.Errorf("connection security %v, want TLS 1.3", p.AuthInfo)
	}
	if err := probe(t, d, tlsCreds(ca, nil, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })); err != nil {
		t.Errorf("a TLS 1.2 client: %v, want it served", err)
	}

	wantRefused(t, d, "plaintext client", insecure.NewCredentials())
	wantRefused(t, d, "client trusting another CA", tlsCreds(testpki.NewCA(t, "other CA"), nil, nil))
	wantRefused(t, d, "TLS 1.1 client", tlsCreds(ca, nil, func(c *tls.Config) {
		c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	}))
	lockOnce(t, d, "tls/demo") // still serving
}

// TestTLSMutual: with --tls-client-ca, a client must present a certificate
// the CA signed: none, or one from another CA, is refused; a good one takes
// a lock and checks health.
func TestTLSMutual(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	dir := t.TempDir()
	ca := testpki.NewCA(t, "zklock test CA")
	cert, key := ca.Server(t, "127.0.0.1").WriteFiles(t, dir, "server")
	clientCA := testpki.NewCA(t, "zklock clients CA")
	d := startDaemon(t, "mtls", zkc.ConnectString(), daemonOpts{
		args:  []string{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", clientCA.WriteFile(t, dir, "clients.crt")},
		creds: tlsCreds(ca, clientCA.Client(t, "app-1"), nil),
	})

	lockOnce(t, d, "mtls/demo")
	if err := probe(t, d, tlsCreds(ca, clientCA.Client(t, "app-2"), nil)); err != nil {
		t.Errorf("a second client with a good certificate: %v", err)
	}

	// The Go client library: zklock.Dial's options override its plaintext.
	conn, err := zklock.Dial(d.listen, grpc.WithTransportCredentials(tlsCreds(ca, clientCA.Client(t, "app-go"), nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	lease, err := zklock.New(conn).Lock(ctxT(t), "mtls/go-client")
	if err != nil {
		t.Fatalf("zklock client over mTLS: %v", err)
	}
	if err := lease.Release(ctxT(t)); err != nil {
		t.Errorf("zklock client over mTLS: Release: %v", err)
	}

	wantRefused(t, d, "client without a certificate", tlsCreds(ca, nil, nil))
	wantRefused(t, d, "client with a certificate from another CA", tlsCreds(ca, testpki.NewCA(t, "rogue CA").Client(t, "app-1"), nil))
	wantRefused(t, d, "client with a certificate of the right CA for servers only", tlsCreds(ca, clientCA.Server(t, "app-3"), nil))
	wantRefused(t, d, "plaintext client", insecure.NewCredentials())
	lockOnce(t, d, "mtls/demo")
}

// TestUnixSocketMode: the socket file gets --socket-mode (0660 by default,
// ZKLOCK_SOCKET_MODE from the environment), and serves.
func TestUnixSocketMode(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		env  []string
		want os.FileMode
	}{
		{"default", nil, 0o660},
		{"owner-only", []string{"ZKLOCK_SOCKET_MODE=0600"}, 0o600},
	} {
		sock := filepath.Join(dir, tc.name+".sock")
		d := startDaemon(t, tc.name, zkc.ConnectString(), daemonOpts{unixSocket: sock, env: tc.env})
		fi, err := os.Lstat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tc.want {
			t.Errorf("%s: socket %s has mode %v, want a socket with %03o", tc.name, sock, fi.Mode(), tc.want)
		}
		lockOnce(t, d, "unix/"+tc.name)
	}
}

// TestACL: with --zk-auth-file, every node zklockd creates may be read by
// anyone but changed or deleted only by its identity; a zklockd of another
// identity, or of none, is refused with FAILED_PRECONDITION ZK_NOT_AUTHORIZED; locks still
// work after ZooKeeper restarts (a new connection, which must carry the
// credentials again); and the credentials never appear in the logs.
func TestACL(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	dir := t.TempDir()
	const password = "e2e-Secret-Pw"
	authFile := filepath.Join(dir, "zk-auth")
	if err := os.WriteFile(authFile, []byte("zklockd:"+password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{
		sessionTimeout: 20 * time.Second, // outlasts ZooKeeper's restart below
		args:           []string{"--zk-auth-file", authFile},
	})
	holder := a.acquire("holder", &zklockv1.AcquireRequest{Lock: "acl/demo", Owner: "holder"})
	holder.granted(wait)
	node, _ := holderNode(t, a, zktest.Client(t, zkc.ConnectString()), "acl/demo")

	anon := zktest.Client(t, zkc.ConnectString())
	if c := zktest.Children(t, anon, "/zklock/acl/demo"); len(c) != 1 || c[0] != path.Base(node) {
		t.Errorf("anonymous getChildren = %v, want [%s]", c, path.Base(node))
	}
	if _, _, err := anon.Get(node); err != nil {
		t.Errorf("anonymous getData(%s): %v", node, err)
	}
	for _, p := range []string{node, "/zklock/acl/demo", "/zklock/acl"} {
		if err := anon.Delete(p, -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Errorf("anonymous delete(%s) = %v, want ErrNoAuth", p, err)
		}
	}
	if _, err := anon.Create("/zklock/acl/demo/_c_x-lock-", nil, zk.FlagEphemeralSequential, zk.WorldACL(zk.PermAll)); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("anonymous create in the queue = %v, want ErrNoAuth", err)
	}

	// zklockds of another identity, or anonymous, cannot queue.
	otherAuth := filepath.Join(dir, "other-auth")
	if err := os.WriteFile(otherAuth, []byte("intruder:pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{"other": {"--zk-auth-file", otherAuth}, "anon": nil} {
		t.Run(name, func(t *testing.T) {
			o := startDaemon(t, name, zkc.ConnectString(), daemonOpts{args: args})
			s := o.acquire(name, &zklockv1.AcquireRequest{Lock: "acl/demo"})
			err := s.end(wait)
			wantStatus(t, err, codes.FailedPrecondition, "ZK_NOT_AUTHORIZED")
			if msg := status.Convert(err).Message(); !strings.Contains(msg, "identity") {
				t.Errorf("Acquire's message %q does not name the identity", msg)
			}
		})
	}
	if c := zktest.Children(t, anon, "/zklock/acl/demo"); len(c) != 1 {
		t.Errorf("queue after refused acquires: %v, want the holder's node only", c)
	}

	// ZooKeeper restarts: zklockd reconnects to its session and can still
	// create under /zklock/acl, which only its identity may.
	zkc.Server(0).Stop()
	zkc.Server(0).Start()
	if err := a.waitServing(startTimeout); err != nil {
		t.Fatalf("a after ZooKeeper restarted: %v", err)
	}
	lockOnce(t, a, "acl/after-restart")
	holder.cancel()

	// zklockd's output reaches a.out through a pipe, behind its answers.
	zktest.Eventually(t, wait, "a's logs show the credentials sent again after the restart", func() bool {
		return strings.Contains(a.out.String(), "re-submitting `1` credentials after reconnect")
	})
	out := a.out.String()
	if strings.Contains(out, password) {
		t.Errorf("a's logs show the password")
	}
	line := regexp.MustCompile(`(?m)^.*msg="zklockd configuration".*$`).FindString(out)
	if !strings.Contains(line, "zk-auth-file="+authFile) {
		t.Errorf("configuration line %q does not name the auth file", line)
	}
	t.Logf("configuration line: %s", line)
}
