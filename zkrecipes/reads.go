package zkrecipes

import (
	"context"
	"slices"
	"sync"

	"github.com/go-zookeeper/zk"
)

// queueReads coalesces the reads of a lock node's children. Every contender
// reads the whole queue when it joins and whenever it must look again, so
// with N local waiters joining together, N reads of N names each would
// queue up on the one session. Instead, at most one read per lock node is
// in flight; callers that come meanwhile share the next one, sent once the
// one in flight is answered. A shared read is sent after each of its
// callers asked for it, so it shows every node they created before asking.
type queueReads struct {
	conn func() *zk.Conn // the Session's connection in use
	wg   *sync.WaitGroup // the Session's: Close waits for reads in flight

	mu     sync.Mutex
	locks  map[string]*lockReads
	closed bool
}

type lockReads struct {
	inFlight bool
	next     *read // the read to send once the one in flight is answered
}

// read is one getChildren, shared by the callers that wait for it, with
// the queue parsed and sorted once for all of them.
type read struct {
	done  chan struct{}
	queue []contender
	// semaphore is set if the lock node has a child named as a
	// semaphore's lease nodes' parent: see Session.checkNotSemaphore.
	semaphore bool
	err       error
}

// queue returns the queue of the lock node p from a read sent after the
// call began, or ctx's error. Callers share the slice: it is read-only.
func (q *queueReads) queue(ctx context.Context, p string) ([]contender, error) {
	r, err := q.read(ctx, p)
	if err != nil {
		return nil, err
	}
	return r.queue, r.err
}

// read returns a read of the lock node p's children sent after the call
// began, or ctx's error. Callers share it: it is read-only.
func (q *queueReads) read(ctx context.Context, p string) (*read, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, ErrClosed
	}
	if q.locks == nil {
		q.locks = make(map[string]*lockReads)
	}
	lr := q.locks[p]
	if lr == nil {
		lr = &lockReads{}
		q.locks[p] = lr
	}
	r := lr.next
	if r == nil {
		r = &read{done: make(chan struct{})}
		if lr.inFlight {
			lr.next = r
		} else {
			lr.inFlight = true
			q.wg.Add(1)
			go q.send(p, r)
		}
	}
	q.mu.Unlock()
	select {
	case <-r.done:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// close makes later calls fail with ErrClosed, so that no read starts
// once the Session waits for its goroutines.
func (q *queueReads) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
}

// send performs r, then the reads that queued up behind it.
func (q *queueReads) send(p string, r *read) {
	defer q.wg.Done()
	for r != nil {
		children, _, err := q.conn().Children(p)
		if err == nil {
			r.queue = queue(children)
			r.semaphore = slices.Contains(children, semLeases)
		}
		r.err = err
		close(r.done)
		q.mu.Lock()
		lr := q.locks[p]
		r, lr.next = lr.next, nil
		if r == nil {
			delete(q.locks, p)
		}
		q.mu.Unlock()
	}
}
