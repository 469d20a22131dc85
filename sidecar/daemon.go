package sidecar

import (
	"context"

	"github.com/zklock/zklock/zkrecipes"
)

// DaemonConfig is what Start puts together.
type DaemonConfig struct {
	Session zkrecipes.Config
	Service Config
	Server  ServerOptions
}

// Daemon is a zklockd: one ZooKeeper Session, the Service that takes locks
// on it, and the Server that serves the Service over gRPC. Start puts them
// together in that order and Shutdown takes them apart in the reverse; the
// caller serves the Server on its listeners.
type Daemon struct {
	Session *zkrecipes.Session
	Service *Service
	Server  *Server
}

// Start connects the Session and builds the Service and the Server on it.
// It returns at once: the Session becomes usable in the background
// (WaitUsable).
func Start(cfg DaemonConfig) (*Daemon, error) {
	sess, err := zkrecipes.Connect(cfg.Session)
	if err != nil {
		return nil, err
	}
	svc, err := New(sess, cfg.Service)
	if err != nil {
		sess.Close()
		return nil, err
	}
	return &Daemon{Session: sess, Service: svc, Server: NewServer(svc, cfg.Server)}, nil
}

// WaitUsable waits until the Session has a usable ZooKeeper session, or
// returns ctx's error.
func (d *Daemon) WaitUsable(ctx context.Context) error {
	_, err := d.Session.AwaitEpoch(ctx)
	return err
}

// Shutdown shuts the Server down (holders are told Lost{SHUTDOWN} and every
// lease's node is deleted, until ctx ends; see Server.Shutdown), then
// closes the Session. The Server's Serve calls have returned when it does.
func (d *Daemon) Shutdown(ctx context.Context) {
	d.Server.Shutdown(ctx)
	d.Session.Close()
}
