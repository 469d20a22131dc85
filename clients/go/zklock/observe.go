package zklock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
)

// State is who holds a lock at one moment, as Observe reports it.
type State struct {
	// Holders hold the lock, first in the queue first: for an exclusive
	// lock at most one, the leader of an election; for a semaphore, up to
	// its permits.
	Holders []Holder
	// QueueLength counts the contenders in the queue, the holders included.
	QueueLength int
	// Permits is a semaphore's number of permits, as its zklock contenders
	// agreed it (0 if only other clients hold it); 0 for a lock.
	Permits int
}

// Leader returns the first holder, and false if none holds the lock.
func (s State) Leader() (Holder, bool) {
	if len(s.Holders) == 0 {
		return Holder{}, false
	}
	return s.Holders[0], true
}

// Holder is one holder of a lock.
type Holder struct {
	// Owner is the label the holder gave (see Owner and Campaign), or for a
	// client that is not a zklock sidecar (Curator, Kazoo), its node's data
	// as text.
	Owner string
	// Token is the holder's fencing token.
	Token int64
	// Joined is when the holder joined the queue.
	Joined time.Time
	// Shared is true for a shared (read) holder.
	Shared bool
	// Node is the name of the holder's node in ZooKeeper, unique to one
	// hold.
	Node string
	// Reentered counts, in Leader's answer, the leases that hold it through
	// re-entry beyond the first, for a holder of the zklockd asked; 0 for
	// the holders of other sidecars and clients, whose re-entries it
	// cannot see, and in Observe's states, which come only when the
	// holders change.
	Reentered int
}

// Observe follows who holds the lock name: it calls f with the present
// state, then each time the set of holders changes (a release followed at
// once by a grant may come as one change), on the caller's goroutine, one
// call at a time. It sees the holders of every zklockd and of Curator and
// Kazoo clients on the lock's path. It returns when ctx ends (ctx's
// error), when f returns an error (that error), or when the stream fails:
// with the gRPC code Unavailable when the sidecar lost its ZooKeeper
// session or shuts down (observe again), InvalidArgument for a bad name.
func (c *Client) Observe(ctx context.Context, name string, f func(State) error) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.api.Observe(sctx, &zklockv1.ObserveRequest{Lock: name})
	if err != nil {
		return err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("zklock: observing %s: the sidecar ended the stream", name)
			}
			return err
		}
		s := State{QueueLength: int(resp.GetQueueLength()), Permits: int(resp.GetPermits())}
		for _, h := range resp.GetHolders() {
			s.Holders = append(s.Holders, holder(h))
		}
		if err := f(s); err != nil {
			return err
		}
	}
}

func holder(c *zklockv1.Contender) Holder {
	return Holder{
		Owner:     c.GetOwner(),
		Token:     c.GetFencingToken(),
		Joined:    c.GetCreateTime().AsTime(),
		Shared:    c.GetMode() == zklockv1.Mode_MODE_SHARED,
		Node:      c.GetNode(),
		Reentered: int(c.GetReentered()),
	}
}
