package sidecar

import (
	"fmt"
	"path"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/zkrecipes"
)

// holdShare counts the leases that hold one zkrecipes.Hold: the first lease
// and each that re-entered it, or one of its re-entries. The node is
// deleted when the last of them ends; until then a lease that ends only
// leaves the share.
type holdShare struct {
	mu   sync.Mutex
	live int // leases that have not left
}

// join adds a lease to the share. It reports false if every lease left
// already: the node is being deleted.
func (sh *holdShare) join() bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.live == 0 {
		return false
	}
	sh.live++
	return true
}

// leave takes l out of the share, once, and reports whether other leases
// still hold the node.
func (sh *holdShare) leave(l *lease) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !l.leftShare {
		l.leftShare = true
		sh.live--
	}
	return sh.live > 0
}

// leaveShare takes an ending lease out of its hold's share, if the hold was
// re-entered, and reports whether other leases still hold the node: then l
// must not delete it.
func (s *Service) leaveShare(l *lease) bool {
	l.mu.Lock()
	sh := l.share
	l.mu.Unlock()
	return sh != nil && sh.leave(l)
}

// reenter serves an Acquire that re-enters the lease args.reenter: a new
// lease on the same hold, granted at once with the same fencing token.
func (s *Service) reenter(req *zklockv1.AcquireRequest, args acquireArgs, stream zklockv1.LockService_AcquireServer, start time.Time) error {
	outer, err := s.liveLease(args.reenter, "reenter")
	if err != nil {
		return err
	}
	meta := map[string]string{"lock": args.lock}
	switch {
	case outer.lock != args.lock:
		return invalid("INVALID_REENTER", fmt.Errorf("reenter is a lease of lock %q, not of %q", outer.lock, args.lock))
	case args.modeSet && !args.shared && outer.kind.shared:
		return statusError(codes.FailedPrecondition, "REENTER_MODE", meta,
			"reenter is a shared lease of lock %q: it cannot be re-entered as MODE_EXCLUSIVE", args.lock)
	case args.permits != 0 && max(args.permits, 1) != outer.kind.permits:
		return statusError(codes.FailedPrecondition, "PERMITS_DIFFER", meta,
			"lock %q is %s, not %s: re-enter it with permits 0 or %d", args.lock, zkrecipes.PermitsKind(outer.kind.permits), zkrecipes.PermitsKind(args.permits), outer.kind.permits)
	}
	if err := s.admit(args.lock); err != nil {
		return err
	}

	// Join the hold's share while outer is held, so that its end, from
	// then on, leaves the node to the share. A first re-entry makes the
	// share, and takes back the stream end's release of the node
	// (ReleaseWhenDone): the share's last lease deletes it.
	outer.mu.Lock()
	sh := outer.share
	joined := outer.reason == endNone && !outer.releasing
	switch {
	case !joined:
	case sh == nil && outer.hold.KeepUntilReleased():
		sh = &holdShare{live: 2}
		outer.share = sh
	case sh == nil:
		joined = false // its stream ended, and the node's delete went
	default:
		joined = sh.join()
	}
	outer.mu.Unlock()
	if !joined {
		s.tab.unwait(args.lock, false)
		if err := s.check(outer, "reenter"); err != nil {
			return err
		}
		return notFoundError("reenter", true)
	}

	var bound = stream.Context()
	if req.GetDetach() {
		bound = nil
	}
	s.cfg.Metrics.Granted(time.Since(start))
	s.cfg.Metrics.Reentered()
	l, added := s.grantShared(outer.hold, args.lock, bound, args.ttl, outer.kind, sh)
	s.tab.unwait(args.lock, added)
	if !added {
		return statusError(codes.Unavailable, "SHUTTING_DOWN", nil, "sidecar is shutting down")
	}
	return s.sendGranted(stream, l)
}

// reentered returns, for each node (by name) of a hold of this sidecar
// that leases re-entered, how many leases beyond the first hold it.
func (s *Service) reentered() map[string]int32 {
	out := map[string]int32{}
	for _, l := range s.tab.all() {
		l.mu.Lock()
		sh := l.share
		l.mu.Unlock()
		if sh == nil {
			continue
		}
		sh.mu.Lock()
		n := sh.live
		sh.mu.Unlock()
		if n > 1 {
			out[path.Base(l.hold.Path())] = int32(n - 1)
		}
	}
	return out
}
