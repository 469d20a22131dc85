package e2e

import (
	"context"
	"net"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zklock/zklock/internal/zktest"
)

// TestHealthListenBesideUnixSocket runs zklockd on a unix socket with
// --health-listen on a loopback port, as the Helm chart does for the
// kubelet's grpc probes: the port answers SERVING once the session is
// usable, NOT_SERVING once ZooKeeper is gone (as the socket's health
// service does), and closes at SIGTERM.
func TestHealthListenBesideUnixSocket(t *testing.T) {
	t.Parallel()
	zkc := zktest.StartStandalone(t)
	sock := filepath.Join(t.TempDir(), "zklockd.sock")
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{unixSocket: sock, sessionTimeout: 4 * time.Second,
		args: []string{"--health-listen", "127.0.0.1:0"}})

	// The port zklockd bound, from its log line (its output reaches d.out
	// through a pipe, behind its answers).
	re := regexp.MustCompile(`msg="serving grpc.health.v1 alone, in plaintext" listen=(\S+)`)
	var m []string
	zktest.Eventually(t, wait, "zklockd logs its health listener", func() bool {
		m = re.FindStringSubmatch(d.out.String())
		return m != nil
	})
	healthAddr := m[1]
	hconn, err := grpc.NewClient("passthrough:///"+healthAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer hconn.Close()

	waitHealth := func(want healthpb.HealthCheckResponse_ServingStatus, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got, err := checkHealth(hconn)
			if err == nil && got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("health port %s: %v, %v after %v; want %v", healthAddr, got, err, within, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got, err := checkHealth(d.conn); err != nil || got != want {
			t.Errorf("health on the unix socket: %v, %v; the health port says %v", got, err, want)
		}
	}
	waitHealth(healthpb.HealthCheckResponse_SERVING, wait)

	stopped := time.Now()
	zkc.Server(0).Stop()
	// The epoch ends 3 s (3/4 of the 4 s timeout) after the last contact.
	waitHealth(healthpb.HealthCheckResponse_NOT_SERVING, wait)
	t.Logf("NOT_SERVING %v after ZooKeeper stopped", time.Since(stopped).Round(time.Millisecond))

	d.signal(syscall.SIGTERM)
	if ps := d.waitExit(exitTimeout); ps.ExitCode() != 0 {
		t.Errorf("exited with %v after SIGTERM, want 0", ps)
	}
	if c, err := net.DialTimeout("tcp", healthAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("the health port %s still accepts connections after zklockd exited", healthAddr)
	}
}

// checkHealth asks conn's grpc.health.v1 about the server as a whole.
func checkHealth(conn *grpc.ClientConn) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return r.GetStatus(), err
}
