package sidecar

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/tcpproxy"
)

// healthOf asks conn's grpc.health.v1 about the server as a whole.
func healthOf(conn *grpc.ClientConn) (healthpb.HealthCheckResponse_ServingStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return r.GetStatus(), err
}

// TestServeHealthFollowsTheSession: ServeHealth's listener answers what the
// lock listener's health service answers as the session comes, goes (its
// ZooKeeper connection stalled past the epoch's end) and comes back, and
// it serves no LockService.
func TestServeHealthFollowsTheSession(t *testing.T) {
	_, p := startProxiedZK(t)
	a := startInstance(t, p.Addr(), instanceOpts{timeout: 4 * time.Second})
	hlis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hserved := make(chan error, 1)
	go func() { hserved <- a.srv.ServeHealth(hlis) }()
	hconn, err := grpc.NewClient(hlis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer hconn.Close()

	// settle waits until the health port says want, then checks the lock
	// listener says the same.
	settle := func(want healthpb.HealthCheckResponse_ServingStatus, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got, err := healthOf(hconn)
			if err == nil && got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("health port: %v, %v after %v; want %v", got, err, within, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got, err := healthOf(a.conn); err != nil || got != want {
			t.Errorf("lock listener: %v, %v; the health port says %v", got, err, want)
		}
	}
	settle(healthpb.HealthCheckResponse_SERVING, 30*time.Second)

	_, err = zklockv1.NewLockServiceClient(hconn).Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: "x"})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("Describe on the health port: %v, want Unimplemented", err)
	}

	p.SetMode(tcpproxy.Stall) // the epoch ends 3 s (3/4 of the timeout) after the last contact
	settle(healthpb.HealthCheckResponse_NOT_SERVING, 10*time.Second)
	p.SetMode(tcpproxy.Pass)
	settle(healthpb.HealthCheckResponse_SERVING, 20*time.Second)

	a.stop(t)
	if err := <-hserved; err != nil {
		t.Errorf("ServeHealth after Shutdown: %v, want nil", err)
	}
	if got, err := healthOf(hconn); status.Code(err) != codes.Unavailable {
		t.Errorf("health port after Shutdown: %v, %v; want Unavailable (closed)", got, err)
	}
}
