package zklock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
)

// errReleased is Renew's error for a lease released by this process.
var errReleased = errors.New("zklock: lease released")

// isReleased reports whether Release was called.
func (l *Lease) isReleased() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.released
}

// ErrNotDetached is returned by Renew and KeepAlive of a lease bound to its
// stream: the stream keeps it, there is nothing to renew.
var ErrNotDetached = errors.New("zklock: lease is not detached")

// Renew extends the detached lease by its ttl. A lease found lost (the
// sidecar answered Aborted or NotFound) is lost from then on: Lost closes
// and Renew returns an error wrapping ErrLost. While the sidecar's contact
// with ZooKeeper is in doubt it answers Unavailable: the lease may still be
// held; retry within the ttl.
func (l *Lease) Renew(ctx context.Context) error {
	if !l.detached {
		return ErrNotDetached
	}
	if err := l.Err(); err != nil {
		return err
	}
	if l.isReleased() {
		return errReleased
	}
	expires, err := l.c.Renew(ctx, l.id)
	if errors.Is(err, ErrLost) {
		if l.isReleased() {
			return errReleased // released meanwhile: the sidecar forgot it
		}
		l.lose(err)
		return err
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.expiresAt = expires
	l.mu.Unlock()
	return nil
}

// ExpiresAt returns when a detached lease expires unless renewed, on the
// sidecar's clock (the zero Time for a stream-bound lease).
func (l *Lease) ExpiresAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expiresAt
}

// KeepAlive renews the detached lease until ctx ends or the lease is
// released (it then returns nil) or lost (it returns why, wrapping ErrLost,
// and Lost has closed). It renews when a third of the time left before
// expiry has passed; after a Renew that failed without an answer (say,
// Unavailable while the sidecar's contact with ZooKeeper is in doubt, or a
// sidecar that does not answer) it tries again within a second. Once the
// lease's expiry passes without a confirmed Renew, the lease is lost: the
// lock may be another's by then. Each Renew may take until the expiry.
// Run it on a goroutine of its own:
//
//	go lease.KeepAlive(ctx)
func (l *Lease) KeepAlive(ctx context.Context) error {
	if !l.detached {
		return ErrNotDetached
	}
	const minWait = 100 * time.Millisecond
	failed := false
	for {
		expires := l.ExpiresAt()
		left := time.Until(expires)
		if left <= 0 {
			l.lose(fmt.Errorf("%w: its ttl passed without a confirmed renew", ErrLost))
			return l.Err()
		}
		wait := left / 3
		if failed {
			wait = min(wait, time.Second)
		}
		t := time.NewTimer(min(max(wait, minWait), left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-l.lost:
			t.Stop()
			return l.Err()
		case <-t.C:
		}
		if time.Until(expires) <= 0 {
			continue // lost, unless another Renew moved the expiry
		}
		rctx, cancel := context.WithDeadline(ctx, expires)
		err := l.Renew(rctx)
		cancel()
		switch {
		case err == nil:
			failed = false
		case errors.Is(err, errReleased):
			return nil
		case errors.Is(err, ErrLost):
			return err
		case ctx.Err() != nil:
			return nil
		default:
			failed = true
		}
	}
}

// Renew extends the detached lease leaseID (one this process or another
// took) by its ttl and returns its new expiry on the sidecar's clock. A
// lease that was lost, or that the sidecar does not know, returns an error
// wrapping ErrLost.
func (c *Client) Renew(ctx context.Context, leaseID string) (time.Time, error) {
	resp, err := c.api.Renew(ctx, &zklockv1.RenewRequest{LeaseIds: []string{leaseID}})
	switch status.Code(err) {
	case codes.OK:
	case codes.Aborted, codes.NotFound:
		return time.Time{}, fmt.Errorf("%w: %s", ErrLost, status.Convert(err).Message())
	default:
		return time.Time{}, err
	}
	if len(resp.GetLeases()) != 1 {
		return time.Time{}, fmt.Errorf("zklock: renew of one lease answered %d", len(resp.GetLeases()))
	}
	return resp.GetLeases()[0].GetExpiresAt().AsTime(), nil
}

// Release releases the lease leaseID (one this process or another took,
// detached or not) and returns once the sidecar confirmed that ZooKeeper
// deleted its node. Releasing twice succeeds; a lease that was lost returns
// an error wrapping ErrLost.
func (c *Client) Release(ctx context.Context, leaseID string) error {
	_, err := c.api.Release(ctx, &zklockv1.ReleaseRequest{LeaseId: leaseID})
	if status.Code(err) == codes.Aborted {
		return fmt.Errorf("%w: %s", ErrLost, status.Convert(err).Message())
	}
	return err
}
