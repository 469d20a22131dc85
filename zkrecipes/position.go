package zkrecipes

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// positionPoll is how often a position poller looks at its lock node.
const positionPoll = 500 * time.Millisecond

// positions keeps a Session's waiters told of their place in their queue
// (LockOptions.OnQueued). A waiter reads its queue when it joins and again
// only when the node it watches goes: the contenders ahead of that node may
// leave unseen. Watching the lock node's children instead would wake every
// waiter on every change, so a poller per lock node, alive while a waiter
// of this Session there wants its position, looks at the lock node's stat
// every positionPoll and, only when its cversion changed (a child came or
// went), reads the queue through the shared reads (queueReads) and hands
// it to those waiters. It only informs: whether a waiter holds is decided
// by the waiter's own reads, never by the poller's.
type positions struct {
	mu      sync.Mutex
	pollers map[string]*poller // by lock node

	// Requests the pollers sent, for tests: stats of lock nodes, and
	// queue reads.
	looks, reads atomic.Int64
}

// poller is the position poller of one lock node.
type poller struct {
	// waiters are the mailboxes of the waiters it informs, each holding the
	// newest queue the poller read that its waiter has not taken yet (the
	// poller replaces an older one), by their receiving end. Guarded by
	// positions.mu.
	waiters map[<-chan []contender]chan []contender
}

// joinPositions registers a waiter of the lock node parent that wants its
// position, starting the lock node's poller if it has none. The waiter
// takes the queues the poller reads from the returned mailbox until it
// calls leavePositions.
func (s *Session) joinPositions(parent string) <-chan []contender {
	w := make(chan []contender, 1)
	p := &s.positions
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.pollers[parent]
	if pl == nil {
		if !s.addWorker() {
			return w // the waiter's Lock call is about to end
		}
		pl = &poller{waiters: make(map[<-chan []contender]chan []contender)}
		if p.pollers == nil {
			p.pollers = make(map[string]*poller)
		}
		p.pollers[parent] = pl
		go s.pollPositions(parent, pl)
	}
	pl.waiters[w] = w
	return w
}

// leavePositions unregisters the waiter of the lock node parent with the
// mailbox w. The lock node's poller ends at its next look if no waiter
// remains.
func (s *Session) leavePositions(parent string, w <-chan []contender) {
	p := &s.positions
	p.mu.Lock()
	defer p.mu.Unlock()
	if pl := p.pollers[parent]; pl != nil {
		delete(pl.waiters, w)
	}
}

// pollPositions is the poller of the lock node parent. It ends when no
// waiter remains, or when the Session is closed.
func (s *Session) pollPositions(parent string, pl *poller) {
	defer s.wg.Done()
	t := time.NewTicker(positionPoll)
	defer t.Stop()
	// The lock node's creation and cversion at the last read: cversion
	// counts the changes of its children since the node was created.
	var czxid, cversion int64 = 0, -1
	for {
		select {
		case <-s.stop:
			s.endPoller(parent, pl, true)
			return
		case <-t.C:
		}
		if s.endPoller(parent, pl, false) {
			return
		}
		if st, _ := s.State(); !st.Connected {
			continue // no requests while contact is in doubt
		}
		s.positions.looks.Add(1)
		ok, stat, err := s.conn().Exists(parent)
		if err != nil || !ok || (stat.Czxid == czxid && int64(stat.Cversion) == cversion) {
			continue
		}
		s.positions.reads.Add(1)
		// Close closes the connection, which ends a read in flight.
		q, err := s.reads.queue(context.Background(), parent)
		if err != nil {
			continue
		}
		czxid, cversion = stat.Czxid, int64(stat.Cversion)
		s.handQueue(pl, q)
	}
}

// endPoller removes pl if the Session is closing or, unless closing, if
// no waiter remains, and reports whether it did.
func (s *Session) endPoller(parent string, pl *poller, closing bool) bool {
	p := &s.positions
	p.mu.Lock()
	defer p.mu.Unlock()
	if !closing && len(pl.waiters) > 0 {
		return false
	}
	if p.pollers[parent] == pl {
		delete(p.pollers, parent)
	}
	return true
}

// A poller hands a queue to handBatch waiters at once, then pauses
// handPause: waking thousands of waiters together would hold up, behind
// them, the waiter that is granted meanwhile, and so would large batches
// (each waiter woken sends its new position on its stream). 10,000
// waiters take about a third of a second.
const (
	handBatch = 32
	handPause = time.Millisecond
)

// handQueue hands q, a queue pl read, to pl's waiters.
func (s *Session) handQueue(pl *poller, q []contender) {
	p := &s.positions
	p.mu.Lock()
	ws := make([]chan []contender, 0, len(pl.waiters))
	for _, w := range pl.waiters {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	for i, w := range ws {
		if i > 0 && i%handBatch == 0 {
			t := time.NewTimer(handPause)
			select {
			case <-s.stop:
				t.Stop()
				return
			case <-t.C:
			}
		}
		// pl is the only sender: once an older queue not taken yet is
		// removed, the send cannot block.
		select {
		case <-w:
		default:
		}
		w <- q
	}
}
