package e2e

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	zklockv1 "github.com/zklock/zklock/clients/go/zklock/v1"
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
	// Nothing of the try-onces was left behind: a try-once now gets the
	// free lock.
	free := d.acquire("free", &zklockv1.AcquireRequest{Lock: "suspended/free", Wait: dur(0)})
	free.granted(wait)
}
