package sidecar

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
)

// ServerOptions configures a Server. Zero fields take their defaults.
type ServerOptions struct {
	// MaxMessageBytes bounds a request's size. Default 64 KiB.
	MaxMessageBytes int
	// KeepaliveTime is how long a connection may be idle before the server
	// pings the client to check it is alive; a client that does not answer
	// within KeepaliveTimeout loses its connection, and so its stream-bound
	// leases. Defaults 10 s and 5 s.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// Logger receives the call logs: internal failures at warn, UNAVAILABLE
	// at info, others at debug.
	// Default slog.Default().
	Logger *slog.Logger
	// UnaryInterceptors and StreamInterceptors run on every call before
	// the logging and recovery interceptors, outermost first (metrics, for
	// one, which then see the status a recovered panic was turned into).
	UnaryInterceptors  []grpc.UnaryServerInterceptor
	StreamInterceptors []grpc.StreamServerInterceptor
	// Creds secures connections, TLS for instance (credentials.NewTLS);
	// health and reflection are served under them too (ServeHealth's
	// listener excepted: plaintext always). Default none: plaintext.
	Creds credentials.TransportCredentials
	// GatewayTLS secures ServeGateway's HTTP connections. Default none:
	// plaintext.
	GatewayTLS *tls.Config
}

// Server serves a Service over gRPC, with grpc.health.v1 (SERVING while the
// ZooKeeper session is usable) and server reflection beside it. It may also
// serve grpc.health.v1 alone on a second listener (ServeHealth), and the
// Service as HTTP/JSON on a third (ServeGateway).
type Server struct {
	grpc       *grpc.Server
	healthOnly *grpc.Server // grpc.health.v1 alone, in plaintext: ServeHealth
	svc        *Service
	health     *health.Server // the one health state, registered on both
	opts       ServerOptions  // with the defaults filled in
	done       chan struct{}  // closed to stop following the session
	wait       chan struct{}  // closed when following stopped

	mu       sync.Mutex
	gw       *gateway // started by ServeGateway
	stopping bool     // Shutdown has begun: ServeGateway starts nothing
}

// NewServer returns a Server for svc.
func NewServer(svc *Service, opts ServerOptions) *Server {
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = 64 << 10
	}
	if opts.KeepaliveTime == 0 {
		opts.KeepaliveTime = 10 * time.Second
	}
	if opts.KeepaliveTimeout == 0 {
		opts.KeepaliveTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := newLockServer(svc, opts, opts.Creds, nil, nil)
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, h)
	reflection.Register(g)
	// No interceptors: probes every few seconds need neither call logs nor
	// call metrics, and health.Server does not panic. No credentials: the
	// kubelet's grpc probe speaks plaintext only.
	ho := grpc.NewServer(
		grpc.MaxRecvMsgSize(opts.MaxMessageBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: opts.KeepaliveTime, Timeout: opts.KeepaliveTimeout}),
	)
	healthpb.RegisterHealthServer(ho, h)
	s := &Server{grpc: g, healthOnly: ho, svc: svc, health: h, opts: opts, done: make(chan struct{}), wait: make(chan struct{})}
	go s.followSession()
	return s
}

// newLockServer returns a gRPC server of svc's LockService under creds
// (plaintext if nil), with opts' limits and interceptors, after first (if
// not nil), the outermost.
func newLockServer(svc *Service, opts ServerOptions, creds credentials.TransportCredentials,
	firstUnary grpc.UnaryServerInterceptor, firstStream grpc.StreamServerInterceptor) *grpc.Server {
	unary, stream := slices.Clip(opts.UnaryInterceptors), slices.Clip(opts.StreamInterceptors)
	if firstUnary != nil {
		unary = append([]grpc.UnaryServerInterceptor{firstUnary}, unary...)
		stream = append([]grpc.StreamServerInterceptor{firstStream}, stream...)
	}
	calls := callLogger{opts.Logger}
	recoverOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		opts.Logger.ErrorContext(ctx, "panic in handler", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})}
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(opts.MaxMessageBytes),
		// Fixed flow-control windows: with the default dynamic ones, every
		// request's data frame made the server send a window update and a
		// BDP ping, which the client answered with a write of its own, to
		// size windows for bulk transfers that requests of a few hundred
		// bytes never need.
		grpc.StaticStreamWindowSize(streamWindow(opts.MaxMessageBytes)),
		grpc.StaticConnWindowSize(connWindow),
		grpc.NumStreamWorkers(streamWorkers),
		credsOption(creds),
		// Invalid UTF-8 in a request's string reaches the validation, which
		// names the field, instead of failing the decode with INTERNAL.
		grpc.ForceServerCodecV2(newRequestCodec()),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// No MaxConnectionAge: its GOAWAY would end Acquire streams, and so
		// their leases, as if the app had died.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: opts.KeepaliveTime, Timeout: opts.KeepaliveTimeout}),
		grpc.ChainUnaryInterceptor(append(unary,
			calls.unary,
			recovery.UnaryServerInterceptor(recoverOpts...),
		)...),
		grpc.ChainStreamInterceptor(append(stream,
			calls.stream,
			recovery.StreamServerInterceptor(recoverOpts...),
		)...),
	)
	zklockv1.RegisterLockServiceServer(g, svc)
	return g
}

// followSession keeps the health status in step with the ZooKeeper session.
func (s *Server) followSession() {
	defer close(s.wait)
	for {
		st, changed := s.svc.sess.State()
		hs := healthpb.HealthCheckResponse_NOT_SERVING
		if st.Epoch != nil {
			hs = healthpb.HealthCheckResponse_SERVING
		}
		s.health.SetServingStatus("", hs)
		s.health.SetServingStatus(zklockv1.LockService_ServiceDesc.ServiceName, hs)
		select {
		case <-s.done:
			return
		case <-changed:
		}
	}
}

// Serve serves on lis until Shutdown.
func (s *Server) Serve(lis net.Listener) error { return s.grpc.Serve(lis) }

// ServeHealth serves grpc.health.v1, and nothing else, on lis until
// Shutdown. It answers exactly what Serve's health service answers (the two
// share one health.Server: SERVING while the session is usable, NOT_SERVING
// otherwise and from the start of Shutdown), in plaintext whatever
// ServerOptions.Creds says. It is for probes that cannot reach the lock
// listener, such as the kubelet's grpc probe, which dials the pod IP in
// plaintext while the locks stay on loopback, a unix socket or TLS. Call it
// at most once.
func (s *Server) ServeHealth(lis net.Listener) error { return s.healthOnly.Serve(lis) }

// Shutdown reports NOT_SERVING, stops taking HTTP connections and
// acquires, releases every lease (holders get Lost{SHUTDOWN}), then stops
// the gRPC server and the gateway gracefully; once ctx ends it stops them
// hard. Last it stops ServeHealth's server, which answers NOT_SERVING until
// then. The caller closes the Session after.
func (s *Server) Shutdown(ctx context.Context) {
	close(s.done)
	<-s.wait
	s.health.Shutdown()
	s.mu.Lock()
	s.stopping = true
	gw := s.gw
	s.mu.Unlock()
	if gw != nil {
		gw.closeListeners()
	}
	s.svc.Shutdown(ctx)
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	if gw != nil {
		gw.shutdown(ctx)
	}
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
		<-stopped
	}
	// Hard: its only streams are health Watches, which health.Shutdown has
	// told NOT_SERVING.
	s.healthOnly.Stop()
}
