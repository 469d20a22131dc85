// Package sidecartest runs an in-process zklockd for the tests of its
// clients: a zkrecipes Session, a sidecar Service and its gRPC server on a
// loopback port, against a real ZooKeeper.
package sidecartest

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/zktest"
	"github.com/zklock/zklock/sidecar"
	"github.com/zklock/zklock/zkrecipes"
)

// Sidecar is a running in-process zklockd.
type Sidecar struct {
	// Addr is its gRPC address on loopback.
	Addr string

	d        *sidecar.Daemon
	served   chan error
	stopOnce sync.Once
}

// Options change how StartWith runs a zklockd.
type Options struct {
	// SessionTimeout is the ZooKeeper session timeout. Default 10 s.
	SessionTimeout time.Duration
}

// Start runs a zklockd against the ZooKeeper servers zkAddr
// (comma-separated) and returns once its session is usable. It is stopped
// when the test ends.
func Start(t testing.TB, zkAddr string) *Sidecar {
	t.Helper()
	return StartWith(t, zkAddr, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, zkAddr string, o Options) *Sidecar {
	t.Helper()
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 10 * time.Second
	}
	d, err := sidecar.Start(sidecar.DaemonConfig{
		Session: zkrecipes.Config{Servers: strings.Split(zkAddr, ","), SessionTimeout: o.SessionTimeout, Logger: zktest.Logger()},
		Service: sidecar.Config{Logger: zktest.Logger()},
		Server:  sidecar.ServerOptions{Logger: zktest.Logger()},
	})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.Shutdown(context.Background())
		t.Fatal(err)
	}
	s := &Sidecar{Addr: lis.Addr().String(), d: d, served: make(chan error, 1)}
	go func() { s.served <- d.Server.Serve(lis) }()
	t.Cleanup(s.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.WaitUsable(ctx); err != nil {
		t.Fatalf("zklockd has no ZooKeeper session: %v", err)
	}
	return s
}

// Stop shuts the sidecar down as SIGTERM would: holders are told
// Lost{SHUTDOWN} and every lease is released. Later calls do nothing.
func (s *Sidecar) Stop() {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.d.Shutdown(ctx)
		<-s.served
	})
}
