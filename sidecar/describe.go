package sidecar

import (
	"context"
	"errors"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/zkrecipes"
)

// Describe implements LockService.Describe.
func (s *Service) Describe(ctx context.Context, req *zklockv1.DescribeRequest) (*zklockv1.DescribeResponse, error) {
	if err := checkLockName(req.GetLock()); err != nil {
		return nil, invalid("INVALID_LOCK_NAME", err)
	}
	d, err := s.sess.Describe(ctx, s.lockPath(req.GetLock()))
	switch {
	case errors.Is(err, zkrecipes.ErrNoSession):
		return nil, noSessionError()
	case ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, zkrecipes.ErrRefused):
		return nil, refusedError(req.GetLock(), err)
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "describe %q: %v", req.GetLock(), err)
	}
	resp := &zklockv1.DescribeResponse{Permits: int32(d.Permits)}
	reentered := s.reentered()
	for _, c := range d.Contenders {
		pc := contenderProto(c)
		pc.Reentered = reentered[c.Node]
		if c.Holds {
			resp.Holders = append(resp.Holders, pc)
		} else {
			resp.Waiters = append(resp.Waiters, pc)
		}
	}
	return resp, nil
}

// contenderProto maps a contender as Describe and Observe show it. Its
// owner is its node's data if that is UTF-8 (a zklock sidecar stores the
// owner label there; other clients store what they like), else empty.
func contenderProto(c zkrecipes.Contender) *zklockv1.Contender {
	pc := &zklockv1.Contender{
		FencingToken: c.Token,
		CreateTime:   timestamppb.New(c.Created),
		Mode:         zklockv1.Mode_MODE_EXCLUSIVE,
		Node:         c.Node,
	}
	if utf8.Valid(c.Data) {
		pc.Owner = string(c.Data)
	}
	if c.Shared {
		pc.Mode = zklockv1.Mode_MODE_SHARED
	}
	return pc
}
