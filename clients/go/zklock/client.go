// Package zklock is the Go client of the zklock sidecar (zklockd): fair,
// fenced distributed locks over gRPC, without a ZooKeeper client.
//
// A Lease holds the sidecar's Acquire stream open for its whole life: the
// stream is the lock, so there is no renew loop to write. If the stream
// breaks (the sidecar or the connection went away) the lease is lost.
//
// A Lease is not proof that no one else holds the lock: a paused process
// may learn of a loss late. Send Lease.Token with every write to the
// protected resource, and have the resource refuse tokens lower than the
// highest it has seen.
//
// Beyond the exclusive lock: Shared holds (a read lock), semaphores of n
// holders at once (Permits), re-entry of a held lock (Lease.Reenter),
// following a lock's holders as they change (Client.Observe), and leader
// election (Client.Campaign, Client.Leader, Client.ObserveLeader; resign
// with Lease.Release).
package zklock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
)

// ErrNotGranted means the lock was not granted in time: Wait ran out, or
// the ctx given to Lock reached its deadline (the error then also matches
// context.DeadlineExceeded), or TryLock found it held. The caller has left
// the queue. Test with errors.Is.
var ErrNotGranted = errors.New("zklock: not granted in time")

// ErrLocked is ErrNotGranted, under the name TryLock's callers know.
var ErrLocked = ErrNotGranted

// ErrLost is the cause of a lost lease: the reason is in its message.
var ErrLost = errors.New("zklock: lease lost")

// Client takes locks through one zklockd.
type Client struct {
	api zklockv1.LockServiceClient
}

// New returns a Client using conn, a connection to a zklockd. Make it with
// Dial, or give it keepalive pings as Dial does: without them a lease
// cannot notice a sidecar that froze.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{api: zklockv1.NewLockServiceClient(conn)}
}

// Dial connects to the zklockd at target ("127.0.0.1:7878", or
// "unix:///path" for a socket) without transport security, which suits a
// sidecar on loopback. The connection pings the sidecar when idle (every
// 10 s, allowing 5 s for the answer), so that a lease learns it is lost when
// the sidecar froze or its connection died; that takes up to 15 s, longer
// than a session may last, which is why fencing tokens matter. opts come
// after these defaults and may override them.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.NewClient(target, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
	}, opts...)...)
}

// Option changes how a lock is taken.
type Option func(*zklockv1.AcquireRequest, *options)

type options struct {
	onQueued  func(position, length int)
	onSuspend func(suspended bool)
}

// Detach makes the lease outlive the call: the sidecar keeps it for ttl
// after its grant and after each Renew, and it ends with Release or when ttl
// passes without a Renew (Lease.KeepAlive renews it for as long as the
// caller wants). ttl 0 means the sidecar's default (15 s unless
// configured). The lease's id may be handed to another process, which
// renews it with Client.Renew and releases it with Client.Release.
//
// A detached lease has no stream to tell it of a loss: Lost closes when a
// Renew or Release finds the lease lost. Prefer a stream-bound lease (the
// default) unless the holder cannot keep a call open.
func Detach(ttl time.Duration) Option {
	return func(r *zklockv1.AcquireRequest, _ *options) {
		r.Detach = true
		if ttl > 0 {
			r.Ttl = durationpb.New(ttl)
		}
	}
}

// Shared asks for a shared (read) hold: any number of shared holders hold
// together while no exclusive contender precedes them.
func Shared() Option {
	return func(r *zklockv1.AcquireRequest, _ *options) { r.Mode = zklockv1.Mode_MODE_SHARED }
}

// Owner labels the hold for humans (Describe shows it). Default none.
func Owner(owner string) Option {
	return func(r *zklockv1.AcquireRequest, _ *options) { r.Owner = owner }
}

// Wait bounds the wait in the queue. Default: until ctx ends. When the wait
// runs out, Lock returns an error wrapping ErrNotGranted and the caller has
// left the queue. Wait(0) tries once, as TryLock does.
func Wait(d time.Duration) Option {
	return func(r *zklockv1.AcquireRequest, _ *options) { r.Wait = durationpb.New(d) }
}

// Permits makes the lock a semaphore of n permits: at most n holders at
// once, granted first come first served, each with a fencing token of its
// own. Every contender must ask for the same n: one that asks for another
// gets an error with the gRPC code FailedPrecondition naming both numbers.
// 0 or 1 (the default) is a lock; a semaphore cannot be Shared. Curator's
// InterProcessSemaphoreV2 on the same path shares the n permits.
func Permits(n int) Option {
	return func(r *zklockv1.AcquireRequest, _ *options) {
		r.Permits = int32(min(max(n, math.MinInt32), math.MaxInt32))
	}
}

// Reenter takes the lock again through leaseID, a lease that holds it
// already, granted by the same zklockd: the new lease is granted at once,
// with the same fencing token and an id of its own, and the lock stays held
// until every lease that holds it this way has ended. Without Shared, the
// new lease has the mode of leaseID's. It suits a lease id passed from
// another process (zklock run exports ZKLOCK_LEASE); in the process that
// holds the Lease, call Lease.Reenter.
//
// The gRPC codes of the errors: NotFound for a lease the sidecar does not
// know or that was released, Aborted for one that was lost,
// InvalidArgument for a lease of another lock.
func Reenter(leaseID string) Option {
	return func(r *zklockv1.AcquireRequest, _ *options) { r.Reenter = leaseID }
}

// OnQueued is called with the number of contenders ahead and the queue's
// length, when the caller joins the queue and whenever its place changes.
func OnQueued(f func(position, length int)) Option {
	return func(_ *zklockv1.AcquireRequest, o *options) { o.onQueued = f }
}

// OnSuspended is called with true when the sidecar lost contact with
// ZooKeeper (the lock may be lost: stop writes without a fencing token) and
// with false when contact came back in time. f runs on the goroutine that
// follows the lease: until it returns, no other event of the lease is
// taken, and Release waits for it, so f must not wait for a Release.
func OnSuspended(f func(suspended bool)) Option {
	return func(_ *zklockv1.AcquireRequest, o *options) { o.onSuspend = f }
}

// Lock waits until it holds the lock name, then returns its lease. If the
// wait runs out (Wait, or ctx's deadline) it returns an error wrapping
// ErrNotGranted; if ctx is cancelled, ctx's error. Either way the caller has
// left the queue.
func (c *Client) Lock(ctx context.Context, name string, opts ...Option) (*Lease, error) {
	return c.acquire(ctx, name, opts)
}

// TryLock takes the lock name if nobody holds it (for a semaphore: if a
// permit is free), and returns an error wrapping ErrNotGranted (ErrLocked)
// otherwise, without waiting.
func (c *Client) TryLock(ctx context.Context, name string, opts ...Option) (*Lease, error) {
	return c.acquire(ctx, name, append(slices.Clip(opts), Wait(0)))
}

func (c *Client) acquire(ctx context.Context, name string, opts []Option) (*Lease, error) {
	req := &zklockv1.AcquireRequest{Lock: name}
	var o options
	for _, opt := range opts {
		opt(req, &o)
	}
	// The stream outlives ctx: it is the lease.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel) // until granted, ctx ends the wait
	granted := false
	defer func() {
		// Any way out but a grant (an error, a panic in a callback) ends
		// the stream, and with it the place in the queue.
		if !granted {
			stop()
			cancel()
		}
	}()
	stream, err := c.api.Acquire(sctx, req)
	if err != nil {
		return nil, err
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("zklock: stream of %s ended before the grant", name)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, notGranted(ctx, name)
			}
			if status.Code(err) == codes.DeadlineExceeded && req.Wait != nil {
				if req.Wait.AsDuration() == 0 {
					return nil, fmt.Errorf("%w: %s is held", ErrNotGranted, name)
				}
				return nil, fmt.Errorf("%w: %s not granted within %v", ErrNotGranted, name, req.Wait.AsDuration())
			}
			return nil, err
		}
		switch e := ev.Event.(type) {
		case *zklockv1.AcquireResponse_Queued:
			if o.onQueued != nil {
				o.onQueued(int(e.Queued.GetPosition()), int(e.Queued.GetQueueLength()))
			}
		case *zklockv1.AcquireResponse_Granted:
			l := &Lease{
				c:        c,
				name:     name,
				id:       e.Granted.GetLeaseId(),
				token:    e.Granted.GetFencingToken(),
				cancel:   cancel,
				lost:     make(chan struct{}),
				done:     make(chan struct{}),
				opts:     o,
				detached: req.Detach,
			}
			if l.detached {
				// The sidecar ends a detached lease's stream after Granted,
				// and the lease does not depend on it: end it here too,
				// which frees it without reading its end.
				cancel()
				l.expiresAt = e.Granted.GetExpiresAt().AsTime()
				close(l.done)
			}
			if !stop() {
				// ctx ended as the grant came: give the lock back (the
				// deferred cancel ends a stream-bound lease's stream).
				if l.detached {
					rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
					l.Release(rctx)
					rcancel()
				}
				return nil, notGranted(ctx, name)
			}
			granted = true
			if l.detached {
				return l, nil
			}
			go l.follow(stream)
			return l, nil
		}
	}
}

// notGranted is the error of a wait that ctx ended.
func notGranted(ctx context.Context, name string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: %w", ErrNotGranted, name, ctx.Err())
	}
	return ctx.Err()
}

// Lease is a held lock. Release it when done; it is lost if the sidecar
// says so or its stream breaks.
type Lease struct {
	c        *Client
	name     string
	id       string
	token    int64
	detached bool
	cancel   context.CancelFunc
	opts     options
	lost     chan struct{} // closed when the lease is lost
	done     chan struct{} // closed when follow returned

	mu        sync.Mutex
	err       error // why it was lost
	released  bool
	expiresAt time.Time // of a detached lease, on the sidecar's clock
}

// Token returns the fencing token: it strictly increases across successive
// holders of the lock.
func (l *Lease) Token() int64 { return l.token }

// ID returns the lease's id, a secret that renews or releases it.
func (l *Lease) ID() string { return l.id }

// Name returns the name of the lock the lease holds.
func (l *Lease) Name() string { return l.name }

// Reenter takes the lease's lock again, as Curator's re-entrant
// InterProcessMutex does, where a second Lock would wait for the lease
// itself. The new lease is granted at once, with the same fencing token and
// an id of its own, and is released on its own: the lock stays held until
// l and every lease that re-entered it have been released (or their
// streams ended), and a loss of the lock ends them all. Without Shared, the
// new lease has l's mode. opts are those of Lock; Permits, if given, must
// be l's. A lease that was lost returns an error wrapping ErrLost.
func (l *Lease) Reenter(ctx context.Context, opts ...Option) (*Lease, error) {
	if err := l.Err(); err != nil {
		return nil, err
	}
	return l.c.acquire(ctx, l.name, append(slices.Clip(opts), Reenter(l.id)))
}

// Lost returns a channel closed when the lease is lost: the lock may be
// held by another from then on. Err says why.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err returns why the lease was lost (wrapping ErrLost), or nil.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Release releases the lock and returns once the sidecar confirmed that
// ZooKeeper deleted its node. If ctx ends first, the lease's stream is
// closed, which makes the sidecar release it anyway. If the lease was lost,
// Release returns an error wrapping ErrLost (Err's, if the loss was seen
// first), whatever the sidecar answers: a sidecar that saw the stream end
// counts the lease as released.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	again := l.released
	l.released = true
	lost := l.err
	l.mu.Unlock()
	defer func() {
		l.cancel()
		<-l.done
	}()
	if lost != nil {
		return lost // ending the stream releases whatever is left
	}
	err := l.c.Release(ctx, l.id)
	if l.detached && !again && status.Code(err) == codes.NotFound {
		// The sidecar forgot it: it ended long ago, or the sidecar restarted.
		err = fmt.Errorf("%w: %s", ErrLost, status.Convert(err).Message())
	}
	if errors.Is(err, ErrLost) {
		l.lose(err)
		return err
	}
	if lost := l.Err(); lost != nil {
		return lost // lost while releasing
	}
	return err
}

// follow reads the stream's events until it ends.
func (l *Lease) follow(stream zklockv1.LockService_AcquireClient) {
	defer close(l.done)
	for {
		ev, err := stream.Recv()
		if err != nil {
			l.mu.Lock()
			released := l.released
			l.mu.Unlock()
			if !released {
				if errors.Is(err, io.EOF) {
					err = errors.New("stream ended")
				}
				l.lose(fmt.Errorf("%w: %v", ErrLost, err))
			}
			return
		}
		switch e := ev.Event.(type) {
		case *zklockv1.AcquireResponse_Suspended:
			if l.opts.onSuspend != nil {
				l.opts.onSuspend(true)
			}
		case *zklockv1.AcquireResponse_Resumed:
			if l.opts.onSuspend != nil {
				l.opts.onSuspend(false)
			}
		case *zklockv1.AcquireResponse_Lost:
			l.lose(fmt.Errorf("%w: %s", ErrLost, e.Lost.GetReason()))
		}
	}
}

func (l *Lease) lose(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
		close(l.lost)
	}
}
