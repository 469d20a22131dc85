package zkrecipes

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"
)

// Contender is one node in a lock's queue, as ZooKeeper holds it.
type Contender struct {
	// Node is the node's name under the lock node (for a semaphore: under
	// its leases node if it holds, under its locks node if it waits).
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

// Description is a lock node's queue, as Describe reads it.
type Description struct {
	// Contenders are the queue: the holders first, then the waiters, in
	// queue order.
	Contenders []Contender
	// Semaphore is true if the lock node is a semaphore: it has a child
	// named "leases" (see Session.Semaphore for the layout).
	Semaphore bool
	// Permits is a semaphore's number of permits as its zklock contenders
	// recorded it on the lock node ("permits=N"); 0 if none did (only
	// other clients' contenders, such as Curator's, are there), and 0 for
	// a lock.
	Permits int
}

// Contenders returns the queue of the lock node lockPath, holders first, in
// queue order: Describe's Contenders.
func (s *Session) Contenders(ctx context.Context, lockPath string) ([]Contender, error) {
	d, err := s.Describe(ctx, lockPath)
	return d.Contenders, err
}

// Describe reads the queue of the lock node lockPath. A lock node that does
// not exist has an empty queue. It reads what this Session's ZooKeeper
// server knows, from every client, one node at a time: a node that leaves
// meanwhile is left out.
//
// For a lock, the holders are the exclusive contender at the head of the
// queue, or the run of shared contenders there. For a semaphore, the
// holders are its lease nodes, in sequence order: the first Permits of
// them if its zklock contenders recorded the number, every one otherwise.
// Its waiters are the nodes of its mutex (<path>/locks), in queue order.
// A lease node beyond the first Permits is not listed: it is the lease
// of the contender at the head of the mutex, which waits for a permit
// (Curator's InterProcessSemaphoreV2 does the same). So the queue of a
// semaphore counts every contender once, but for a moment in each grant:
// a contender that got its permit shows among the holders and at the head
// of the waiters until it lets the mutex go.
func (s *Session) Describe(ctx context.Context, lockPath string) (Description, error) {
	st, _ := s.State()
	if st.Epoch == nil {
		return Description{}, ErrNoSession
	}
	children, _, err := s.conn().Children(lockPath)
	if errors.Is(err, zk.ErrNoNode) {
		return Description{}, nil
	}
	if err != nil {
		return Description{}, wrapZK(err)
	}
	if !slices.Contains(children, semLeases) {
		q := queue(children)
		out, err := s.readContenders(ctx, lockPath, q, holders(q))
		return Description{Contenders: out}, err
	}
	d := Description{Semaphore: true}
	sem, err := s.readSemaphore(lockPath)
	if err != nil {
		return Description{}, err
	}
	d.Permits = sem.permits
	if d.Contenders, err = s.readContenders(ctx, SemaphoreLeases(lockPath), sem.leases, len(sem.leases)); err != nil {
		return Description{}, err
	}
	waiters, err := s.readContenders(ctx, lockPath+"/"+semLocks, sem.mutex, 0)
	if err != nil {
		return Description{}, err
	}
	d.Contenders = append(d.Contenders, waiters...)
	return d, nil
}

// semaphoreQueue is what a semaphore's nodes say of its queue.
type semaphoreQueue struct {
	permits int         // as recorded on the lock node, 0 if not
	leases  []contender // the holders' lease nodes, in queue order
	mutex   []contender // the mutex's nodes, in queue order
}

// readSemaphore reads the semaphore at p: its permits record, its lease
// nodes and its mutex's nodes (without watches).
func (s *Session) readSemaphore(p string) (semaphoreQueue, error) {
	var sq semaphoreQueue
	data, _, err := s.conn().Get(p)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return sq, wrapZK(err)
	}
	sq.permits = parsePermits(data)
	leases, _, err := s.conn().Children(SemaphoreLeases(p))
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return sq, wrapZK(err)
	}
	sq.leases = leaseHolders(queue(leases), sq.permits)
	mutex, _, err := s.conn().Children(p + "/" + semLocks)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return sq, wrapZK(err)
	}
	sq.mutex = queue(mutex)
	return sq, nil
}

// leaseHolders returns the lease nodes of a semaphore of the given permits
// that hold one (0 permits: not known, every lease node holds), from q,
// its lease nodes in queue order.
func leaseHolders(q []contender, permits int) []contender {
	if permits > 0 && len(q) > permits {
		return q[:permits]
	}
	return q
}

// readContenders reads the data and stat of each node of q, the queue of
// parent, of which the first nh hold. A node that is gone meanwhile is
// left out.
func (s *Session) readContenders(ctx context.Context, parent string, q []contender, nh int) ([]Contender, error) {
	out := make([]Contender, 0, len(q))
	for i, c := range q {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, stat, err := s.conn().Get(parent + "/" + c.name)
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
