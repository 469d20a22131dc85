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

	srv      *sidecar.Server
	sess     *zkrecipes.Session
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
	sess, err := zkrecipes.Connect(zkrecipes.Config{Servers: strings.Split(zkAddr, ","), SessionTimeout: o.SessionTimeout, Logger: zktest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := sidecar.New(sess, sidecar.Config{Logger: zktest.Logger()})
	if err != nil {
		sess.Close()
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sess.Close()
		t.Fatal(err)
	}
	s := &Sidecar{Addr: lis.Addr().String(), srv: sidecar.NewServer(svc, sidecar.ServerOptions{Logger: zktest.Logger()}), sess: sess, served: make(chan error, 1)}
	go func() { s.served <- s.srv.Serve(lis) }()
	t.Cleanup(s.Stop)
	zktest.Eventually(t, 30*time.Second, "zklockd has a ZooKeeper session", func() bool {
		st, _ := sess.State()
		return st.Epoch != nil
	})
	return s
}

// Stop shuts the sidecar down as SIGTERM would: holders are told
// Lost{SHUTDOWN} and every lease is released. Later calls do nothing.
func (s *Sidecar) Stop() {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.srv.Shutdown(ctx)
		<-s.served
		s.sess.Close()
	})
}
