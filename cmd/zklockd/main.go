// Command zklockd is the zklock sidecar: it holds one ZooKeeper session and
// serves fair, fenced locks over gRPC to the applications beside it.
//
// Every flag may also be set by an environment variable: ZKLOCK_ and the
// flag's name in upper case with - as _ (--session-timeout is
// ZKLOCK_SESSION_TIMEOUT). A flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zklock/zklock/internal/metrics"
	"github.com/zklock/zklock/sidecar"
	"github.com/zklock/zklock/zkrecipes"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type options struct {
	zk              string
	listen          string
	httpListen      string
	metricsListen   string
	healthListen    string
	socketMode      string
	tlsCert         string
	tlsKey          string
	tlsClientCA     string
	zkAuthFile      string
	root            string
	sessionTimeout  time.Duration
	defaultTTL      time.Duration
	maxTTL          time.Duration
	maxWaiters      int
	maxLeases       int
	maxObservers    int
	maxMessageBytes int
	nodeLayout      string
	shutdownTimeout time.Duration
	logFormat       string
	logLevel        string
	showVersion     bool
	flags           *flag.FlagSet // the flags parsed, for logConfig
}

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "zklockd:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("zklockd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.zk, "zk", "127.0.0.1:2181", "ZooKeeper servers, host:port separated by commas")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:7878", "where to serve gRPC: host:port, or unix:///path/to/socket")
	fs.StringVar(&o.httpListen, "http-listen", "", "where to serve the lock API as HTTP/JSON (grpc-gateway): host:port, or unix:///path/to/socket (--socket-mode); under --tls-* like --listen; empty: not served")
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "where to serve Prometheus metrics over HTTP at /metrics, host:port (e.g. 127.0.0.1:9464); empty: not served")
	fs.StringVar(&o.healthListen, "health-listen", "", "where to serve grpc.health.v1 alone, in plaintext, host:port (e.g. 0.0.0.0:7879, for the kubelet's grpc probes); empty: not served")
	fs.StringVar(&o.socketMode, "socket-mode", "0660", "file mode of the unix sockets of --listen and --http-listen unix:///path, in octal")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve TLS with over TCP; needs --tls-key")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&o.tlsClientCA, "tls-client-ca", "", "PEM CA certificates: clients must present a certificate one of them signed (mTLS)")
	fs.StringVar(&o.zkAuthFile, "zk-auth-file", "", "file holding ZooKeeper digest credentials, user:password; nodes zklockd creates may then be changed by that identity only (world may read)")
	fs.StringVar(&o.root, "root", "/zklock", "ZooKeeper path under which locks live")
	fs.DurationVar(&o.sessionTimeout, "session-timeout", 10*time.Second, "ZooKeeper session timeout; holders are told Lost a quarter of it before it could expire")
	fs.DurationVar(&o.defaultTTL, "default-ttl", 15*time.Second, "ttl of a detached lease that asks for none")
	fs.DurationVar(&o.maxTTL, "max-ttl", time.Hour, "longest lease ttl accepted")
	fs.IntVar(&o.maxWaiters, "max-waiters-per-lock", 10000, "callers of this sidecar that may wait on one lock")
	fs.IntVar(&o.maxLeases, "max-leases", 100000, "acquires, waiting or granted, this sidecar takes at once")
	fs.IntVar(&o.maxObservers, "max-observers", 10000, "Observe streams this sidecar keeps open at once")
	fs.IntVar(&o.maxMessageBytes, "max-message-bytes", 64<<10, "largest request accepted, in bytes")
	fs.StringVar(&o.nodeLayout, "node-layout", "curator", "how queue nodes are named: curator (Curator's InterProcessMutex), curator-rw (its InterProcessReadWriteLock) or kazoo")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGTERM may take to release every lease")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" { // a command, not configuration: an image's ZKLOCK_VERSION must not trigger it
			return
		}
		env := "ZKLOCK_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !set[f.Name] && err == nil {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %w", env, v, e)
			}
		}
	})
	o.flags = fs
	return &o, err
}

func newLogger(o *options, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	ho := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
}

// run runs zklockd with the command line args until SIGTERM or SIGINT.
func run(args []string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runUntil(ctx, args, stderr)
}

// runUntil runs zklockd with the command line args until ctx ends, then
// shuts down: it releases every lease within --shutdown-timeout and stops
// the gRPC server and the HTTP/JSON gateway, then the health server, then
// the metrics server.
func runUntil(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.showVersion {
		fmt.Println("zklockd", version)
		return nil
	}
	log, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	logConfig(log, o.flags)
	if o.sessionTimeout <= 0 {
		return fmt.Errorf("--session-timeout %v: must be positive", o.sessionTimeout)
	}
	layout, ok := zkrecipes.ParseLayout(o.nodeLayout)
	if !ok {
		return fmt.Errorf("--node-layout %q: want curator, curator-rw or kazoo", o.nodeLayout)
	}
	if err := sidecar.CheckRoot(o.root); err != nil {
		return fmt.Errorf("--root: %w", err)
	}
	sec, err := loadSecurity(o)
	if err != nil {
		return err
	}
	lis, err := listen("--listen", o.listen, sec.socketMode, 0)
	if err != nil {
		return err
	}
	defer lis.Close()
	var glis net.Listener
	if o.httpListen != "" {
		if glis, err = listen("--http-listen", o.httpListen, sec.socketMode, httpUnacked); err != nil {
			return err
		}
		defer glis.Close()
	}
	var mlis net.Listener
	if o.metricsListen != "" {
		if mlis, err = net.Listen("tcp", o.metricsListen); err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		defer mlis.Close()
	}
	var hlis net.Listener
	if o.healthListen != "" {
		if hlis, err = listenHealth(o.healthListen); err != nil {
			return err
		}
		defer hlis.Close()
	}
	mx := metrics.New()

	d, err := sidecar.Start(sidecar.DaemonConfig{
		Session: zkrecipes.Config{
			Servers:        strings.Split(o.zk, ","),
			SessionTimeout: o.sessionTimeout,
			Layout:         layout,
			Observer:       mx,
			Auth:           sec.zkAuth,
			Logger:         log,
		},
		Service: sidecar.Config{
			Root:              o.root,
			DefaultTTL:        o.defaultTTL,
			MaxTTL:            o.maxTTL,
			MaxWaitersPerLock: o.maxWaiters,
			MaxLeases:         o.maxLeases,
			MaxObservers:      o.maxObservers,
			Logger:            log,
			Metrics:           mx,
		},
		Server: sidecar.ServerOptions{MaxMessageBytes: o.maxMessageBytes, Logger: log,
			UnaryInterceptors: mx.UnaryInterceptors(), StreamInterceptors: mx.StreamInterceptors(),
			Creds: sec.creds, GatewayTLS: sec.tls},
	})
	if err != nil {
		return err
	}
	mx.FollowSession(d.Session)
	srv := d.Server

	// Each gRPC server's goroutine sends its end here: nil once Shutdown
	// stopped it, an error if it failed before.
	served := make(chan error, 3)
	servers := 1
	go func() { served <- wrapErr("serve", srv.Serve(lis)) }()
	if glis != nil {
		servers++
		go func() { served <- wrapErr("serve http", srv.ServeGateway(glis)) }()
		log.Info("serving the lock API as HTTP/JSON", "listen", glis.Addr().String(), "tls", sec.tls != nil)
	}
	if hlis != nil {
		servers++
		go func() { served <- wrapErr("serve health", srv.ServeHealth(hlis)) }()
		log.Info("serving grpc.health.v1 alone, in plaintext", "listen", hlis.Addr().String())
	}
	if mlis != nil {
		// Stopped when runUntil returns, after the gRPC servers.
		msrv := mx.Serve(mlis, log)
		defer msrv.Stop()
		log.Info("serving metrics", "listen", mlis.Addr().String(), "path", "/metrics")
	}
	log.Info("zklockd serving", "version", version, "listen", lis.Addr().String(), "zk", o.zk,
		"root", o.root, "session_timeout", o.sessionTimeout, "node_layout", layout.String())

	var failed error
	select {
	case <-ctx.Done():
		log.Info("shutting down: releasing every lease", "timeout", o.shutdownTimeout)
	case failed = <-served:
		// Serve returns nil only after Shutdown: this is an error.
		servers--
		log.Error("shutting down: releasing every lease", "err", failed, "timeout", o.shutdownTimeout)
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	d.Shutdown(sctx) // the main server, the health server, then the session
	for ; servers > 0; servers-- {
		<-served // nil, or ErrServerStopped if Shutdown came before Serve
	}
	if failed != nil {
		return failed
	}
	log.Info("stopped")
	return nil
}

// wrapErr prefixes a non-nil err with what failed.
func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// listenHealth listens on --health-listen's host:port, over TCP only: the
// health listener is there for network probes.
func listenHealth(addr string) (net.Listener, error) {
	if strings.HasPrefix(addr, "unix://") {
		return nil, fmt.Errorf("--health-listen %q: want host:port; the health listener is TCP only", addr)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--health-listen: %w", err)
	}
	return lis, nil
}

// httpUnacked is how long the HTTP listener's connections may leave data
// unacknowledged before the kernel drops them (TCP_USER_TIMEOUT).
const httpUnacked = 20 * time.Second

// listen listens on host:port, or on a unix socket with mode socketMode
// for unix:///path (see listenUnix); its errors name flag.
//
// TCP connections are probed after 10 s idle, every 5 s, and closed after
// 2 unanswered probes, and, with lost > 0 (on Linux), closed once data sent
// stays unacknowledged for lost: an HTTP client whose host died or was cut
// off then loses its connection, and so its stream-bound leases, within
// about 20 s, as a gRPC client that stops answering keepalive pings does
// within 15 s.
func listen(flag, addr string, socketMode os.FileMode, lost time.Duration) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok {
		lc := net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 2}}
		if lost > 0 {
			lc.Control = userTimeout(lost)
		}
		lis, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		return lis, nil
	}
	return listenUnix(flag, path, socketMode)
}
