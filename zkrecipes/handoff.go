package zkrecipes

import "sync"

// handoffs lets a local waiter be granted as soon as the exclusive hold of
// this Session it watches is released, before ZooKeeper confirms the
// delete, and without reading the queue again. Such a node was at the head
// of its queue when granted, and nodes only ever join a queue at its tail:
// nothing can come between it and the contender that watches it, and once
// it goes, that contender is at the head. Both nodes live and die with the
// one session, and the waiter's czxid, its token, is the larger. The grant
// still needs the epoch valid by the own clock, like every grant. A record
// lives while the node is held or watched by a local waiter, whichever
// ends last.
type handoffs struct {
	mu sync.Mutex
	m  map[string]*handoff
}

type handoff struct {
	held      bool          // the node was granted as an exclusive hold
	gone      bool          // ZooKeeper confirmed the node deleted
	watchers  int           // local waiters watching the node
	releaseAt int64         // when the hold was released (Session.now), 0 before
	released  chan struct{} // closed when the hold is released; nil until watched
}

func (h *handoffs) get(p string) *handoff {
	if h.m == nil {
		h.m = make(map[string]*handoff)
	}
	r := h.m[p]
	if r == nil {
		r = &handoff{}
		h.m[p] = r
	}
	return r
}

// held records that the node p was granted as an exclusive hold.
func (h *handoffs) held(p string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(p).held = true
}

// gone records that the node p was deleted.
func (h *handoffs) gone(p string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.m[p]
	if r == nil {
		return
	}
	r.gone = true
	if r.watchers == 0 {
		delete(h.m, p)
	}
}

// release records that the node p, if a local exclusive hold, was
// released at the Session time at: the waiters watching it may take the
// lock now (Observer.Handoff counts from then).
func (h *handoffs) release(p string, at int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.m[p]
	if r == nil || !r.held || r.releaseAt != 0 {
		return
	}
	r.releaseAt = at
	if r.released != nil {
		close(r.released)
	}
}

// watch records that a local waiter watches the node p, and returns a
// channel closed once p is released, if p is a local exclusive hold.
func (h *handoffs) watch(p string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.get(p)
	r.watchers++
	if r.released == nil {
		r.released = make(chan struct{})
		if r.releaseAt != 0 {
			close(r.released)
		}
	}
	return r.released
}

// unwatch records that a waiter stopped watching p, and reports whether p
// was granted as an exclusive hold, and when it was released (0: not yet).
func (h *handoffs) unwatch(p string) (held bool, releaseAt int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.m[p]
	r.watchers--
	if r.watchers == 0 && (r.gone || !r.held) {
		delete(h.m, p)
	}
	return r.held, r.releaseAt
}

// size returns how many records are kept.
func (h *handoffs) size() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m)
}
