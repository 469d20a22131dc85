package zkrecipes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-zookeeper/zk"
	"github.com/google/uuid"
)

// A semaphore named by path lives in Apache Curator's InterProcessSemaphoreV2
// layout, so that Curator contenders on the same path share its permits:
//
//	<path>/locks   an exclusive lock (Curator's InterProcessMutex) that a
//	               contender holds while it joins, and while it waits for
//	               a permit to come free
//	<path>/leases  one EPHEMERAL_SEQUENTIAL node per holder,
//	               _c_<uuid>-lease-<seq>; its czxid is the fencing token
//
// Holding <path>/locks, a contender creates its lease node and reads the
// children of <path>/leases with a watch: with at most N of them it holds a
// permit and lets the lock go; otherwise it waits for the watch, still
// holding the lock. So contenders are served in the lock's order, and a
// release wakes only the one contender holding the lock.
//
// zklock contenders record the number of permits they agreed on as the
// data of <path>/leases, "permits=N", which Curator ignores. Its lease
// nodes are created by a multi request that sets the data of <path>/locks
// for the token (see Session.create), so nothing else writes it.
const (
	semLocks  = "locks"
	semLeases = "leases"
)

// SemaphoreLeases returns the node under which the holders of the semaphore
// at path have their lease nodes.
func SemaphoreLeases(path string) string { return path + "/" + semLeases }

// permitsRecord is the data of a semaphore node whose zklock contenders
// agreed on n permits.
func permitsRecord(n int) []byte { return []byte("permits=" + strconv.Itoa(n)) }

// parsePermits returns the number of permits a semaphore node's data
// records, or 0 if it records none.
func parsePermits(data []byte) int {
	v, ok := strings.CutPrefix(string(data), "permits=")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0
	}
	return n
}

// PermitsError means a contender asked for a number of permits other than
// the one the present contenders of the same name agreed on. A lock counts
// as 1 permit.
type PermitsError struct {
	Path string
	Want int // asked for
	Have int // agreed on by the present contenders; 0: a semaphore of a number not known
}

func (e *PermitsError) Error() string {
	return fmt.Sprintf("zkrecipes: %s is %s, not %s", e.Path, PermitsKind(e.Have), PermitsKind(e.Want))
}

// PermitsKind names what a number of permits makes: "a lock (1 permit)",
// "a semaphore of 3 permits", or, for 0, "a semaphore" of a number not
// known.
func PermitsKind(permits int) string {
	switch {
	case permits == 0:
		return "a semaphore"
	case permits == 1:
		return "a lock (1 permit)"
	}
	return fmt.Sprintf("a semaphore of %d permits", permits)
}

// Semaphore waits until it holds one of the permits of the semaphore at
// semPath, a number its contenders must agree on (a *PermitsError
// otherwise; also if semPath has lock contenders). permits must be 2 or
// more and opts.Shared false. The Hold's token is its lease node's czxid.
//
// Like Lock, it returns ErrNoSession at once without a live epoch, joins
// again in the next epoch if the epoch ends while it waits, and deletes
// its nodes if ctx ends first. OnQueued tells the position in the queue
// of <semPath>/locks, whose head waits for a permit to come free.
func (s *Session) Semaphore(ctx context.Context, semPath string, permits int, opts LockOptions) (*Hold, error) {
	if permits < 2 || opts.Shared {
		return nil, fmt.Errorf("zkrecipes: a semaphore has 2 or more permits and no shared holds (asked: %d permits, shared %t)", permits, opts.Shared)
	}
	return s.retryEpochs(ctx, opts, func(e *Epoch) (*Hold, error) {
		return s.semaphoreIn(ctx, e, semPath, permits, opts)
	})
}

// semaphoreIn makes one attempt in epoch e.
func (s *Session) semaphoreIn(ctx context.Context, e *Epoch, semPath string, permits int, opts LockOptions) (*Hold, error) {
	// A number that differs from the present holders' is refused at once,
	// not once the contender's turn came.
	if err := s.checkPermits(ctx, e, semPath, permits, false); err != nil {
		return nil, err
	}
	mu, err := s.lockIn(ctx, e, semPath+"/"+semLocks, LockOptions{
		Data: opts.Data, TryOnce: opts.TryOnce, OnQueued: opts.OnQueued, semaphoreMutex: true,
	})
	if err != nil {
		return nil, err
	}
	// The next contender's turn comes once this one holds a permit or gave
	// up; the delete need not be waited for.
	defer mu.letGo()
	if err := s.checkPermits(ctx, e, semPath, permits, true); err != nil {
		return nil, err
	}
	n := &node{
		parent: semPath + "/" + semLeases,
		stamp:  semPath + "/" + semLocks,
		prefix: "_c_" + uuid.NewString() + "-lease-",
		epoch:  e,
		gone:   make(chan struct{}),
	}
	if !s.register(n) {
		return nil, errRequeue
	}
	h, err := s.waitPermit(ctx, n, semPath, permits, opts)
	if err != nil {
		s.remove(n)
		return nil, err
	}
	return h, nil
}

// waitPermit creates the lease node n, holding the semaphore's lock, and
// waits until at most permits lease nodes are there, n among them.
func (s *Session) waitPermit(ctx context.Context, n *node, semPath string, permits int, opts LockOptions) (*Hold, error) {
	e := n.epoch
	made, err := s.create(ctx, n, opts.Data)
	if err != nil {
		return nil, err
	}
	token := made.token
	if token == 0 {
		if token, err = s.ownToken(ctx, n); err != nil {
			return nil, err
		}
	}
	s.noteToken(made.sent, token, semPath)
	// A lock contender checks for lease nodes once its own node exists
	// (checkNotSemaphore); looking for lock contenders once n exists, one
	// of the two sees the other.
	if err := s.checkNoLockContenders(ctx, e, semPath, permits); err != nil {
		return nil, err
	}
	me := n.getName()
	for {
		children, _, ch, err := s.conn().ChildrenW(n.parent)
		if err != nil {
			if errors.Is(err, zk.ErrNoNode) {
				return nil, errRequeue
			}
			if err := s.afterError(ctx, e, err); err != nil {
				return nil, err
			}
			continue
		}
		q := queue(children)
		if indexOf(q, me) < 0 {
			return nil, errRequeue
		}
		if len(q) <= permits {
			break
		}
		if opts.TryOnce {
			return nil, ErrHeld
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-e.done:
			return nil, errRequeue
		case <-ch:
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !s.Valid(e) || !s.settle(n) {
		return nil, errRequeue
	}
	return &Hold{s: s, e: e, n: n, token: token}, nil
}

// checkPermits returns a *PermitsError if the semaphore at semPath has
// lock contenders, or holders that agreed on a number of permits other
// than permits. With record, which the holder of the semaphore's lock
// sets, it records permits as the agreed number if none is, or if no
// holder is left.
func (s *Session) checkPermits(ctx context.Context, e *Epoch, semPath string, permits int, record bool) error {
	leases := semPath + "/" + semLeases
	for {
		if err := s.checkNoLockContenders(ctx, e, semPath, permits); err != nil {
			return err
		}
		data, stat, ok, err := s.readData(ctx, e, leases)
		if err != nil {
			return err
		}
		have := parsePermits(data)
		switch {
		case have == permits:
			return nil
		case have != 0 && stat.NumChildren > 0:
			return &PermitsError{Path: semPath, Want: permits, Have: have}
		case !record:
			return nil
		case !ok:
			if err := s.ensurePath(ctx, e, leases); err != nil {
				return err
			}
			continue
		}
		_, err = s.conn().Set(leases, permitsRecord(permits), stat.Version)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, zk.ErrBadVersion), errors.Is(err, zk.ErrNoNode):
			continue // changed meanwhile: look again
		}
		if err := s.afterError(ctx, e, err); err != nil {
			return err
		}
	}
}

// checkNoLockContenders returns a *PermitsError if the node semPath has
// lock contenders among its children.
func (s *Session) checkNoLockContenders(ctx context.Context, e *Epoch, semPath string, permits int) error {
	children, _, err := s.readChildren(ctx, e, semPath)
	if err != nil {
		return err
	}
	if len(queue(children)) > 0 {
		return &PermitsError{Path: semPath, Want: permits, Have: 1}
	}
	return nil
}

// checkNotSemaphore returns a *PermitsError if the lock node lockPath is a
// semaphore's: it has lease nodes under its leases child.
func (s *Session) checkNotSemaphore(ctx context.Context, e *Epoch, lockPath string) error {
	data, stat, ok, err := s.readData(ctx, e, lockPath+"/"+semLeases)
	if err != nil || !ok || stat.NumChildren == 0 {
		return err
	}
	return &PermitsError{Path: lockPath, Want: 1, Have: parsePermits(data)}
}

// readChildren reads the children of p, retrying while the connection is
// lost. ok is false if p does not exist.
func (s *Session) readChildren(ctx context.Context, e *Epoch, p string) (children []string, ok bool, err error) {
	for {
		c, _, err := s.conn().Children(p)
		switch {
		case err == nil:
			return c, true, nil
		case errors.Is(err, zk.ErrNoNode):
			return nil, false, nil
		}
		if err := s.afterError(ctx, e, err); err != nil {
			return nil, false, err
		}
	}
}

// readData reads the data of p, retrying while the connection is lost. ok
// is false if p does not exist.
func (s *Session) readData(ctx context.Context, e *Epoch, p string) (data []byte, stat *zk.Stat, ok bool, err error) {
	for {
		d, st, err := s.conn().Get(p)
		switch {
		case err == nil:
			return d, st, true, nil
		case errors.Is(err, zk.ErrNoNode):
			return nil, nil, false, nil
		}
		if err := s.afterError(ctx, e, err); err != nil {
			return nil, nil, false, err
		}
	}
}
