package sidecar

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/zkrecipes"
)

// errorDomain names zklock in the ErrorInfo details of its statuses.
const errorDomain = "zklock.io"

// statusError builds a status with an ErrorInfo detail carrying reason.
func statusError(c codes.Code, reason string, meta map[string]string, format string, args ...any) error {
	st := status.New(c, fmt.Sprintf(format, args...))
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: meta}); err == nil {
		st = d
	}
	return st.Err()
}

func invalid(reason string, err error) error {
	return statusError(codes.InvalidArgument, reason, nil, "%v", err)
}

// lostError is the status of a lease that was lost.
func lostError(t tombstone) error {
	return statusError(codes.Aborted, "LEASE_LOST", map[string]string{
		"lost_reason":   t.reason.String(),
		"fencing_token": strconv.FormatInt(t.token, 10),
	}, "lease was lost (%s): stop using the resource and acquire the lock again", t.reason)
}

// notFoundError is the status of a lease the sidecar does not hold; field
// names the request field (the id itself is secret).
func notFoundError(field string, released bool) error {
	if released {
		return statusError(codes.NotFound, "LEASE_NOT_FOUND", nil, "%s: lease was released", field)
	}
	return statusError(codes.NotFound, "LEASE_NOT_FOUND", nil,
		"%s: lease not known to this sidecar (never issued, or ended over the tombstone time ago)", field)
}

// acquireError maps an error of a wait in the queue to a status.
func acquireError(lock string, wait time.Duration, err error, streamCtx, waitCtx context.Context) error {
	meta := map[string]string{"lock": lock}
	var permits *zkrecipes.PermitsError
	switch {
	case errors.As(err, &permits):
		return statusError(codes.FailedPrecondition, "PERMITS_DIFFER", meta,
			"lock %q is %s, not %s: every contender of a name must ask for the same permits",
			lock, zkrecipes.PermitsKind(permits.Have), zkrecipes.PermitsKind(permits.Want))
	case errors.Is(err, zkrecipes.ErrHeld):
		return statusError(codes.DeadlineExceeded, "LOCK_HELD", meta, "lock %q is held by another (wait 0: tried once)", lock)
	case streamCtx.Err() != nil:
		if errors.Is(streamCtx.Err(), context.DeadlineExceeded) {
			return statusError(codes.DeadlineExceeded, "WAIT_EXPIRED", meta, "call deadline passed while waiting for lock %q", lock)
		}
		return status.Error(codes.Canceled, "acquire cancelled by the caller")
	case errors.Is(waitCtx.Err(), context.DeadlineExceeded):
		return statusError(codes.DeadlineExceeded, "WAIT_EXPIRED", meta, "lock %q still held after the wait of %v", lock, wait)
	case errors.Is(err, zkrecipes.ErrClosed):
		return statusError(codes.Unavailable, "SHUTTING_DOWN", nil, "sidecar is shutting down")
	case errors.Is(err, zkrecipes.ErrNoSession):
		return noSessionError()
	case errors.Is(err, zkrecipes.ErrSuspended):
		return suspendedError()
	case errors.Is(err, zkrecipes.ErrNotAuthorized):
		return statusError(codes.FailedPrecondition, "ZK_NOT_AUTHORIZED", meta,
			"ZooKeeper's ACL does not let this sidecar's identity queue on lock %q: its nodes belong to another identity (--zk-auth-file)", lock)
	case errors.Is(err, zkrecipes.ErrRefused):
		return refusedError(lock, err)
	}
	return status.Errorf(codes.Unavailable, "acquire %q: %v", lock, err)
}

// refusedError is the status of a request on lock that ZooKeeper refused
// for good: not to be retried as it is.
func refusedError(lock string, err error) error {
	return statusError(codes.FailedPrecondition, "ZK_REFUSED", map[string]string{"lock": lock},
		"ZooKeeper refused the request for lock %q (%v): retrying will not help", lock, err)
}

// suspendedError is the status of a call that cannot be served while
// contact with ZooKeeper is in doubt.
func suspendedError() error {
	return statusError(codes.Unavailable, "SUSPENDED", nil, "contact with ZooKeeper is in doubt: retry")
}

func noSessionError() error {
	return statusError(codes.Unavailable, "NO_SESSION", nil, "no ZooKeeper session: retry")
}

// lostReason maps a lease's end to the API's reason.
func (r endReason) proto() zklockv1.LostReason {
	switch r {
	case endExpired:
		return zklockv1.LostReason_LOST_REASON_LEASE_EXPIRED
	case endSessionLost:
		return zklockv1.LostReason_LOST_REASON_SESSION_EXPIRED
	case endShutdown:
		return zklockv1.LostReason_LOST_REASON_SHUTDOWN
	}
	return zklockv1.LostReason_LOST_REASON_UNSPECIFIED
}
