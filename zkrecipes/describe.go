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
	// its leases node, or under its locks node for a contender that waits
	// for the mutex).
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
	// Semaphore is true if the lock node is a semaphore's (see
	// isSemaphore).
	Semaphore bool
	// Permits is a semaphore's number of permits as its zklock contenders
	// recorded it on its leases node ("permits=N"); 0 if none did (only
	// other clients' contenders, such as Curator's, were there), and 0 for
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
// queue, or the run of shared contenders there. A semaphore's queue is
// its lease nodes, in sequence order, then the nodes of its mutex
// (<path>/locks) but the first, in queue order. The lease nodes hold: the
// first Permits of them if its zklock contenders recorded the number,
// every one otherwise. The mutex's first node is left out: its contender
// makes its lease node holding the mutex, then waits with it for a permit
// if none is free (a lease node beyond the first Permits), and lets the
// mutex go once it has one; it is counted by its lease node. So the queue
// counts every contender once, except for a moment before each lease
// node is made, when its contender is not counted yet.
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
	q := queue(children)
	if !isSemaphore(children, q) {
		out, err := s.readContenders(ctx, lockPath, q, holders(q))
		return Description{Contenders: out}, err
	}
	d := Description{Semaphore: true}
	sem, err := s.readSemaphore(lockPath)
	if err != nil {
		return Description{}, err
	}
	d.Permits = sem.permits
	if d.Contenders, err = s.readContenders(ctx, SemaphoreLeases(lockPath), sem.leases, sem.holders()); err != nil {
		return Description{}, err
	}
	waiters, err := s.readContenders(ctx, lockPath+"/"+semLocks, sem.mutexWaiters(), 0)
	if err != nil {
		return Description{}, err
	}
	d.Contenders = append(d.Contenders, waiters...)
	return d, nil
}

// isSemaphore reports whether a lock node with the children given, whose
// contenders are q, is a semaphore's: it has a leases child, and no lock
// contenders. A semaphore contender refuses to join a node with lock
// contenders, and a lock contender one whose leases child has children
// (Session.Semaphore), so at most one kind is there but in a race; an
// empty leases child may stay a while after the semaphore's last holder
// left (a container node is removed by ZooKeeper's next sweep, every
// minute by default), and lock contenders may come meanwhile.
func isSemaphore(children []string, q []contender) bool {
	return len(q) == 0 && slices.Contains(children, semLeases)
}

// semaphoreQueue is what a semaphore's nodes say of its queue.
type semaphoreQueue struct {
	permits int         // as recorded on its leases node, 0 if not
	leases  []contender // its lease nodes, in queue order
	mutex   []contender // its mutex's nodes, in queue order
}

// holders returns how many of the lease nodes hold a permit: the first
// permits, or every one if the number is not known.
func (sq semaphoreQueue) holders() int {
	if sq.permits > 0 && len(sq.leases) > sq.permits {
		return sq.permits
	}
	return len(sq.leases)
}

// mutexWaiters returns the nodes of the mutex whose contenders have no
// lease node (but for a moment: see Describe): all but the first.
func (sq semaphoreQueue) mutexWaiters() []contender {
	if len(sq.mutex) == 0 {
		return nil
	}
	return sq.mutex[1:]
}

// length returns how many contenders the semaphore's queue counts.
func (sq semaphoreQueue) length() int { return len(sq.leases) + len(sq.mutexWaiters()) }

// readSemaphore reads the semaphore at p: the permits record on its leases
// node, its lease nodes and its mutex's nodes (without watches).
func (s *Session) readSemaphore(p string) (semaphoreQueue, error) {
	var sq semaphoreQueue
	data, _, err := s.conn().Get(SemaphoreLeases(p))
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return sq, wrapZK(err)
	}
	sq.permits = parsePermits(data)
	leases, _, err := s.conn().Children(SemaphoreLeases(p))
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return sq, wrapZK(err)
	}
	sq.leases = queue(leases)
	mutex, _, err := s.conn().Children(p + "/" + semLocks)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return sq, wrapZK(err)
	}
	sq.mutex = queue(mutex)
	return sq, nil
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
