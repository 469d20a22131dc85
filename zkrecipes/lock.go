package zkrecipes

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/google/uuid"
)

// LockOptions configures one Lock call.
type LockOptions struct {
	// Shared asks for a shared (read) hold instead of an exclusive one.
	Shared bool
	// Data is stored in the contender's node, for Describe. Default empty.
	Data []byte
	// TryOnce gives up at once with ErrHeld if the lock is held, instead of
	// waiting, and with ErrSuspended, without trying, while contact with
	// ZooKeeper is in doubt.
	TryOnce bool
	// OnQueued, if set, is called from the Lock call's goroutine with the
	// number of contenders ahead and the queue's length: first when the
	// contender joins the queue, then within about a second of each change
	// of its position (which only goes down while it waits; changes that
	// close together may come as one call). The length is the queue's at
	// the same read; a change of the length alone (contenders joining or
	// leaving behind it) brings no call. To learn of contenders ahead that
	// leave without its watch seeing it, the Session reads the lock node's
	// stat every half second while a waiter there has OnQueued, and its
	// children only when they changed: one such reader per lock node, no
	// watch on the lock node.
	OnQueued func(position, length int)

	// semaphoreMutex marks the lock a semaphore's contender takes on its
	// locks child: named as Curator's InterProcessMutex names its nodes,
	// whatever the Session's layout.
	semaphoreMutex bool
}

// Hold is a granted lock. It stays held until Release, or until its epoch
// ends (Done closes). It is NOT safe to assume the lock is held just because
// Done has not closed: a paused process learns of the loss late. Pass Token
// to the protected resource with every write.
type Hold struct {
	s     *Session
	e     *Epoch
	n     *node
	token int64
}

// Token returns the fencing token: the czxid of the hold's node, which
// strictly increases across successive holders of the lock.
func (h *Hold) Token() int64 { return h.token }

// Path returns the hold's node.
func (h *Hold) Path() string { return h.n.path() }

// Epoch returns the epoch the hold was granted in.
func (h *Hold) Epoch() *Epoch { return h.e }

// Done returns a channel closed when the hold's epoch ends: from then on the
// lock may be held by another.
func (h *Hold) Done() <-chan struct{} { return h.e.done }

// Valid reports whether the hold is still held by the local clock.
func (h *Hold) Valid() bool { return h.s.Valid(h.e) }

// Release deletes the hold's node and returns nil once ZooKeeper confirmed
// the delete while the hold's epoch was live. It returns ErrLost if the
// epoch ended first: the lock may have been held by another meanwhile (the
// node is still deleted). It may be called again, also after ctx ended: the
// delete is retried in the background until confirmed.
func (h *Hold) Release(ctx context.Context) error {
	h.letGo()
	select {
	case <-h.n.gone:
		return h.releaseResult()
	case <-h.e.done:
		return h.releaseResult()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ReleaseWhenDone makes the end of ctx release the hold as far as this
// Session's next contenders on the lock are concerned: a Lock of the same
// lock node that creates its node after ctx ended deletes the hold's node
// first, in the same request, so that it does not queue behind it (and
// the hold's local waiter, if any, is handed the lock). Call Release
// still, to learn when the delete is confirmed.
func (h *Hold) ReleaseWhenDone(ctx context.Context) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if h.n.claimed || h.s.epoch != h.e {
		return
	}
	h.n.until = ctx
	if h.s.ending == nil {
		h.s.ending = make(map[string]map[*node]struct{})
	}
	m := h.s.ending[h.n.parent]
	if m == nil {
		m = make(map[*node]struct{})
		h.s.ending[h.n.parent] = m
	}
	m[h.n] = struct{}{}
}

// KeepUntilReleased undoes ReleaseWhenDone: from now on only Release
// ends the hold. It reports false if the hold is being released already
// (Release was called, or ReleaseWhenDone's context ended and a Lock took
// the delete along).
func (h *Hold) KeepUntilReleased() bool {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if h.n.claimed {
		return false
	}
	if m := h.s.ending[h.n.parent]; m != nil {
		delete(m, h.n)
		if len(m) == 0 {
			delete(h.s.ending, h.n.parent)
		}
	}
	h.n.until = nil
	return true
}

// letGo starts the hold's release, once: the delete goes on in the
// background.
func (h *Hold) letGo() {
	if h.s.claim(h.n) {
		h.s.release(h.n)
	}
}

func (h *Hold) releaseResult() error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if h.n.deletedLive {
		return nil
	}
	return ErrLost
}

// node is one contender node of this Session.
type node struct {
	parent string // the lock node
	// stamp, if set, is the node whose data the create's multi request
	// sets for the token, instead of parent's (a semaphore's lease nodes:
	// its leases node's data records the permits).
	stamp  string
	prefix string // the name before the sequence suffix, unique
	epoch  *Epoch
	gone   chan struct{} // closed once ZooKeeper confirmed the node absent
	busy   bool          // a Lock call still works on it; guarded by Session.mu
	// claimed is set by the one release of the hold (claim); until, if
	// set, is when the hold ends (ReleaseWhenDone). Guarded by Session.mu.
	claimed bool
	until   context.Context
	// deletedLive is set when ZooKeeper confirmed the delete while the
	// node's epoch was live; guarded by Session.mu.
	deletedLive bool

	mu sync.Mutex
	// full is the node's path, once its name is known: made once, as the
	// path is wanted several times per lock cycle.
	full string
}

// setName records the node's name, found among its lock node's children.
func (n *node) setName(name string) { n.setPath(n.parent + "/" + name) }

// setCreated records the node's name from p, the path ZooKeeper created.
func (n *node) setCreated(p string) {
	name := path.Base(p)
	if len(p) != len(n.parent)+1+len(name) || p[:len(n.parent)] != n.parent {
		p = n.parent + "/" + name
	}
	n.setPath(p)
}

func (n *node) setPath(p string) {
	n.mu.Lock()
	n.full = p
	n.mu.Unlock()
}

// getName returns the node's name, or "" while it is not known.
func (n *node) getName() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.full == "" {
		return ""
	}
	return n.full[len(n.parent)+1:]
}

// path returns the node's path, or its lock node's followed by "/" while
// its name is not known.
func (n *node) path() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.full == "" {
		return n.parent + "/"
	}
	return n.full
}

// errRequeue means the attempt must start over with a new node: its epoch
// ended, or its node vanished.
var errRequeue = errors.New("zkrecipes: requeue")

// Lock joins the queue of the lock node lockPath (created, with missing
// parents, as CONTAINER nodes) and returns once the lock is held.
//
// It returns ErrNoSession at once if the Session has no live epoch. If the
// epoch ends while it waits, it joins the queue again in the next epoch,
// keeping ctx's deadline. If ctx ends first it returns ctx's error and the
// node is deleted (retried in the background until confirmed).
func (s *Session) Lock(ctx context.Context, lockPath string, opts LockOptions) (*Hold, error) {
	return s.retryEpochs(ctx, opts, func(e *Epoch) (*Hold, error) {
		return s.lockIn(ctx, e, lockPath, opts)
	})
}

// retryEpochs makes attempts, each in one epoch, until one returns
// anything but errRequeue: at once in the live epoch, then in each next
// one, or, in the same epoch, after a backoff.
func (s *Session) retryEpochs(ctx context.Context, opts LockOptions, attempt func(e *Epoch) (*Hold, error)) (*Hold, error) {
	st, _ := s.State()
	switch {
	case st.Epoch == nil && s.isClosed():
		return nil, ErrClosed
	case st.Epoch == nil:
		return nil, ErrNoSession
	case opts.TryOnce && !st.Connected:
		return nil, ErrSuspended // its requests would wait for the connection
	}
	e := st.Epoch
	backoff := 10 * time.Millisecond
	for {
		h, err := attempt(e)
		if !errors.Is(err, errRequeue) {
			return h, err
		}
		if opts.TryOnce {
			return nil, ErrNoSession
		}
		prev := e
		if e, err = s.AwaitEpoch(ctx); err != nil {
			return nil, err
		}
		if e == prev {
			// Our node vanished, or the epoch is about to end: do not spin.
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			backoff = min(2*backoff, time.Second)
		}
	}
}

func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// addWorker counts a goroutine about to start among those Close waits for,
// and returns true, unless the Session is closed (false: do not start it).
// Under s.mu, so Close, which sets closed before it waits, never misses one.
func (s *Session) addWorker() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// AwaitEpoch waits until the Session has a live epoch (a usable ZooKeeper
// session) and returns it, or returns ErrClosed, or ctx's error.
func (s *Session) AwaitEpoch(ctx context.Context) (*Epoch, error) {
	for {
		st, changed := s.State()
		if st.Epoch != nil {
			return st.Epoch, nil
		}
		if s.isClosed() {
			return nil, ErrClosed
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

// lockIn makes one attempt in epoch e.
func (s *Session) lockIn(ctx context.Context, e *Epoch, lockPath string, opts LockOptions) (*Hold, error) {
	layout := s.cfg.Layout
	if opts.semaphoreMutex {
		layout = LayoutCurator
	}
	n := &node{
		parent: lockPath,
		prefix: layout.nodePrefix(uuid.NewString(), opts.Shared),
		epoch:  e,
		gone:   make(chan struct{}),
	}
	if !s.register(n) {
		return nil, errRequeue
	}
	h, err := s.wait(ctx, n, opts)
	if err != nil {
		s.remove(n)
		return nil, err
	}
	return h, nil
}

// wait creates n and waits until it holds the lock.
func (s *Session) wait(ctx context.Context, n *node, opts LockOptions) (*Hold, error) {
	e := n.epoch
	made, err := s.create(ctx, n, opts.Data)
	if err != nil {
		return nil, err
	}
	me := n.getName()
	token := made.token
	var (
		q   []contender
		sem bool // the lock node has a semaphore's leases child
	)
	switch {
	case token != 0 && made.alone:
		// The only child of the lock node: at the head, nothing to read.
		q = []contender{{name: me, shared: opts.Shared}}
		q[0].seq, _ = parseSeq(me)
	case token != 0:
		if q, sem, err = s.queueRead(ctx, e, n.parent); err != nil {
			return nil, err
		}
	default:
		// Created without learning its token (the create's reply was lost
		// and the node found by its prefix): read its stat, checking that
		// it is of this session, and the queue side by side.
		if q, sem, token, err = s.statAndQueue(ctx, n); err != nil {
			return nil, err
		}
	}
	if sem && !opts.semaphoreMutex {
		if err := s.checkNotSemaphore(ctx, e, n.parent); err != nil {
			return nil, err
		}
	}
	s.noteToken(made.sent, token, n.parent)

	lastPos := -1
	// The poller's queues tell the waiter of the contenders ahead that leave
	// unseen by its watch. A queue it read may be older than the waiter's
	// own last read, but a waiting node's position only goes down (nodes
	// join at the tail): a lower one is news, any other is not.
	var polled <-chan []contender
	defer func() {
		if polled != nil {
			s.leavePositions(n.parent, polled)
		}
	}()
	told := func(q []contender) {
		if i := indexOf(q, me); i >= 0 && i < lastPos {
			opts.OnQueued(i, len(q))
			lastPos = i
		}
	}
	var handoffFrom int64 // when the local hold we were handed the lock by was released
	for {
		i := indexOf(q, me)
		if i < 0 {
			return nil, errRequeue
		}
		if opts.OnQueued != nil && i != lastPos {
			opts.OnQueued(i, len(q))
		}
		lastPos = i
		holds, watch, wakeHolds := decide(q, i)
		if holds {
			break
		}
		if opts.TryOnce {
			return nil, ErrHeld
		}
		if opts.OnQueued != nil && polled == nil {
			polled = s.joinPositions(n.parent)
		}
		watchPath := n.parent + "/" + watch
		released := s.handoffs.watch(watchPath)
		woke, err := s.watchGone(ctx, e, watchPath, released, polled, told)
		wasHeld, releaseAt := s.handoffs.unwatch(watchPath)
		if err != nil {
			return nil, err
		}
		if woke && (wakeHolds || wasHeld) {
			if wasHeld {
				handoffFrom = releaseAt
			}
			break
		}
		if q, err = s.queue(ctx, e, n.parent); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !s.Valid(e) || !s.settle(n) {
		return nil, errRequeue
	}
	if !opts.Shared {
		s.handoffs.held(n.path())
	}
	if handoffFrom != 0 {
		s.obs.Handoff(time.Duration(s.now() - handoffFrom))
	}
	return &Hold{s: s, e: e, n: n, token: token}, nil
}

// statAndQueue reads n's stat, for its token, and the queue of its lock
// node, side by side. A node that is not of n's epoch's session (one of an
// earlier session carrying the same id) is never ours: errRequeue.
func (s *Session) statAndQueue(ctx context.Context, n *node) ([]contender, bool, int64, error) {
	var (
		token    int64
		tokenErr error
		read     = make(chan struct{})
	)
	go func() {
		defer close(read)
		token, tokenErr = s.ownToken(ctx, n)
	}()
	q, sem, err := s.queueRead(ctx, n.epoch, n.parent)
	<-read
	if err == nil {
		err = tokenErr
	}
	if err != nil {
		return nil, false, 0, err
	}
	return q, sem, token, nil
}

// ownToken reads the czxid of n, created without learning it, checking
// that n is of its epoch's session: a node of an earlier session carrying
// the same id is never ours (errRequeue).
func (s *Session) ownToken(ctx context.Context, n *node) (int64, error) {
	for {
		ok, stat, err := s.conn().Exists(n.path())
		switch {
		case err == nil && !ok:
			return 0, errRequeue
		case err == nil && stat.EphemeralOwner != n.epoch.sessionID:
			return 0, errRequeue
		case err == nil:
			return stat.Czxid, nil
		}
		if err := s.afterError(ctx, n.epoch, err); err != nil {
			return 0, err
		}
	}
}

// watchGone watches p and waits for it to change. It returns true if p was
// deleted, or released if it is a local hold (released closes), false if p
// must be looked at again (it was already gone, or changed). Meanwhile it
// passes each queue that comes on polled to told, unless p's change is
// there too.
func (s *Session) watchGone(ctx context.Context, e *Epoch, p string, released <-chan struct{},
	polled <-chan []contender, told func([]contender)) (bool, error) {
	for {
		select {
		case <-released:
			return true, nil
		default:
		}
		// A data watch, not an exists watch: an exists watch on a node that
		// is already gone would stay registered until such a node is
		// created, which never happens to a sequential node.
		_, _, ch, err := s.conn().GetW(p)
		if errors.Is(err, zk.ErrNoNode) {
			return false, nil
		}
		if err != nil {
			if err := s.afterError(ctx, e, err); err != nil {
				return false, err
			}
			continue
		}
		for {
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-e.done:
				return false, errRequeue
			case <-released:
				return true, nil
			case ev := <-ch:
				return ev.Type == zk.EventNodeDeleted, nil
			case q := <-polled:
				// The watch's event comes before any read that shows p gone:
				// if both are here, the waiter's own loop goes on from p.
				select {
				case <-released:
					return true, nil
				case ev := <-ch:
					return ev.Type == zk.EventNodeDeleted, nil
				default:
					told(q)
				}
			}
		}
	}
}

// queue reads the queue of the lock node p, retrying while the connection
// is lost. Local callers reading the same lock node at once share reads,
// and the queue they get: they must not change it.
func (s *Session) queue(ctx context.Context, e *Epoch, p string) ([]contender, error) {
	q, _, err := s.queueRead(ctx, e, p)
	return q, err
}

// queueRead is queue, also telling whether the lock node p has a child
// named as a semaphore's leases.
func (s *Session) queueRead(ctx context.Context, e *Epoch, p string) ([]contender, bool, error) {
	for {
		r, err := s.reads.read(ctx, p)
		if err == nil {
			err = r.err
		}
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if err == nil {
			return r.queue, r.semaphore, nil
		}
		if errors.Is(err, zk.ErrNoNode) {
			return nil, false, errRequeue
		}
		if err := s.afterError(ctx, e, err); err != nil {
			return nil, false, err
		}
	}
}

// created is what create learnt about the node it made.
type created struct {
	token int64 // the node's czxid, 0 if unknown
	sent  int64 // when the create was sent, 0 if not known
	alone bool  // it was the lock node's only child
}

// create creates n under its parent. It does so in one multi request with
// a setData of the lock node, whose stat then gives the node's token (the
// multi's one zxid is the node's czxid and the lock node's new mzxid) and
// tells whether the node is the lock node's only child; the deletes of
// this Session's holds on the lock that ended (ReleaseWhenDone) go first
// in the same request. If the multi fails (the lock node is missing, a
// hold's node is gone already, the ACL refuses the setData), create goes
// on with a plain create. A create whose reply was lost may have happened:
// the node is then looked for by its unique prefix before trying again, so
// that no second node is made.
func (s *Session) create(ctx context.Context, n *node, data []byte) (created, error) {
	e := n.epoch
	made, ok, maybeCreated, noParent := s.createMulti(n, data)
	if noParent {
		if err := s.ensurePath(ctx, e, n.parent); err != nil {
			return created{}, err
		}
		made, ok, maybeCreated, _ = s.createMulti(n, data)
	}
	if ok {
		return made, nil
	}
	missingParent := 0
	for {
		if maybeCreated {
			// Read what the leader knows: a lagging follower might not show
			// a create that was committed.
			if _, err := s.conn().Sync(n.parent); err != nil {
				if err := s.afterError(ctx, e, err); err != nil {
					return created{}, err
				}
				continue
			}
			q, err := s.queue(ctx, e, n.parent)
			if err != nil {
				return created{}, err
			}
			for _, c := range q {
				if strings.HasPrefix(c.name, n.prefix) {
					n.setName(c.name)
					return created{}, nil
				}
			}
			maybeCreated = false
		}
		if !s.Valid(e) {
			return created{}, errRequeue
		}
		sent := s.now()
		p, err := s.conn().Create(n.parent+"/"+n.prefix, data, zk.FlagEphemeralSequential, s.cfg.ACL)
		switch {
		case err == nil:
			s.touch(sent)
			n.setCreated(p)
			return created{sent: sent}, nil
		case errors.Is(err, zk.ErrNoNode):
			if missingParent++; missingParent > 5 {
				return created{}, fmt.Errorf("zkrecipes: create %s: parent keeps vanishing: %w", n.parent, err)
			}
			if err := s.ensurePath(ctx, e, n.parent); err != nil {
				return created{}, err
			}
		default:
			// Unless ZooKeeper answered, the create may have happened.
			maybeCreated = !serverAnswered(err)
			if err := s.afterError(ctx, e, err); err != nil {
				return created{}, err
			}
		}
	}
}

// createMulti makes one attempt at creating n by the multi request create
// describes. It reports whether it succeeded and, if not, whether it may
// have (the reply was lost), or whether the lock node is missing.
func (s *Session) createMulti(n *node, data []byte) (made created, ok, maybe, noParent bool) {
	if !s.Valid(n.epoch) {
		return created{}, false, false, false
	}
	due := s.ended(n.parent)
	ops := make([]any, 0, len(due)+2)
	for _, d := range due {
		ops = append(ops, &zk.DeleteRequest{Path: d.path(), Version: -1})
	}
	stamp := n.parent
	if n.stamp != "" {
		stamp = n.stamp
	}
	ops = append(ops,
		&zk.CreateRequest{Path: n.parent + "/" + n.prefix, Data: data, Acl: s.cfg.ACL, Flags: zk.FlagEphemeralSequential},
		&zk.SetDataRequest{Path: stamp, Data: nil, Version: -1})
	sent := s.now()
	res, err := s.conn().Multi(ops...)
	if err != nil || len(res) != len(ops) || res[len(ops)-1].Stat == nil {
		// Let the ended holds' nodes go the usual way. If the reply was
		// lost the multi may have happened: the create that follows looks
		// for n by its prefix first.
		for _, d := range due {
			s.release(d)
		}
		noParent := len(res) == len(ops) && errors.Is(res[len(ops)-2].Error, zk.ErrNoNode)
		return created{}, false, err != nil && !serverAnswered(err), noParent
	}
	s.touch(sent)
	for _, d := range due {
		s.markGone(d)
	}
	st := res[len(ops)-1].Stat
	n.setCreated(res[len(ops)-2].String)
	return created{token: st.Mzxid, sent: sent, alone: st.NumChildren == 1}, true, false, false
}

// maxEndedPerCreate bounds the deletes one create takes along, so that the
// request stays far below ZooKeeper's size limit (jute.maxbuffer).
const maxEndedPerCreate = 64

// ended claims this Session's holds on the lock node parent whose
// ReleaseWhenDone context has ended, at most maxEndedPerCreate, hands each
// on to its local waiter, and returns them: their deletes go before the
// next create.
func (s *Session) ended(parent string) []*node {
	s.mu.Lock()
	var due []*node
	for d := range s.ending[parent] {
		if len(due) == maxEndedPerCreate {
			break
		}
		if d.until.Err() != nil && !d.claimed && d.epoch == s.epoch {
			d.claimed = true
			delete(s.ending[parent], d)
			due = append(due, d)
		}
	}
	if len(s.ending[parent]) == 0 {
		delete(s.ending, parent)
	}
	s.mu.Unlock()
	for _, d := range due {
		if s.Valid(d.epoch) {
			s.handoffs.release(d.path(), s.now())
		}
	}
	return due
}

// claim marks n's hold as being released, and reports whether this call
// did: a hold is released once.
func (s *Session) claim(n *node) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.claimed {
		return false
	}
	n.claimed = true
	if m := s.ending[n.parent]; m != nil {
		delete(m, n)
		if len(m) == 0 {
			delete(s.ending, n.parent)
		}
	}
	return true
}

// ensurePath creates p and its missing ancestors as CONTAINER nodes. An
// ancestor that ZooKeeper removes meanwhile (an empty container) makes it
// start again from the top.
func (s *Session) ensurePath(ctx context.Context, e *Epoch, p string) error {
	restarts := 0
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		for {
			_, err := s.conn().CreateContainer(p[:i], nil, zk.FlagContainer, s.cfg.ACL)
			if err == nil || errors.Is(err, zk.ErrNodeExists) {
				break
			}
			if errors.Is(err, zk.ErrNoNode) && restarts < 5 {
				restarts++
				i = 0
				break
			}
			if err := s.afterError(ctx, e, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// afterError decides what a failed call means. It returns nil once the
// call may be retried, after waiting for the connection if it was lost.
func (s *Session) afterError(ctx context.Context, e *Epoch, err error) error {
	switch {
	case errors.Is(err, zk.ErrSessionExpired):
		s.endEpoch(e, errExpired(e.sessionID))
		return errRequeue
	case errors.Is(err, zk.ErrClosing) && s.isClosed():
		return ErrClosed
	case errors.Is(err, zk.ErrNoAuth):
		s.log.Warn("zookeeper refused a request: the node's ACL does not let this identity do it", "auth", s.identity(), "err", err)
		return fmt.Errorf("%w: %w", ErrNotAuthorized, err)
	case serverAnswered(err):
		return wrapZK(err)
	}
	// The connection failed (also a raw network error from the client
	// library): wait a little, then retry on the reconnected session.
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return errRequeue
	case <-t.C:
		return nil
	}
}

// wrapZK wraps an error of the client library for the recipes' callers:
// with ErrRefused if ZooKeeper answered it (trying again will not help).
func wrapZK(err error) error {
	if serverAnswered(err) {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return fmt.Errorf("zkrecipes: %w", err)
}

// serverAnswered reports whether err is ZooKeeper's answer to a request,
// as opposed to a failed connection, which leaves its outcome unknown.
func serverAnswered(err error) bool {
	for _, answer := range []error{
		zk.ErrNoNode, zk.ErrNodeExists, zk.ErrNoAuth, zk.ErrBadVersion, zk.ErrNotEmpty,
		zk.ErrNoChildrenForEphemerals, zk.ErrInvalidACL, zk.ErrAuthFailed, zk.ErrAPIError,
		zk.ErrBadArguments, zk.ErrInvalidFlags, zk.ErrReconfigDisabled, zk.ErrUnknown,
		// Refused by the client library before sending: as final.
		zk.ErrInvalidPath, zk.ErrShortBuffer, zk.ErrPtrExpected, zk.ErrUnhandledFieldType,
	} {
		if errors.Is(err, answer) {
			return true
		}
	}
	return false
}

// register records n as a node of its epoch, so that it is deleted if the
// epoch ends. It returns false if the epoch already ended.
func (s *Session) register(n *node) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != n.epoch {
		return false
	}
	n.busy = true
	n.epoch.nodes[n] = struct{}{}
	return true
}

// settle hands n from its Lock call to its epoch: if the epoch ends, its
// nodes are deleted by the janitor, but a busy node is left to its Lock
// call, which may still be creating it. It returns false if the epoch has
// already ended.
func (s *Session) settle(n *node) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n.busy = false
	return s.epoch == n.epoch
}

// release ends the hold of n: if n is an exclusive hold and its epoch is
// still valid by the own clock, the local waiter watching it takes the lock
// at once (handoffs); then n is deleted by a goroutine of the Session
// (remove), so that the caller may stop waiting for the confirmation when
// it likes.
func (s *Session) release(n *node) {
	if s.Valid(n.epoch) {
		s.handoffs.release(n.path(), s.now())
	}
	if !s.addWorker() {
		return // Close ended the session, and its nodes with it
	}
	go func() {
		defer s.wg.Done()
		s.remove(n)
	}()
}

// remove deletes n: once now if ZooKeeper is in reach, then by the janitor
// until confirmed. It does not wait for a connection that is in doubt.
func (s *Session) remove(n *node) {
	if st, _ := s.State(); st.Epoch == n.epoch && st.Connected && n.getName() != "" {
		sent := s.now()
		err := s.conn().Delete(n.path(), -1)
		if err == nil || errors.Is(err, zk.ErrNoNode) {
			if err == nil {
				s.touch(sent)
			}
			s.markGone(n)
			return
		}
	}
	s.mu.Lock()
	n.busy = false
	s.orphans = append(s.orphans, n)
	s.mu.Unlock()
	select {
	case s.sweep <- struct{}{}:
	default:
	}
}

// markGone records that ZooKeeper confirmed n absent.
func (s *Session) markGone(n *node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-n.gone:
		return
	default:
	}
	if n.epoch.nodes != nil {
		delete(n.epoch.nodes, n)
	}
	n.deletedLive = s.epoch == n.epoch
	close(n.gone)
	if n.getName() != "" {
		s.handoffs.gone(n.path())
	}
}

// janitor deletes the nodes handed to it until ZooKeeper confirms each.
func (s *Session) janitor() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		case <-s.sweep:
		}
		for {
			s.mu.Lock()
			work := s.orphans
			s.orphans = nil
			s.mu.Unlock()
			var retry []*node
			for _, n := range work {
				if !s.deleteNode(n) {
					retry = append(retry, n)
				}
			}
			if len(retry) == 0 {
				break
			}
			s.mu.Lock()
			s.orphans = append(s.orphans, retry...)
			s.mu.Unlock()
			_, changed := s.State()
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-s.stop:
				t.Stop()
				return
			case <-changed:
			case <-t.C:
			}
			t.Stop()
		}
	}
}

// deleteNode makes one attempt to delete n, found by its name or, if the
// create's reply was lost, by its unique prefix. It reports whether n is
// now known to be gone.
func (s *Session) deleteNode(n *node) bool {
	select {
	case <-n.gone:
		return true
	default:
	}
	if st, _ := s.State(); st.Epoch == nil || !st.Connected {
		return false
	}
	names := []string{n.getName()}
	if names[0] == "" {
		// The create's reply was lost: look for the node by its prefix, in
		// what the leader knows (a lagging follower might not show it yet,
		// and the node would be taken for gone and block the lock).
		if _, err := s.conn().Sync(n.parent); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return false
		}
		c, _, err := s.conn().Children(n.parent)
		if errors.Is(err, zk.ErrNoNode) {
			s.markGone(n)
			return true
		}
		if err != nil {
			return false
		}
		names = names[:0]
		for _, name := range c {
			if strings.HasPrefix(name, n.prefix) {
				names = append(names, name)
			}
		}
	}
	for _, name := range names {
		err := s.conn().Delete(n.parent+"/"+name, -1)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			if !errors.Is(err, zk.ErrConnectionClosed) && !errors.Is(err, zk.ErrNoServer) && !errors.Is(err, zk.ErrClosing) {
				s.log.Warn("cannot delete lock node", "node", n.parent+"/"+name, "err", err)
			}
			return false
		}
	}
	s.markGone(n)
	return true
}
