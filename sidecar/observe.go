package sidecar

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/zkrecipes"
)

// Observe implements LockService.Observe: the first message is the
// lock's present holders, then one comes each time the set of holders
// changes (zkrecipes.Session.Observe: the observers of a lock share one
// ZooKeeper watch). The stream ends with UNAVAILABLE when the sidecar
// loses its ZooKeeper session (NO_SESSION: observe again) or shuts down
// (SHUTTING_DOWN). Past MaxObservers open streams it answers
// RESOURCE_EXHAUSTED TOO_MANY_OBSERVERS.
func (s *Service) Observe(req *zklockv1.ObserveRequest, stream zklockv1.LockService_ObserveServer) error {
	lock := req.GetLock()
	if err := checkLockName(lock); err != nil {
		return invalid("INVALID_LOCK_NAME", err)
	}
	if s.isClosing() {
		return statusError(codes.Unavailable, "SHUTTING_DOWN", nil, "sidecar is shutting down")
	}
	if st, _ := s.sess.State(); st.Epoch == nil {
		return noSessionError()
	}
	if !s.admitObserver() {
		return statusError(codes.ResourceExhausted, "TOO_MANY_OBSERVERS", nil,
			"this sidecar already has %d Observe streams open (--max-observers)", s.cfg.MaxObservers)
	}
	defer s.leaveObserver()
	s.cfg.Metrics.ObserveStarted()
	defer s.cfg.Metrics.ObserveEnded()

	streamCtx := stream.Context()
	ctx, cancel := context.WithCancel(streamCtx)
	defer cancel()
	defer context.AfterFunc(s.stopCtx, cancel)()
	var sendErr error
	err := s.sess.Observe(ctx, s.lockPath(lock), func(h zkrecipes.Holders) error {
		resp := &zklockv1.ObserveResponse{
			Holders:     make([]*zklockv1.Contender, len(h.Contenders)),
			QueueLength: int32(h.QueueLength),
			Permits:     int32(h.Permits),
		}
		for i, c := range h.Contenders {
			resp.Holders[i] = contenderProto(c)
		}
		sendErr = stream.Send(resp)
		return sendErr
	})
	switch {
	case sendErr != nil:
		return sendErr
	case streamCtx.Err() != nil:
		return status.FromContextError(streamCtx.Err()).Err()
	case s.stopCtx.Err() != nil, errors.Is(err, zkrecipes.ErrClosed):
		return statusError(codes.Unavailable, "SHUTTING_DOWN", nil, "sidecar is shutting down")
	case errors.Is(err, zkrecipes.ErrNoSession):
		return noSessionError()
	case errors.Is(err, zkrecipes.ErrNotAuthorized):
		return statusError(codes.FailedPrecondition, "ZK_NOT_AUTHORIZED", map[string]string{"lock": lock},
			"ZooKeeper's ACL does not let this sidecar's identity read lock %q (--zk-auth-file)", lock)
	case errors.Is(err, zkrecipes.ErrRefused):
		return refusedError(lock, err)
	}
	return status.Errorf(codes.Unavailable, "observe %q: %v", lock, err)
}

// admitObserver counts an Observe stream unless MaxObservers are open.
func (s *Service) admitObserver() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.observers >= s.cfg.MaxObservers {
		return false
	}
	s.observers++
	return true
}

func (s *Service) leaveObserver() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observers--
}
