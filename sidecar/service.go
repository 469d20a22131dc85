package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/zkrecipes"
)

// MinTTL is the shortest lease ttl accepted.
const MinTTL = time.Second

// maxRenewIDs bounds the leases one Renew may name.
const maxRenewIDs = 1000

// Config configures a Service. Zero fields take their defaults.
type Config struct {
	// Root is the ZooKeeper path under which locks live. Default /zklock.
	Root string
	// DefaultTTL is the ttl of a lease that asks for none. Default 15 s.
	DefaultTTL time.Duration
	// MaxTTL is the longest ttl accepted. Default 1 h.
	MaxTTL time.Duration
	// MaxWaitersPerLock bounds this sidecar's callers waiting on one lock.
	// Default 10000.
	MaxWaitersPerLock int
	// MaxLeases bounds this sidecar's acquires, waiting or granted.
	// Default 100000.
	MaxLeases int
	// MaxObservers bounds this sidecar's open Observe streams. Default
	// 10000.
	MaxObservers int
	// TombstoneTTL is how long an ended lease is remembered, so that Renew
	// and Release can tell "lost" and "released" from "unknown".
	// Default 10 min.
	TombstoneTTL time.Duration
	// ReleaseTimeout bounds the wait for ZooKeeper to confirm a delete the
	// sidecar makes on its own (stream closed, ttl expired). The delete is
	// retried in the background after it. Default 10 s.
	ReleaseTimeout time.Duration
	// Logger receives the service's logs. Default slog.Default().
	Logger *slog.Logger
	// Metrics, if set, receives waits, grants and lease ends. Its methods
	// must return at once.
	Metrics Metrics
}

func (c *Config) setDefaults() error {
	if c.Root == "" {
		c.Root = "/zklock"
	}
	if err := CheckRoot(c.Root); err != nil {
		return err
	}
	if c.DefaultTTL == 0 {
		c.DefaultTTL = 15 * time.Second
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = time.Hour
	}
	if c.DefaultTTL < MinTTL || c.DefaultTTL > c.MaxTTL {
		return fmt.Errorf("default ttl %v must lie between %v and the max ttl %v", c.DefaultTTL, MinTTL, c.MaxTTL)
	}
	if c.MaxWaitersPerLock == 0 {
		c.MaxWaitersPerLock = 10000
	}
	if c.MaxLeases == 0 {
		c.MaxLeases = 100000
	}
	if c.MaxObservers == 0 {
		c.MaxObservers = 10000
	}
	if c.MaxWaitersPerLock < 0 || c.MaxLeases < 0 || c.MaxObservers < 0 {
		return errors.New("limits must not be negative")
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = 10 * time.Minute
	}
	if c.ReleaseTimeout == 0 {
		c.ReleaseTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = nopMetrics{}
	}
	return nil
}

// Service implements zklock.v1.LockService over one zkrecipes.Session.
type Service struct {
	zklockv1.UnimplementedLockServiceServer

	cfg  Config
	sess *zkrecipes.Session
	log  *slog.Logger
	tab  *table

	stopCtx context.Context // cancelled by Shutdown: waiters give up
	stop    context.CancelFunc

	mu      sync.Mutex
	closing bool
	drained bool
	wg      sync.WaitGroup // ttl expiries and background deletes in flight
	// waiting holds the cancel of each waiting Acquire, which Shutdown
	// calls, by a number of its own (lastWaiter counts them).
	waiting    map[uint64]context.CancelFunc
	lastWaiter uint64
	observers  int // open Observe streams

	epochsFollowed chan struct{} // closed when followEpochs returned
}

// New returns a Service taking locks on sess.
func New(sess *zkrecipes.Session, cfg Config) (*Service, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("sidecar: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		cfg:            cfg,
		sess:           sess,
		log:            cfg.Logger,
		tab:            newTable(cfg.TombstoneTTL),
		stopCtx:        ctx,
		stop:           cancel,
		epochsFollowed: make(chan struct{}),
	}
	if sess != nil {
		go s.followEpochs()
	} else {
		close(s.epochsFollowed) // a Service that only validates requests (tests)
	}
	return s, nil
}

func (s *Service) lockPath(name string) string { return s.cfg.Root + "/" + name }

func (s *Service) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// checkTTL returns the ttl asked for, or the default if d is nil.
func (s *Service) checkTTL(d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return s.cfg.DefaultTTL, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, invalid("INVALID_TTL", fmt.Errorf("ttl: %w", err))
	}
	ttl := d.AsDuration()
	if ttl < MinTTL || ttl > s.cfg.MaxTTL {
		return 0, invalid("INVALID_TTL", fmt.Errorf("ttl %v must lie between %v and %v", ttl, MinTTL, s.cfg.MaxTTL))
	}
	return ttl, nil
}

// maxPermits bounds AcquireRequest.permits.
const maxPermits = 1000000

// acquireArgs is a validated AcquireRequest.
type acquireArgs struct {
	lock    string
	shared  bool
	modeSet bool // the mode was given, not left unspecified
	ttl     time.Duration
	wait    time.Duration
	tryOnce bool   // wait is 0
	timed   bool   // wait is set and above 0
	permits int    // 0: as the re-entered lease, or 1
	reenter string // the lease re-entered, if any
}

// checkAcquire validates an AcquireRequest. It touches neither ZooKeeper
// nor the lease table.
func (s *Service) checkAcquire(req *zklockv1.AcquireRequest) (acquireArgs, error) {
	a := acquireArgs{lock: req.GetLock()}
	if err := checkLockName(a.lock); err != nil {
		return a, invalid("INVALID_LOCK_NAME", err)
	}
	switch req.GetMode() {
	case zklockv1.Mode_MODE_UNSPECIFIED:
	case zklockv1.Mode_MODE_EXCLUSIVE:
		a.modeSet = true
	case zklockv1.Mode_MODE_SHARED:
		a.shared, a.modeSet = true, true
	default:
		return a, invalid("INVALID_MODE", fmt.Errorf("mode %d is neither MODE_EXCLUSIVE nor MODE_SHARED", req.GetMode()))
	}
	switch p := req.GetPermits(); {
	case p < 0 || p > maxPermits:
		return a, invalid("INVALID_PERMITS", fmt.Errorf("permits %d must lie between 0 and %d (0 or 1: a lock; more: a semaphore)", p, maxPermits))
	case p > 1 && a.shared:
		return a, invalid("INVALID_PERMITS", fmt.Errorf("permits %d makes a semaphore, which takes no MODE_SHARED holds", p))
	default:
		a.permits = int(p)
	}
	if a.reenter = req.GetReenter(); a.reenter != "" {
		if err := checkLeaseID(a.reenter, "reenter"); err != nil {
			return a, invalid("INVALID_REENTER", errors.New(status.Convert(err).Message()))
		}
	}
	var err error
	if a.ttl, err = s.checkTTL(req.GetTtl()); err != nil {
		return a, err
	}
	if w := req.GetWait(); w != nil {
		if err := w.CheckValid(); err != nil {
			return a, invalid("INVALID_WAIT", fmt.Errorf("wait: %w", err))
		}
		if a.wait = w.AsDuration(); a.wait < 0 {
			return a, invalid("INVALID_WAIT", fmt.Errorf("wait %v is negative", a.wait))
		}
		a.tryOnce, a.timed = a.wait == 0, a.wait > 0
	}
	if err := checkOwner(req.GetOwner()); err != nil {
		return a, invalid("INVALID_OWNER", err)
	}
	return a, nil
}

// Acquire implements LockService.Acquire.
func (s *Service) Acquire(req *zklockv1.AcquireRequest, stream zklockv1.LockService_AcquireServer) error {
	start := time.Now()
	args, err := s.checkAcquire(req)
	if err != nil {
		return err
	}
	lock, wait := args.lock, args.wait
	if s.isClosing() {
		return statusError(codes.Unavailable, "SHUTTING_DOWN", nil, "sidecar is shutting down")
	}
	if args.reenter != "" {
		return s.reenter(req, args, stream, start)
	}
	if st, _ := s.sess.State(); st.Epoch == nil {
		return noSessionError()
	}
	if err := s.admit(lock); err != nil {
		return err
	}
	s.cfg.Metrics.WaitStarted()

	streamCtx := stream.Context()
	ctx, cancel := context.WithCancel(streamCtx)
	defer cancel()
	defer s.unlistWaiter(s.listWaiter(cancel))
	waitCtx := ctx
	if args.timed {
		var cancelWait context.CancelFunc
		waitCtx, cancelWait = context.WithTimeout(ctx, wait)
		defer cancelWait()
	}
	var sendErr error
	opts := zkrecipes.LockOptions{
		Shared:  args.shared,
		Data:    []byte(req.GetOwner()),
		TryOnce: args.tryOnce,
		OnQueued: func(pos, n int) {
			if sendErr == nil {
				sendErr = stream.Send(&zklockv1.AcquireResponse{Event: &zklockv1.AcquireResponse_Queued{
					Queued: &zklockv1.Queued{Position: int32(pos), QueueLength: int32(n)}}})
				if sendErr != nil {
					cancel()
				}
			}
		},
	}
	var hold *zkrecipes.Hold
	for {
		if args.permits > 1 {
			hold, err = s.sess.Semaphore(waitCtx, s.lockPath(lock), args.permits, opts)
		} else {
			hold, err = s.sess.Lock(waitCtx, s.lockPath(lock), opts)
		}
		if err != nil || hold.Valid() {
			break
		}
		// The session's epoch ended between the grant and now: the caller
		// never saw this grant, so queue again without telling it.
		hold.Release(context.Background())
		if _, err = s.sess.AwaitEpoch(waitCtx); err != nil {
			break
		}
	}
	if err != nil {
		s.tab.unwait(lock, false)
		s.cfg.Metrics.WaitEnded()
		switch {
		case sendErr != nil:
			return sendErr
		case s.stopCtx.Err() != nil && streamCtx.Err() == nil:
			return statusError(codes.Unavailable, "SHUTTING_DOWN", nil, "sidecar is shutting down")
		}
		return acquireError(lock, wait, err, streamCtx, waitCtx)
	}

	s.cfg.Metrics.Granted(time.Since(start))
	var bound context.Context // the stream, unless the lease is detached
	if !req.GetDetach() {
		bound = streamCtx
	}
	l, added := s.grant(hold, lock, bound, args.ttl, holdKind{shared: args.shared, permits: max(args.permits, 1)})
	s.tab.unwait(lock, added)
	s.cfg.Metrics.WaitEnded()
	if !added {
		return statusError(codes.Unavailable, "SHUTTING_DOWN", nil, "sidecar is shutting down")
	}
	if !l.detached {
		// The stream is the lock: once it ends, the next Acquire of this
		// lock here deletes the node in the request that creates its own,
		// even if follow has not yet seen the end.
		hold.ReleaseWhenDone(streamCtx)
	}
	return s.sendGranted(stream, l)
}

// admit counts an Acquire of lock against the limits, or returns the
// status of the limit reached.
func (s *Service) admit(lock string) error {
	switch s.tab.admit(lock, s.cfg.MaxWaitersPerLock, s.cfg.MaxLeases) {
	case "leases":
		return statusError(codes.ResourceExhausted, "TOO_MANY_LEASES", nil,
			"this sidecar already has %d acquires, waiting or granted (--max-leases)", s.cfg.MaxLeases)
	case "waiters":
		return statusError(codes.ResourceExhausted, "TOO_MANY_WAITERS", map[string]string{"lock": lock},
			"lock %q already has %d waiters in this sidecar (--max-waiters-per-lock)", lock, s.cfg.MaxWaitersPerLock)
	}
	return nil
}

// sendGranted sends Granted for the new lease l, then, unless l is
// detached, follows it until it ends.
func (s *Service) sendGranted(stream zklockv1.LockService_AcquireServer, l *lease) error {
	granted := &zklockv1.Granted{LeaseId: l.id, FencingToken: l.hold.Token()}
	if l.detached {
		granted.ExpiresAt = timestamppb.New(l.expires)
	}
	if err := stream.Send(&zklockv1.AcquireResponse{Event: &zklockv1.AcquireResponse_Granted{Granted: granted}}); err != nil {
		// The caller never learnt the lease id: nobody could release it.
		s.finish(l, endReleased)
		return err
	}
	if l.detached {
		return nil
	}
	return s.follow(stream, l)
}

// follow relays a stream-bound lease's life to its stream until it ends.
// The lease is released when the stream ends.
func (s *Service) follow(stream zklockv1.LockService_AcquireServer, l *lease) error {
	ctx := stream.Context()
	st, changed := s.sess.State()
	suspended := false
	if st.Epoch == l.hold.Epoch() && !st.Connected {
		suspended = true
		if err := stream.Send(&zklockv1.AcquireResponse{Event: &zklockv1.AcquireResponse_Suspended{Suspended: &zklockv1.Suspended{}}}); err != nil {
			s.finish(l, endReleased)
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			s.finish(l, endReleased)
			return status.FromContextError(ctx.Err()).Err()
		case <-l.ended:
			ev := &zklockv1.AcquireResponse{Event: &zklockv1.AcquireResponse_Released{Released: &zklockv1.Released{}}}
			if r, _ := l.state(); r != endReleased {
				ev = &zklockv1.AcquireResponse{Event: &zklockv1.AcquireResponse_Lost{Lost: &zklockv1.Lost{Reason: r.proto()}}}
			}
			return stream.Send(ev)
		case <-l.hold.Done():
			s.finish(l, endSessionLost)
		case <-changed:
			st, changed = s.sess.State()
			mine := st.Epoch == l.hold.Epoch()
			switch {
			case mine && !st.Connected && !suspended:
				suspended = true
				if err := stream.Send(&zklockv1.AcquireResponse{Event: &zklockv1.AcquireResponse_Suspended{Suspended: &zklockv1.Suspended{}}}); err != nil {
					s.finish(l, endReleased)
					return err
				}
			case mine && st.Connected && suspended && l.hold.Valid():
				suspended = false
				if err := stream.Send(&zklockv1.AcquireResponse{Event: &zklockv1.AcquireResponse_Resumed{Resumed: &zklockv1.Resumed{}}}); err != nil {
					s.finish(l, endReleased)
					return err
				}
			}
		}
	}
}

// listWaiter lists the cancel of a waiting Acquire for Shutdown to call
// once stopCtx is cancelled, or calls it at once if stopCtx already is, and
// returns its number for unlistWaiter. Its map entry takes about 30 bytes
// a waiter, where a context.AfterFunc on stopCtx took 200 for as long as
// the waiter waits.
func (s *Service) listWaiter(cancel context.CancelFunc) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopCtx.Err() != nil {
		cancel()
		return 0
	}
	if s.waiting == nil {
		s.waiting = make(map[uint64]context.CancelFunc)
	}
	s.lastWaiter++
	s.waiting[s.lastWaiter] = cancel
	return s.lastWaiter
}

// unlistWaiter removes the cancel numbered n (0: none) that listWaiter
// listed.
func (s *Service) unlistWaiter(n uint64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiting, n)
}

// background runs f in a goroutine that Shutdown cancels and waits for.
func (s *Service) background(f func(ctx context.Context)) {
	if !s.enter() {
		return
	}
	go func() {
		defer s.wg.Done()
		f(s.stopCtx)
	}()
}

// enter counts a background task unless the Service has drained.
func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drained {
		return false
	}
	s.wg.Add(1)
	return true
}

// checkRenew validates a RenewRequest, every id's form among it, and
// returns the ttl asked for (0: each lease keeps its own). It touches
// neither ZooKeeper nor the lease table.
func (s *Service) checkRenew(req *zklockv1.RenewRequest) (time.Duration, error) {
	ids := req.GetLeaseIds()
	if len(ids) == 0 {
		return 0, invalid("INVALID_LEASE_ID", errors.New("lease_ids is empty"))
	}
	if len(ids) > maxRenewIDs {
		return 0, invalid("INVALID_LEASE_ID", fmt.Errorf("lease_ids has %d ids, more than the %d allowed", len(ids), maxRenewIDs))
	}
	var ttl time.Duration
	if req.GetTtl() != nil {
		var err error
		if ttl, err = s.checkTTL(req.GetTtl()); err != nil {
			return 0, err
		}
	}
	for i, id := range ids {
		if err := checkLeaseID(id, fmt.Sprintf("lease_ids[%d]", i)); err != nil {
			return 0, err
		}
	}
	return ttl, nil
}

// Renew implements LockService.Renew.
func (s *Service) Renew(ctx context.Context, req *zklockv1.RenewRequest) (*zklockv1.RenewResponse, error) {
	ttl, err := s.checkRenew(req)
	if err != nil {
		return nil, err
	}
	ids := req.GetLeaseIds()
	leases := make([]*lease, len(ids))
	for i, id := range ids {
		l, err := s.liveLease(id, fmt.Sprintf("lease_ids[%d]", i))
		if err != nil {
			return nil, err
		}
		leases[i] = l
	}
	if st, _ := s.sess.State(); !st.Connected {
		return nil, statusError(codes.Unavailable, "SUSPENDED", nil,
			"contact with ZooKeeper is in doubt: the lease may be lost; retry")
	}
	now := time.Now()
	resp := &zklockv1.RenewResponse{Leases: make([]*zklockv1.LeaseExpiry, len(ids))}
	for i, l := range leases {
		expires, err := s.renew(l, ttl, now, fmt.Sprintf("lease_ids[%d]", i))
		if err != nil {
			return nil, err
		}
		e := &zklockv1.LeaseExpiry{LeaseId: l.id}
		if !expires.IsZero() {
			e.ExpiresAt = timestamppb.New(expires)
		}
		resp.Leases[i] = e
	}
	return resp, nil
}

// liveLease returns the live lease with id, or the status that says why
// there is none. field names the id in messages: the id itself is secret.
func (s *Service) liveLease(id, field string) (*lease, error) {
	if err := checkLeaseID(id, field); err != nil {
		return nil, err
	}
	l, tomb, ok := s.tab.lookup(id)
	if l == nil {
		if ok && tomb.reason != endReleased {
			return nil, lostError(tomb)
		}
		return nil, notFoundError(field, ok)
	}
	if err := s.check(l, field); err != nil {
		return nil, err
	}
	return l, nil
}

// checkLeaseID returns INVALID_ARGUMENT unless id looks like a lease id
// (32 hex digits). field names the request field: the id is not echoed.
func checkLeaseID(id, field string) error {
	if id == "" {
		return invalid("INVALID_LEASE_ID", fmt.Errorf("%s is empty", field))
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return invalid("INVALID_LEASE_ID", fmt.Errorf("%s is not a lease id (32 hex digits, as Granted.lease_id)", field))
	}
	return nil
}

// Release implements LockService.Release.
func (s *Service) Release(ctx context.Context, req *zklockv1.ReleaseRequest) (*zklockv1.ReleaseResponse, error) {
	id := req.GetLeaseId()
	if err := checkLeaseID(id, "lease_id"); err != nil {
		return nil, err
	}
	l, tomb, ok := s.tab.lookup(id)
	if l == nil {
		switch {
		case !ok:
			return nil, notFoundError("lease_id", false)
		case tomb.reason == endReleased:
			return &zklockv1.ReleaseResponse{}, nil
		}
		return nil, lostError(tomb)
	}
	if err := s.release(ctx, l); err != nil {
		return nil, err
	}
	return &zklockv1.ReleaseResponse{}, nil
}

// Shutdown stops taking acquires, tells every holder Lost{SHUTDOWN},
// deletes every lease's node and waits for the deletes until ctx ends.
func (s *Service) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.stop()
	s.mu.Lock()
	for _, cancel := range s.waiting {
		cancel() // after stop: the waiter tells SHUTTING_DOWN by stopCtx
	}
	s.mu.Unlock()
	<-s.epochsFollowed
	s.shutdownLeases(ctx)
	s.mu.Lock()
	s.drained = true
	s.mu.Unlock()
	s.wg.Wait()
}
