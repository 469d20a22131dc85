package sidecar

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
	"github.com/zklock/zklock/zkrecipes"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// instance is one in-process zklockd: a Session, a Service and a gRPC
// server on a loopback port, with a client connected to it.
type instance struct {
	d      *Daemon
	sess   *zkrecipes.Session
	svc    *Service
	srv    *Server
	client zklockv1.LockServiceClient
	conn   *grpc.ClientConn
	served chan error
}

type instanceOpts struct {
	timeout time.Duration
	cfg     Config
	server  ServerOptions
	dial    []grpc.DialOption // more options for the client
}

func startInstance(t *testing.T, zkAddr string, o instanceOpts) *instance {
	t.Helper()
	if o.timeout == 0 {
		o.timeout = 6 * time.Second
	}
	o.cfg.Logger = zktest.Logger()
	o.server.Logger = zktest.Logger()
	d, err := Start(DaemonConfig{
		Session: zkrecipes.Config{Servers: strings.Split(zkAddr, ","), SessionTimeout: o.timeout, Logger: zktest.Logger()},
		Service: o.cfg,
		Server:  o.server,
	})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.Shutdown(context.Background())
		t.Fatal(err)
	}
	in := &instance{d: d, sess: d.Session, svc: d.Service, srv: d.Server, served: make(chan error, 1)}
	go func() { in.served <- in.srv.Serve(lis) }()
	in.conn, err = grpc.NewClient(lis.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, o.dial...)...)
	if err != nil {
		t.Fatal(err)
	}
	in.client = zklockv1.NewLockServiceClient(in.conn)
	t.Cleanup(func() { in.stop(t) })
	return in
}

// waitUsable waits until the instance's session is usable.
func (in *instance) waitUsable(t *testing.T) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		st, changed := in.sess.State()
		if st.Epoch != nil {
			return
		}
		select {
		case <-deadline:
			t.Fatal("no ZooKeeper session after 30s")
		case <-changed:
		}
	}
}

// stop shuts the instance down; it may be called more than once.
func (in *instance) stop(t *testing.T) {
	if in.served == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in.d.Shutdown(ctx)
	if err := <-in.served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	in.served = nil
	in.conn.Close()
}

// events reads an Acquire stream in the background.
type events struct {
	t      *testing.T
	cancel context.CancelFunc
	ch     chan *zklockv1.AcquireResponse
	err    chan error // the stream's final error (io.EOF when it ended cleanly)
}

func acquire(t *testing.T, c zklockv1.LockServiceClient, req *zklockv1.AcquireRequest) *events {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.Acquire(ctx, req)
	if err != nil {
		cancel()
		t.Fatalf("Acquire: %v", err)
	}
	ev := &events{t: t, cancel: cancel, ch: make(chan *zklockv1.AcquireResponse, 100), err: make(chan error, 1)}
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				ev.err <- err
				close(ev.ch)
				return
			}
			ev.ch <- r
		}
	}()
	t.Cleanup(func() {
		cancel()
		for range ev.ch {
		}
	})
	return ev
}

// next returns the next event, failing the test after d.
func (e *events) next(d time.Duration) *zklockv1.AcquireResponse {
	e.t.Helper()
	select {
	case r, ok := <-e.ch:
		if !ok {
			err := <-e.err
			e.err <- err
			e.t.Fatalf("stream ended: %v", err)
		}
		return r
	case <-time.After(d):
		e.t.Fatalf("no event after %v", d)
	}
	return nil
}

// none checks that no event arrives within d.
func (e *events) none(d time.Duration) {
	e.t.Helper()
	select {
	case r, ok := <-e.ch:
		if ok {
			e.t.Fatalf("unexpected event %v", r)
		}
	case <-time.After(d):
	}
}

// end waits for the stream to end and returns its status.
func (e *events) end(d time.Duration) error {
	e.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case r, ok := <-e.ch:
			if ok {
				e.t.Fatalf("event %v, want the stream to end", r)
			}
			err := <-e.err
			e.err <- err
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-timeout:
			e.t.Fatalf("stream still open after %v", d)
		}
	}
}

func (e *events) granted(d time.Duration) *zklockv1.Granted {
	e.t.Helper()
	for {
		r := e.next(d)
		if r.GetQueued() != nil {
			continue
		}
		g := r.GetGranted()
		if g == nil {
			e.t.Fatalf("event %v, want Granted", r)
		}
		return g
	}
}

func (e *events) queued(d time.Duration) *zklockv1.Queued {
	e.t.Helper()
	r := e.next(d)
	q := r.GetQueued()
	if q == nil {
		e.t.Fatalf("event %v, want Queued", r)
	}
	return q
}

// wantCode checks a status code and, if reason is set, its ErrorInfo reason.
func wantCode(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("status %v (%q), want %v", st.Code(), st.Message(), code)
	}
	if reason == "" {
		return
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if info.GetReason() != reason {
				t.Fatalf("reason %s, want %s", info.GetReason(), reason)
			}
			return
		}
	}
	t.Fatalf("no ErrorInfo in %v, want reason %s", st, reason)
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startZK(t *testing.T) *zktest.Cluster {
	t.Helper()
	return zktest.StartStandalone(t)
}

// startProxiedZK starts a standalone ZooKeeper and a proxy to it, closed
// when the test ends, for tests that stall or cut a sidecar's connection.
func startProxiedZK(t *testing.T) (*zktest.Cluster, *tcpproxy.Proxy) {
	t.Helper()
	zkc := startZK(t)
	p, err := tcpproxy.New(zkc.Servers()[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return zkc, p
}
