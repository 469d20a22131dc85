package sidecar

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	zklockv1gw "github.com/zklock/zklock/internal/gateway/zklock/v1"
)

// gateway is ServeGateway's HTTP/JSON server: grpc-gateway's handlers,
// calling a gRPC server of the same Service, with the same limits and
// interceptors as the lock server, over an in-process connection.
type gateway struct {
	http   *http.Server
	grpc   *grpc.Server // the lock server's twin, without credentials, on lis
	lis    *bufconn.Listener
	conn   *grpc.ClientConn // to lis
	served chan struct{}    // closed when grpc's Serve returned
	closed chan error       // http.Server.Shutdown's result, once begun
}

// inProcessBuffer is the in-process connection's buffer each way.
const inProcessBuffer = 1 << 20

// errServerStopped is ServeGateway's error once Shutdown has begun.
var errServerStopped = errors.New("sidecar: the server is shut down")

// ServeGateway serves the Service as HTTP/JSON on lis until Shutdown: the
// routes of api/zklock/v1/lock_http.yaml, made by grpc-gateway. Each
// request is a call to the Service over an in-process gRPC connection, so
// it meets the same validation, limits, interceptors (metrics, call logs)
// and statuses as a call over Serve's listener; ServerOptions.Creds do not
// apply to it (GatewayTLS secures lis instead).
//
// JSON is proto3's mapping: fields named in lowerCamelCase in responses
// (either form in requests), unpopulated fields included, int64 fields
// (fencing tokens) as strings, durations as "1.5s"; unknown fields are
// refused. Streaming calls (Acquire, Observe) answer newline-delimited JSON,
// one {"result": message} per message, flushed as it comes; a status that
// ends the call after the first message is an {"error": status} line. The
// call lives as long as the request: closing the connection cancels it, and
// so releases a lease bound to its stream.
//
// ServeGateway returns nil once Shutdown stopped it. Call it at most once.
func (s *Server) ServeGateway(lis net.Listener) error {
	gw, err := s.startGateway()
	if err != nil {
		return err
	}
	if s.opts.GatewayTLS != nil {
		err = gw.http.ServeTLS(lis, "", "")
	} else {
		err = gw.http.Serve(lis)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) startGateway() (*gateway, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil, errServerStopped
	}
	if s.gw != nil {
		return nil, errors.New("sidecar: ServeGateway called twice")
	}
	lis := bufconn.Listen(inProcessBuffer)
	conn, err := grpc.NewClient("passthrough:///zklockd-in-process",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// The server's limit on responses (none) is the only one.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	)
	if err != nil {
		lis.Close()
		return nil, err
	}
	mux := runtime.NewServeMux(
		// Replaces any value a client sends under the same key.
		runtime.WithMetadata(func(_ context.Context, r *http.Request) metadata.MD {
			return metadata.Pairs(httpPeerKey, r.RemoteAddr)
		}),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true},
			// A misspelt field ("detatch", "wiat") must not be ignored.
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	if err := zklockv1gw.RegisterLockServiceHandler(context.Background(), mux, conn); err != nil {
		conn.Close()
		lis.Close()
		return nil, err
	}
	gw := &gateway{
		http: &http.Server{
			// A request's JSON is seldom much larger than its protobuf, which
			// the in-process server bounds by MaxMessageBytes; this bounds
			// what is read before it.
			Handler:           http.MaxBytesHandler(mux, 4*int64(s.opts.MaxMessageBytes)),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug),
		},
		grpc:   newLockServer(s.svc, s.opts, nil, httpPeerUnary, httpPeerStream),
		lis:    lis,
		conn:   conn,
		served: make(chan struct{}),
	}
	if s.opts.GatewayTLS != nil {
		gw.http.TLSConfig = s.opts.GatewayTLS.Clone()
	}
	go func() {
		defer close(gw.served)
		gw.grpc.Serve(lis) // returns nil once stopped
	}()
	s.gw = gw
	return gw, nil
}

// httpPeerKey is the metadata key under which the gateway tells the
// in-process server the HTTP client's address.
const httpPeerKey = "zklock-http-peer"

// httpPeer is an HTTP client's address, as the in-process server's calls
// see their peer (in the call logs, for one): "http:" and the client's
// host:port ("http:@" on a unix socket).
type httpPeer string

func (httpPeer) Network() string  { return "http" }
func (a httpPeer) String() string { return "http:" + string(a) }

// withHTTPPeer makes the HTTP client the peer of a call of the gateway.
func withHTTPPeer(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(httpPeerKey)
	if len(v) == 0 {
		return ctx
	}
	return peer.NewContext(ctx, &peer.Peer{Addr: httpPeer(v[len(v)-1])})
}

func httpPeerUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(withHTTPPeer(ctx), req)
}

func httpPeerStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &peerStream{ServerStream: ss, ctx: withHTTPPeer(ss.Context())})
}

// peerStream is a ServerStream with another context.
type peerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *peerStream) Context() context.Context { return s.ctx }

// closeListeners stops the gateway taking connections; the requests under
// way go on.
func (gw *gateway) closeListeners() {
	gw.closed = make(chan error, 1)
	go func() { gw.closed <- gw.http.Shutdown(context.Background()) }()
}

// shutdown stops the in-process gRPC server gracefully (hard once ctx
// ends), which ends the requests under way, then closes every HTTP
// connection. closeListeners was called before.
func (gw *gateway) shutdown(ctx context.Context) {
	stopped := make(chan struct{})
	go func() {
		gw.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		gw.grpc.Stop()
		<-stopped
	}
	<-gw.served
	// Every call has ended, and with it every handler but those still
	// writing to a slow client: give them what is left of ctx.
	select {
	case <-gw.closed:
	case <-ctx.Done():
		gw.http.Close()
		<-gw.closed // Shutdown returns once Close has dropped every connection
	}
	gw.conn.Close()
	gw.lis.Close()
}
