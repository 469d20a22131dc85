package sidecar

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// callLogger logs every finished call, at the level callLevel gives its
// code, with its method, code, duration and peer. When that level is not
// enabled it costs a clock reading and nothing else, so that successful
// calls, the hot path, are free at info.
type callLogger struct{ log *slog.Logger }

func (c callLogger) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	c.finished(ctx, info.FullMethod, start, err)
	return resp, err
}

func (c callLogger) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	c.finished(ss.Context(), info.FullMethod, start, err)
	return err
}

func (c callLogger) finished(ctx context.Context, method string, start time.Time, err error) {
	code := status.Code(err)
	level := callLevel(code)
	if !c.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("grpc.method", method),
		slog.String("grpc.code", code.String()),
		slog.Float64("grpc.time_ms", float64(time.Since(start).Microseconds())/1000),
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	if err != nil {
		attrs = append(attrs, slog.String("grpc.error", status.Convert(err).Message()))
	}
	c.log.LogAttrs(ctx, level, "finished call", attrs...)
}

// callLevel logs calls that failed on the server's side at warn, calls
// refused while ZooKeeper is out of reach or the sidecar stops at info, and
// the rest (the hot path among them) at debug.
func callLevel(c codes.Code) slog.Level {
	switch c {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		return slog.LevelWarn
	case codes.Unavailable:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
