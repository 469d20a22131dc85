package sidecar

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/zklock/zklock/zkrecipes"
)

// A lease's life. Every way a lease ends is one transition below, in this
// file; the RPC handlers ask for them and report what they answer.
//
//	held ── Release claims it ──▶ releasing ── delete confirmed ──▶ ended: released
//	 │                              └── its epoch ended first ──▶ ended: session expired
//	 ├── its stream ended, or Granted could not be sent ──▶ ended: released
//	 ├── its ttl passed (detached leases) ──▶ ended: lease expired
//	 ├── its epoch ended ──▶ ended: session expired
//	 └── the sidecar shuts down ──▶ ended: shutdown
//
// An ended lease's node is deleted, and the lease moves to the tombstones
// once ZooKeeper confirmed the delete or the lease's epoch ended (drop).

// endReason says how a lease ended.
type endReason int

const (
	endNone        endReason = iota
	endReleased              // by Release, or by its stream closing
	endExpired               // its ttl passed without a Renew
	endSessionLost           // its ZooKeeper epoch ended
	endShutdown              // the sidecar is shutting down
)

func (r endReason) String() string {
	switch r {
	case endReleased:
		return "RELEASED"
	case endExpired:
		return "LEASE_EXPIRED"
	case endSessionLost:
		return "SESSION_EXPIRED"
	case endShutdown:
		return "SHUTDOWN"
	}
	return "NONE"
}

// label names r in metrics: "released", "lease_expired", ...
func (r endReason) label() string { return strings.ToLower(r.String()) }

// lease is a granted lock. A lease that is not detached lives as long as
// its Acquire stream; a detached one lives by its ttl.
type lease struct {
	id       string // secret: never logged
	lock     string
	hold     *zkrecipes.Hold
	kind     holdKind
	detached bool
	stream   context.Context // a stream-bound lease's stream: its end releases the lease

	mu        sync.Mutex
	ttl       time.Duration
	expires   time.Time   // detached leases only
	timer     *time.Timer // detached leases only
	releasing bool        // a Release claimed it: ttl expiry no longer applies
	finishing bool        // a background wait for its delete's confirmation runs
	reason    endReason
	ended     chan struct{} // closed when reason is set
	// share, once the hold is re-entered, counts the leases that hold it:
	// the first and each re-entry (see reenter.go). Set under mu.
	share *holdShare
	// leftShare is set once the lease left its share; guarded by
	// share.mu.
	leftShare bool
}

// holdKind is what a hold is: shared or not, and its permits (1: a lock).
type holdKind struct {
	shared  bool
	permits int
}

// state returns how the lease ended (endNone while it has not) and whether
// a Release claimed it.
func (l *lease) state() (endReason, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reason, l.releasing
}

// grant makes the lease of a granted hold and adds it to the table. A
// detached lease's ttl starts now. If the Service is shutting down the
// lease ends at once with SHUTDOWN and grant returns false.
//
// A stream-bound lease is released when stream ends; a detached one has
// stream nil.
func (s *Service) grant(hold *zkrecipes.Hold, lock string, stream context.Context, ttl time.Duration, kind holdKind) (*lease, bool) {
	return s.grantShared(hold, lock, stream, ttl, kind, nil)
}

// grantShared is grant for a lease that holds its hold with others, the
// ones share counts (nil for a first lease).
func (s *Service) grantShared(hold *zkrecipes.Hold, lock string, stream context.Context, ttl time.Duration, kind holdKind, share *holdShare) (*lease, bool) {
	l := &lease{id: newLeaseID(), lock: lock, hold: hold, kind: kind, detached: stream == nil, stream: stream, ttl: ttl,
		ended: make(chan struct{}), share: share}
	if l.detached {
		l.expires = time.Now().Add(ttl)
		l.timer = time.AfterFunc(ttl, func() { s.expire(l) })
	}
	s.mu.Lock()
	added := !s.closing
	if added {
		s.tab.add(l) // under s.mu, so that Shutdown sees every lease added before it began
	}
	s.mu.Unlock()
	switch {
	case !added:
		s.finish(l, endShutdown)
	case isDone(hold.Done()):
		s.finish(l, endSessionLost) // the epoch ended before followEpochs could see the lease
	}
	return l, added
}

// isDone reports whether ch is closed.
func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// endLocked moves l to ended for reason unless it already ended, and
// reports whether it did. l.mu must be held.
func (s *Service) endLocked(l *lease, reason endReason) bool {
	if l.reason != endNone {
		return false
	}
	l.reason = reason
	if l.timer != nil {
		l.timer.Stop()
	}
	close(l.ended)
	s.cfg.Metrics.LeaseEnded(reason.label())
	return true
}

// finish ends l for reason unless it already ended, and then deletes its
// node (drop). Every transition to ended but a confirmed Release's goes
// through it.
func (s *Service) finish(l *lease, reason endReason) {
	l.mu.Lock()
	ended := s.endLocked(l, reason)
	l.mu.Unlock()
	if ended {
		s.drop(l)
	}
}

// drop deletes an ended lease's node and moves the lease to the tombstones
// once ZooKeeper confirmed the delete, or once the lease's epoch ended. It
// waits at most ReleaseTimeout, then goes on waiting in the background:
// until then a Release of the lease waits for the confirmation.
func (s *Service) drop(l *lease) {
	if s.leaveShare(l) {
		s.tab.bury(l, time.Now()) // its re-entries keep the node
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReleaseTimeout)
	defer cancel()
	if err := l.hold.Release(ctx); err == nil || errors.Is(err, zkrecipes.ErrLost) {
		s.tab.bury(l, time.Now())
		return
	}
	s.log.Warn("lock node not deleted yet; retrying in the background", "lock", l.lock)
	s.background(func(ctx context.Context) {
		if err := l.hold.Release(ctx); err == nil || errors.Is(err, zkrecipes.ErrLost) {
			s.tab.bury(l, time.Now())
		}
	})
}

// expire ends a detached lease whose ttl passed without a Renew.
func (s *Service) expire(l *lease) {
	if !s.enter() {
		return
	}
	defer s.wg.Done()
	// The check and the end are one step, so that a Renew cannot slip in
	// between and answer for a lease about to be deleted.
	l.mu.Lock()
	due := !l.releasing && l.reason == endNone && !time.Now().Before(l.expires)
	if due {
		s.endLocked(l, endExpired)
	}
	l.mu.Unlock()
	if due {
		s.log.Debug("lease expired", "lock", l.lock)
		s.drop(l)
	}
}

// check returns the status a lease answers Renew and Release with once it
// ended or a Release claimed it (field names it in the request), or nil
// while it is held. A lease whose epoch ended by the local clock ends here.
func (s *Service) check(l *lease, field string) error {
	if !l.hold.Valid() {
		s.finish(l, endSessionLost)
	}
	if l.stream != nil && l.stream.Err() != nil {
		// Its stream ended, which released it, though follow may not have
		// seen the end yet (the next Acquire of the lock may have deleted
		// the node already: zkrecipes.Hold.ReleaseWhenDone).
		s.finish(l, endReleased)
	}
	switch r, releasing := l.state(); {
	case r == endNone && !releasing:
		return nil
	case r == endNone, r == endReleased:
		return notFoundError(field, true)
	default:
		return lostError(tombstone{reason: r, token: l.hold.Token()})
	}
}

// renew extends a held detached lease by ttl, or by its own ttl if ttl is
// 0 (which it keeps from then on), and returns its new expiry; a
// stream-bound lease has none. It returns check's status for a lease no
// longer held.
func (s *Service) renew(l *lease, ttl time.Duration, now time.Time, field string) (time.Time, error) {
	l.mu.Lock()
	if l.reason != endNone || l.releasing {
		l.mu.Unlock()
		return time.Time{}, s.check(l, field)
	}
	defer l.mu.Unlock()
	if !l.detached {
		return time.Time{}, nil
	}
	if ttl > 0 {
		l.ttl = ttl
	}
	l.expires = now.Add(l.ttl)
	l.timer.Reset(l.ttl)
	return l.expires, nil
}

// release is the Release call's transition: it claims l (its ttl no longer
// applies), deletes its node and waits until ZooKeeper confirmed the
// delete, then ends l as released. It returns check's status for a lease
// that had already ended otherwise, the lost status if the epoch ended
// before the confirmation, and UNAVAILABLE RELEASE_UNCONFIRMED if none
// came shortly before ctx's deadline (confirmWait); the delete is then
// retried in the background and a later Release waits again.
func (s *Service) release(ctx context.Context, l *lease) error {
	if !l.hold.Valid() {
		s.finish(l, endSessionLost)
	}
	l.mu.Lock()
	reason := l.reason
	if reason == endNone {
		l.releasing = true
		if l.timer != nil {
			l.timer.Stop()
		}
	}
	l.mu.Unlock()
	if reason != endNone && reason != endReleased {
		return lostError(tombstone{reason: reason, token: l.hold.Token()})
	}
	if s.leaveShare(l) {
		// Other leases hold the node through re-entry: it stays.
		return s.buryReleased(l)
	}
	// Held, or released by its stream or another Release: wait for the
	// delete.
	wait, cancel := confirmWait(ctx)
	err := l.hold.Release(wait)
	cancel()
	switch {
	case err == nil:
		return s.buryReleased(l)
	case errors.Is(err, zkrecipes.ErrLost):
		s.finish(l, endSessionLost)
		if r, _ := l.state(); r != endReleased {
			return lostError(tombstone{reason: r, token: l.hold.Token()})
		}
		// Its stream had released it already.
		s.tab.bury(l, time.Now())
		return nil
	}
	// Keep waiting for the confirmation in the background; meanwhile the
	// lease counts as released for Renew, and a new Release waits again.
	l.mu.Lock()
	waiting := l.finishing
	l.finishing = true
	l.mu.Unlock()
	if !waiting {
		s.background(func(ctx context.Context) {
			switch err := l.hold.Release(ctx); {
			case err == nil:
				l.mu.Lock()
				s.endLocked(l, endReleased)
				l.mu.Unlock()
			case errors.Is(err, zkrecipes.ErrLost):
				l.mu.Lock()
				s.endLocked(l, endSessionLost)
				l.mu.Unlock()
			default:
				return
			}
			s.tab.bury(l, time.Now())
		})
	}
	return statusError(codes.Unavailable, "RELEASE_UNCONFIRMED", nil,
		"ZooKeeper has not confirmed the delete yet (%v); the sidecar keeps trying: call Release again", err)
}

// buryReleased ends l as released, its node deleted or left to its
// re-entries, and moves it to the tombstones. It returns the lost status
// if l had ended otherwise meanwhile.
func (s *Service) buryReleased(l *lease) error {
	l.mu.Lock()
	s.endLocked(l, endReleased)
	r := l.reason
	l.mu.Unlock()
	if r != endReleased {
		return lostError(tombstone{reason: r, token: l.hold.Token()})
	}
	s.tab.bury(l, time.Now())
	return nil
}

// releaseAnswerMargin bounds how long before the call's deadline a Release
// stops waiting for ZooKeeper's confirmation.
const releaseAnswerMargin = time.Second

// confirmWait returns the context a Release waits on for ZooKeeper's
// confirmation. With a deadline, it ends a fifth of the time left (at most
// releaseAnswerMargin) before it, so that the UNAVAILABLE
// RELEASE_UNCONFIRMED answer reaches the caller before the caller's own
// deadline turns it into a bare DEADLINE_EXCEEDED, even through a process
// paused by GC or CPU throttling. Waiting to the last moment would gain
// little: the delete goes on in the background either way.
func confirmWait(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	margin := max(0, min(time.Until(d)/5, releaseAnswerMargin))
	return context.WithDeadline(ctx, d.Add(-margin))
}

// followEpochs ends every lease of an epoch, stream-bound or detached, as
// soon as the epoch ends, until Shutdown.
func (s *Service) followEpochs() {
	defer close(s.epochsFollowed)
	for {
		st, changed := s.sess.State()
		if st.Epoch == nil {
			select {
			case <-s.stopCtx.Done():
				return
			case <-changed:
			}
			continue
		}
		select {
		case <-s.stopCtx.Done():
			return
		case <-st.Epoch.Done():
		}
		// Every lease of an ended epoch, this one's or one that began and
		// ended meanwhile.
		for _, l := range s.tab.all() {
			if isDone(l.hold.Done()) {
				s.finish(l, endSessionLost)
			}
		}
	}
}

// shutdownLeases ends every lease with SHUTDOWN (a lease a Release claimed
// is left to it) and waits, until ctx ends, for ZooKeeper to confirm the
// deletes.
func (s *Service) shutdownLeases(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range s.tab.all() {
		l.mu.Lock()
		ended := !l.releasing && s.endLocked(l, endShutdown)
		l.mu.Unlock()
		if !ended {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.leaveShare(l) {
				s.tab.bury(l, time.Now()) // the last of its hold's leases deletes the node
				return
			}
			if err := l.hold.Release(ctx); err != nil && !errors.Is(err, zkrecipes.ErrLost) {
				s.log.Warn("lock node not deleted at shutdown", "lock", l.lock, "err", err)
			}
			s.tab.bury(l, time.Now())
		}()
	}
	wg.Wait()
}
