package zkrecipes

import (
	"context"
	"errors"
	"time"

	"github.com/go-zookeeper/zk"
)

// Contender is one node in a lock's queue, as ZooKeeper holds it.
type Contender struct {
	// Node is the node's name under the lock node.
	Node string
	// Shared is true for a shared (read) contender.
	Shared bool
	// Holds is true if the contender holds the lock.
	Holds bool
	// Data is the node's data (a zklock sidecar stores the owner label).
	Data []byte
	// Token is the node's czxid: its fencing token.
	Token int64
	// Created is when the node was created.
	Created time.Time
}

// Contenders returns the queue of the lock node lockPath, holders first, in
// queue order. A lock node that does not exist has an empty queue. It reads
// what this Session's ZooKeeper server knows, from every client.
func (s *Session) Contenders(ctx context.Context, lockPath string) ([]Contender, error) {
	st, _ := s.State()
	if st.Epoch == nil {
		return nil, ErrNoSession
	}
	children, _, err := s.conn().Children(lockPath)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, wrapZK(err)
	}
	q := queue(children)
	nh := holders(q)
	out := make([]Contender, 0, len(q))
	for i, c := range q {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, stat, err := s.conn().Get(lockPath + "/" + c.name)
		if errors.Is(err, zk.ErrNoNode) {
			continue // left the queue while we read it
		}
		if err != nil {
			return nil, wrapZK(err)
		}
		out = append(out, Contender{
			Node:    c.name,
			Shared:  c.shared,
			Holds:   i < nh,
			Data:    data,
			Token:   stat.Czxid,
			Created: time.UnixMilli(stat.Ctime),
		})
	}
	return out, nil
}
