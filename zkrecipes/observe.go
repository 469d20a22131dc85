package zkrecipes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// Holders is the state of a lock node's holders, as Observe delivers it.
// Observers share it: it must not be changed.
type Holders struct {
	// Contenders are the holders, in queue order, each with Holds set: as
	// Describe's holders (the exclusive contender at the head of a lock's
	// queue, or the run of shared contenders there; a semaphore's lease
	// nodes, the first Permits of them if the number is known). Their
	// data and stat are read once per holder, when it first holds.
	Contenders []Contender
	// QueueLength counts the contenders, the holders included, as
	// Describe counts them, at the read that found these holders.
	QueueLength int
	// Semaphore is true if the lock node is a semaphore's, as in
	// Description.
	Semaphore bool
	// Permits is a semaphore's number of permits, as in Description.
	Permits int
}

// Observe calls f with the holders of the lock node lockPath: first with
// the present ones, then each time the set of holders (their node names)
// changes, from every client's contenders on the path. Changes that come
// closer together than a read of the lock node may come as one call, and
// so may those that come while f runs: an observer is only ever behind by
// one state, the newest, and a slow one holds up no other.
//
// Observe returns f's error if f returns one; ctx's error once ctx ends;
// ErrNoSession at once without a live epoch, and when the epoch ends (the
// observer cannot know what it missed: observe again in the next epoch);
// ErrClosed once the Session is closed; ErrRefused or ErrNotAuthorized if
// ZooKeeper refuses to read the lock node. f is called from Observe's
// goroutine.
//
// # One watch per lock node
//
// The observers of one lock node in a Session share one reader, its hub,
// which ends with the last of them, or with its epoch. The hub keeps one
// children watch on the lock node (an exists watch while the lock node
// does not exist), and for a semaphore one more on its leases node. The
// watch on the lock node also tells the hub when the lock node becomes a
// semaphore's or stops being one (its leases node is created or removed,
// lock contenders come or go). So waiters joining and leaving a lock wake
// the hub, which reads the lock node's children and, if its holders
// changed, each new holder's node; the waiters of a semaphore (its
// mutex's nodes) do not, and its QueueLength is read only when its lease
// nodes change. No observer sets a watch of its own, nor does the hub on
// any contender's node. A watch outlives a hub that ends before it fires,
// until it fires or the session ends; ZooKeeper keeps one per path and
// session, which a later hub on the same lock node sets again.
func (s *Session) Observe(ctx context.Context, lockPath string, f func(Holders) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h, o, err := s.joinHub(lockPath)
	if err != nil {
		return err
	}
	defer s.leaveHub(h, o)
	var last []string // the holders f was last told of
	told := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.epoch.done:
			// The hub may be waiting for a reply that comes only once
			// ZooKeeper is back: do not wait for it to say so.
			return epochEnd(h.epoch)
		case <-o.wake:
		}
		st, err := s.hubs.take(o)
		if st != nil && (!told || !sameHolders(last, st.Contenders)) {
			told, last = true, holderNames(st.Contenders)
			if err := f(*st); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
	}
}

// epochEnd is what an observer of the ended epoch e is told.
func epochEnd(e *Epoch) error {
	if errors.Is(e.err, ErrClosed) {
		return ErrClosed
	}
	return ErrNoSession
}

// observeHubs are a Session's observe hubs, one per observed lock node.
type observeHubs struct {
	mu sync.Mutex
	m  map[string]*hub // by lock node

	// For tests: the looks the hubs made (each a read of the lock node
	// after a watch fired, or the first), the states they published, and
	// the hubs' goroutines running.
	looks, published, running atomic.Int64
}

// hub reads the holders of one lock node, in one epoch, for the
// observers of a Session.
type hub struct {
	path  string
	epoch *Epoch
	quit  chan struct{} // closed when the hub ended (ended is set)

	// Guarded by observeHubs.mu.
	observers map[*observer]struct{}
	state     *Holders // the last state published, nil before the first
	ended     bool
}

// observer is one Observe call's mailbox.
type observer struct {
	wake chan struct{} // a state or the hub's end waits in the mailbox

	// Guarded by observeHubs.mu.
	state *Holders // the newest state not taken yet
	err   error    // why the hub ended, if it ended by itself
}

func (o *observer) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// joinHub adds an observer to the hub of the lock node p, starting one if
// the lock node has none in the current epoch. The observer finds the
// hub's last state, if it has one, in its mailbox.
func (s *Session) joinHub(p string) (*hub, *observer, error) {
	hs := &s.hubs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	st, _ := s.State()
	if st.Epoch == nil {
		if s.isClosed() {
			return nil, nil, ErrClosed
		}
		return nil, nil, ErrNoSession
	}
	h := hs.m[p]
	if h == nil || h.ended || h.epoch != st.Epoch {
		// A hub of an ended epoch is about to end: it is replaced.
		if !s.addWorker() {
			return nil, nil, ErrClosed
		}
		h = &hub{path: p, epoch: st.Epoch, quit: make(chan struct{}), observers: make(map[*observer]struct{})}
		if hs.m == nil {
			hs.m = make(map[string]*hub)
		}
		hs.m[p] = h
		hs.running.Add(1)
		go s.runHub(h)
	}
	o := &observer{wake: make(chan struct{}, 1), state: h.state}
	if o.state != nil {
		o.signal()
	}
	h.observers[o] = struct{}{}
	return h, o, nil
}

// leaveHub removes the observer o from h, ending h if it was the last.
func (s *Session) leaveHub(h *hub, o *observer) {
	hs := &s.hubs
	hs.mu.Lock()
	defer hs.mu.Unlock()
	delete(h.observers, o)
	if len(h.observers) == 0 {
		hs.endLocked(h)
	}
}

// endLocked marks h ended and forgets it. hs.mu must be held.
func (hs *observeHubs) endLocked(h *hub) {
	if h.ended {
		return
	}
	h.ended = true
	close(h.quit)
	if hs.m[h.path] == h {
		delete(hs.m, h.path)
	}
}

// publish hands st to h's observers, replacing any state they have not
// taken yet.
func (hs *observeHubs) publish(h *hub, st *Holders) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if h.ended {
		return
	}
	hs.published.Add(1)
	h.state = st
	for o := range h.observers {
		o.state = st
		o.signal()
	}
}

// take empties o's mailbox: the newest state not taken yet (nil if none)
// and, if the hub ended by itself, why.
func (hs *observeHubs) take(o *observer) (*Holders, error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	st := o.state
	o.state = nil
	return st, o.err
}

// runHub runs h until its last observer leaves, its epoch ends or the
// Session is closed, or ZooKeeper refuses its reads; its observers are
// told why in the last two cases.
func (s *Session) runHub(h *hub) {
	defer s.wg.Done()
	hs := &s.hubs
	defer hs.running.Add(-1)
	err := s.watchHolders(h)
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.endLocked(h)
	if err == nil {
		return // left by its observers
	}
	for o := range h.observers {
		o.err = err
		o.signal()
	}
}

// watchHolders reads h's holders each time a watch fires and publishes
// them when they changed. It returns nil once h has no observer left.
func (s *Session) watchHolders(h *hub) error {
	e := h.epoch
	w := holdersWatch{path: h.path}
	var last []string // the holders published last
	published := false
	for {
		st, err := s.lookHolders(&w)
		if err != nil {
			if err := s.hubRetry(h, err); err != nil {
				return err
			}
			continue
		}
		s.hubs.looks.Add(1)
		if st != nil && (!published || !sameHolders(last, st.Contenders)) {
			published, last = true, holderNames(st.Contenders)
			s.hubs.publish(h, st)
		}
		var ev zk.Event
		select {
		case <-h.quit:
			return nil
		case <-e.done:
			return epochEnd(e)
		case <-s.stop:
			return ErrClosed
		case ev = <-w.pathCh:
			w.pathCh = nil
		case ev = <-w.leasesCh:
			w.leasesCh = nil
		}
		if ev.Type == zk.EventNotWatching {
			// The client library dropped its watches: the session expired,
			// or the client was closed (the Session closed, or replaced a
			// client that had no live epoch).
			if errors.Is(ev.Err, zk.ErrSessionExpired) {
				s.endEpoch(e, errExpired(e.sessionID))
				return ErrNoSession
			}
			select {
			case <-h.quit:
				return nil
			case <-e.done:
				return epochEnd(e)
			case <-s.stop:
				return ErrClosed
			}
		}
	}
}

// hubRetry decides what a failed look of h means: nil once it may look
// again, after a pause if the connection was lost.
func (s *Session) hubRetry(h *hub, err error) error {
	e := h.epoch
	switch {
	case errors.Is(err, zk.ErrSessionExpired):
		s.endEpoch(e, errExpired(e.sessionID))
		return ErrNoSession
	case errors.Is(err, zk.ErrNoAuth):
		return fmt.Errorf("%w: %w", ErrNotAuthorized, err)
	case serverAnswered(err):
		return wrapZK(err)
	}
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-h.quit:
		return nil
	case <-e.done:
		return epochEnd(e)
	case <-s.stop:
		return ErrClosed
	case <-t.C:
		return nil
	}
}

// holdersWatch is what a hub knows of its lock node between looks.
type holdersWatch struct {
	path string
	// pathCh is the watch on the lock node: on its children, or on its
	// creation while it does not exist. leasesCh is the watch on the
	// children of a semaphore's leases node. Each is nil once it fired,
	// and set again by the look that follows.
	pathCh, leasesCh <-chan zk.Event
	children         []string // the lock node's, as its watch was set
	leases           []string // the leases node's, as its watch was set
	// holders are the holders' nodes as last read, by path: a holder's
	// node is read once.
	holders map[string]Contender
}

// lookHolders reads what the watches that fired say may have changed,
// setting them again, and returns the holders. It returns no state, and
// no error, if a holder's node is gone already: a watch set has fired.
func (s *Session) lookHolders(w *holdersWatch) (*Holders, error) {
	c := s.conn()
	for w.pathCh == nil {
		children, _, ch, err := c.ChildrenW(w.path)
		if err == nil {
			w.children, w.pathCh = children, ch
			break
		}
		if !errors.Is(err, zk.ErrNoNode) {
			return nil, err
		}
		ok, _, ch, err := c.ExistsW(w.path)
		if err != nil {
			return nil, err
		}
		if !ok {
			w.children, w.pathCh = nil, ch
			break
		}
		// Created since: ExistsW set a data watch, of no use here (it
		// fires once, at the lock node's next setData or delete).
	}
	if q := queue(w.children); !isSemaphore(w.children, q) {
		// A lock. A watch set on a semaphore's leases node is left to fire
		// (its next child, or its removal).
		w.leases, w.leasesCh = nil, nil
		return s.readHolders(w, w.path, q[:holders(q)], Holders{QueueLength: len(q)})
	}
	if w.leasesCh == nil {
		leases, _, ch, err := c.ChildrenW(SemaphoreLeases(w.path))
		switch {
		case errors.Is(err, zk.ErrNoNode):
			w.leases = nil // removed since: the lock node's watch fires
		case err != nil:
			return nil, err
		default:
			w.leases, w.leasesCh = leases, ch
		}
	}
	data, _, err := c.Get(SemaphoreLeases(w.path)) // the permits record
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return nil, err
	}
	mutex, _, err := c.Children(w.path + "/" + semLocks)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return nil, err
	}
	sq := semaphoreQueue{permits: parsePermits(data), leases: queue(w.leases), mutex: queue(mutex)}
	st := Holders{Semaphore: true, Permits: sq.permits, QueueLength: sq.length()}
	return s.readHolders(w, SemaphoreLeases(w.path), sq.leases[:sq.holders()], st)
}

// readHolders completes st with the holders hq, nodes of parent, reading
// those it has not read before.
func (s *Session) readHolders(w *holdersWatch, parent string, hq []contender, st Holders) (*Holders, error) {
	st.Contenders = make([]Contender, 0, len(hq))
	read := make(map[string]Contender, len(hq))
	for _, h := range hq {
		p := parent + "/" + h.name
		c, ok := w.holders[p]
		if !ok {
			data, stat, err := s.conn().Get(p)
			if errors.Is(err, zk.ErrNoNode) {
				return nil, nil // gone since the read of its parent, which is watched
			}
			if err != nil {
				return nil, err
			}
			c = Contender{Node: h.name, Shared: h.shared, Holds: true, Data: data, Token: stat.Czxid, Created: time.UnixMilli(stat.Ctime)}
		}
		read[p] = c
		st.Contenders = append(st.Contenders, c)
	}
	w.holders = read
	return &st, nil
}

func holderNames(cs []Contender) []string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Node
	}
	return names
}

// sameHolders reports whether cs are the holders named by names, in order
// (queue order, so the same set is in the same order).
func sameHolders(names []string, cs []Contender) bool {
	if len(names) != len(cs) {
		return false
	}
	for i, c := range cs {
		if c.Node != names[i] {
			return false
		}
	}
	return true
}
