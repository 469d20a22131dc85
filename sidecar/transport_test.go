package sidecar

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
)

// TestRequestsLargerThanTheWindows: the lock server's flow-control windows
// are fixed, and a request up to MaxMessageBytes still arrives whole and is
// answered, also when it is larger than the connection's window: one larger
// than the stream's (2 MiB), one as large as allowed (4 MiB), on the same
// connection as a small one, one after the other and at once.
func TestRequestsLargerThanTheWindows(t *testing.T) {
	zkc := startZK(t)
	const maxBytes = 4 << 20
	a := startInstance(t, zkc.ConnectString(), instanceOpts{
		server: ServerOptions{MaxMessageBytes: maxBytes},
		dial:   []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(2 * maxBytes))},
	})
	a.waitUsable(t)
	client := a.client

	// The largest request accepted: its lock name fills MaxMessageBytes
	// less the message's framing (the field's tag and length, 5 bytes).
	largest := strings.Repeat("x", maxBytes-5)
	acquireName := func(name string) error {
		stream, err := client.Acquire(ctxT(t), &zklockv1.AcquireRequest{Lock: name})
		if err != nil {
			return err
		}
		_, err = stream.Recv()
		return err
	}
	for _, name := range []string{strings.Repeat("x", 2<<20), largest} {
		wantCode(t, acquireName(name), codes.InvalidArgument, "INVALID_LOCK_NAME")
	}
	wantCode(t, acquireName(largest+"x"), codes.ResourceExhausted, "")
	_, err := client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: strings.Repeat("0", 3<<20)})
	wantCode(t, err, codes.InvalidArgument, "INVALID_LEASE_ID")

	// Large requests and lock cycles side by side on the one connection.
	ctx := ctxT(t)
	cycle := func() error {
		stream, err := client.Acquire(ctx, &zklockv1.AcquireRequest{Lock: "windows"})
		if err != nil {
			return err
		}
		for {
			r, err := stream.Recv()
			if err != nil {
				return err
			}
			if g := r.GetGranted(); g != nil {
				_, err := client.Release(ctx, &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()})
				return err
			}
		}
	}
	large, cycles := make(chan error, 4), make(chan error, 4)
	for range 4 {
		go func() {
			stream, err := client.Acquire(ctx, &zklockv1.AcquireRequest{Lock: largest})
			if err == nil {
				_, err = stream.Recv()
			}
			large <- err
		}()
		go func() { cycles <- cycle() }()
	}
	for range 4 {
		wantCode(t, <-large, codes.InvalidArgument, "INVALID_LOCK_NAME")
		if err := <-cycles; err != nil {
			t.Fatalf("lock cycle: %v", err)
		}
	}
}

// TestCallsServedWithEveryWorkerBusy: with more Acquire streams held at once
// than the lock server has stream workers, each of them keeping its handler
// busy, further calls are still served, and each lease is released.
func TestCallsServedWithEveryWorkerBusy(t *testing.T) {
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	held := make([]*events, streamWorkers+8)
	for i := range held {
		held[i] = acquire(t, a.client, &zklockv1.AcquireRequest{Lock: fmt.Sprintf("busy/%d", i)})
	}
	ids := make([]string, len(held))
	for i, e := range held {
		ids[i] = e.granted(30 * time.Second).GetLeaseId()
	}
	for i, id := range ids {
		if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: id}); err != nil {
			t.Fatalf("Release of lease %d: %v", i, err)
		}
		if r := held[i].next(30 * time.Second); r.GetReleased() == nil {
			t.Fatalf("stream %d: %v, want Released", i, r)
		}
	}
}
