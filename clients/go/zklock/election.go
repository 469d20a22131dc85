package zklock

import (
	"context"
	"errors"
	"slices"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
)

// ErrNoLeader is returned by Leader when no one leads the election.
var ErrNoLeader = errors.New("zklock: election has no leader")

// Campaign waits until the caller leads the election name, as etcd's
// Election.Campaign: the leader is the holder of the exclusive lock name,
// and value, its owner label, is what followers see of it (Leader,
// ObserveLeader), such as the address where the leader serves. Campaigns
// are served first come first served. To resign, release the lease: the
// next candidate leads. The lease's Lost channel closes if the leadership
// is lost. opts are those of Lock (Owner is value).
func (c *Client) Campaign(ctx context.Context, name, value string, opts ...Option) (*Lease, error) {
	return c.acquire(ctx, name, append(slices.Clip(opts), Owner(value)))
}

// Leader returns who leads the election name now (the lock's first
// holder: its Owner is the value it campaigned with), or ErrNoLeader.
func (c *Client) Leader(ctx context.Context, name string) (Holder, error) {
	resp, err := c.api.Describe(ctx, &zklockv1.DescribeRequest{Lock: name})
	if err != nil {
		return Holder{}, err
	}
	if len(resp.GetHolders()) == 0 {
		return Holder{}, ErrNoLeader
	}
	return holder(resp.GetHolders()[0]), nil
}

// ObserveLeader follows who leads the election name: it calls f with the
// present leader (ok false if there is none), then each time the leader
// changes, and returns as Observe does. A leader that resigns and is
// followed at once by the next may be reported as the next alone.
func (c *Client) ObserveLeader(ctx context.Context, name string, f func(leader Holder, ok bool) error) error {
	first := true
	var last string // the leader's node, "" for none
	return c.Observe(ctx, name, func(s State) error {
		l, ok := s.Leader()
		if !first && l.Node == last {
			return nil
		}
		first, last = false, l.Node
		return f(l, ok)
	})
}
