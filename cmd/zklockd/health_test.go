package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/syncbuf"
	"github.com/zklock/zklock/internal/testpki"
	"github.com/zklock/zklock/internal/zktest"
)

// listenOf returns the "listen" attribute of the first JSON log line whose
// msg is msg, or "" if there is none yet.
func listenOf(logs, msg string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct{ Msg, Listen string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == msg {
			return line.Listen
		}
	}
	return ""
}

// waitLogged waits for the log line msg and returns its listen address.
func waitLogged(t *testing.T, logs *syncbuf.Buffer, exited <-chan error, msg string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if addr := listenOf(logs.String(), msg); addr != "" {
			return addr
		}
		select {
		case err := <-exited:
			t.Fatalf("zklockd exited (%v) before logging %q:\n%s", err, msg, logs)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line after 10s:\n%s", msg, logs)
		}
	}
}

// checkHealth asks conn's grpc.health.v1 about service.
func checkHealth(conn *grpc.ClientConn, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	return r.GetStatus(), err
}

// waitHealth polls conn's health of service until it is want.
func waitHealth(t *testing.T, conn *grpc.ClientConn, service string, want healthpb.HealthCheckResponse_ServingStatus, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, err := checkHealth(conn, service)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health of %q on %s: %v, %v after %v; want %v", service, conn.Target(), got, err, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHealthListen runs zklockd with TLS on its lock listener and
// --health-listen beside it: the health port answers in plaintext, SERVING
// once the ZooKeeper session is usable, serves no LockService and no
// reflection, says NOT_SERVING while zklockd shuts down, and closes after
// the lock listener has stopped.
func TestHealthListen(t *testing.T) {
	d := startTLSDaemon(t, "--health-listen", "127.0.0.1:0")
	ca, logs, exited, sigterm := d.ca, d.logs, d.exited, d.sigterm
	healthAddr := waitLogged(t, logs, exited, "serving grpc.health.v1 alone, in plaintext")
	lockAddr := waitLogged(t, logs, exited, "zklockd serving")
	if !strings.Contains(logs.String(), `"health-listen":"127.0.0.1:0"`) {
		t.Errorf("the configuration line lacks health-listen:\n%s", logs)
	}

	hconn, err := grpc.NewClient("passthrough:///"+healthAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer hconn.Close()
	lconn, err := grpc.NewClient("passthrough:///"+lockAddr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	defer lconn.Close()

	for _, service := range []string{"", zklockv1.LockService_ServiceDesc.ServiceName} {
		waitHealth(t, hconn, service, healthpb.HealthCheckResponse_SERVING, 30*time.Second)
		if got, err := checkHealth(lconn, service); err != nil || got != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q on the TLS lock listener: %v, %v; want SERVING as on the health port", service, got, err)
		}
	}

	// Nothing but health on the health port.
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := zklockv1.NewLockServiceClient(hconn).Acquire(cctx, &zklockv1.AcquireRequest{Lock: "health-port", Owner: "test"})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("Acquire on the health port: %v, want Unimplemented", err)
	}
	_, err = zklockv1.NewLockServiceClient(hconn).Describe(cctx, &zklockv1.DescribeRequest{Lock: "health-port"})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("Describe on the health port: %v, want Unimplemented", err)
	}
	rs, err := reflectionpb.NewServerReflectionClient(hconn).ServerReflectionInfo(cctx)
	if err == nil {
		// Send says only io.EOF when the server ended the stream; Recv
		// gets its status.
		_ = rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
		_, err = rs.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("reflection on the health port: %v, want Unimplemented", err)
	}
	// The lock listener still serves locks, over TLS.
	if _, err := zklockv1.NewLockServiceClient(lconn).Describe(cctx, &zklockv1.DescribeRequest{Lock: "health-port"}); err != nil {
		t.Errorf("Describe on the lock listener: %v", err)
	}

	// A Watch on the lock listener keeps its graceful stop waiting (a
	// health Watch ends only when its client cancels it), so the shutdown
	// lasts until this test cancels it: meanwhile the health port must
	// answer NOT_SERVING.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	w, err := healthpb.NewHealthClient(lconn).Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch on the lock listener: %v, %v; want SERVING", r, err)
	}
	sigterm()
	waitHealth(t, hconn, "", healthpb.HealthCheckResponse_NOT_SERVING, 10*time.Second)
	select {
	case err := <-exited:
		t.Fatalf("zklockd exited (%v) while a stream on its lock listener was open", err)
	default:
	}
	wcancel()
	d.waitExit(t, "the last stream ended")
	if c, err := net.DialTimeout("tcp", healthAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("the health port %s still accepts connections after zklockd stopped", healthAddr)
	}
}

// TestHealthListenErrorIsAStartupError: a --health-listen address that
// cannot be bound stops zklockd before it connects to ZooKeeper, with a
// message naming the flag (set through its environment variable too).
func TestHealthListenErrorIsAStartupError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	wantStartupErrors(t, "--health-listen", "ZKLOCK_HEALTH_LISTEN", map[string]startupCase{
		"port in use":         {args: []string{"--health-listen", busy.Addr().String()}, want: "address already in use"},
		"port in use via env": {env: busy.Addr().String(), want: "address already in use"},
		"no port":             {args: []string{"--health-listen", "127.0.0.1"}, want: "missing port"},
		"unix socket":         {args: []string{"--health-listen", "unix:///tmp/health.sock"}, want: "TCP only"},
	})
}

// startupCase is a command line (and the value of a flag's environment
// variable) that zklockd must refuse at start, saying want.
type startupCase struct {
	args []string
	env  string
	want string
}

// wantStartupErrors runs zklockd with each case: it must stop before it
// connects to ZooKeeper, with an error naming flag and saying the case's
// want.
func wantStartupErrors(t *testing.T, flag, env string, cases map[string]startupCase) {
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(env, tc.env)
			}
			args := append([]string{"--listen", "127.0.0.1:0", "--zk", "127.0.0.1:1"}, tc.args...)
			err := run(args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), flag) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%q) = %v, want an error naming %s and saying %q", args, err, flag, tc.want)
			}
		})
	}
}

// tlsDaemon is zklockd run in-process (runUntil) against a standalone
// ZooKeeper, with TLS on its lock listener.
type tlsDaemon struct {
	ca      *testpki.CA // signed the server's certificate
	logs    *syncbuf.Buffer
	exited  chan error         // runUntil's result
	sigterm context.CancelFunc // what SIGTERM does
	stopped bool               // exited was read
}

// startTLSDaemon starts a tlsDaemon with flags added to its command line.
// When the test ends it stops it, unless waitExit saw it return, and logs
// its log if the test failed.
func startTLSDaemon(t *testing.T, flags ...string) *tlsDaemon {
	t.Helper()
	zkc := zktest.StartStandalone(t)
	ca := testpki.NewCA(t, "test CA")
	cert, key := ca.Server(t, "127.0.0.1").WriteFiles(t, t.TempDir(), "server")
	ctx, sigterm := context.WithCancel(context.Background())
	d := &tlsDaemon{ca: ca, logs: &syncbuf.Buffer{}, exited: make(chan error, 1), sigterm: sigterm}
	args := append([]string{"--zk", zkc.ConnectString(), "--listen", "127.0.0.1:0",
		"--tls-cert", cert, "--tls-key", key,
		"--session-timeout", "4s", "--shutdown-timeout", "20s", "--log-format", "json"}, flags...)
	go func() { d.exited <- runUntil(ctx, args, d.logs) }()
	t.Cleanup(func() {
		if !d.stopped {
			sigterm()
			select {
			case <-d.exited:
			case <-time.After(30 * time.Second): // or a test read it
			}
		}
		if t.Failed() {
			t.Logf("zklockd's log:\n%s", d.logs)
		}
	})
	return d
}

// waitExit waits at most 20 s for zklockd to return, after what (said in
// the failure), and fails the test if it returned an error.
func (d *tlsDaemon) waitExit(t *testing.T, after string) {
	t.Helper()
	select {
	case err := <-d.exited:
		d.stopped = true
		if err != nil {
			t.Fatalf("zklockd: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("zklockd still running 20s after %s", after)
	}
}
