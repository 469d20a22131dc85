package zkrecipes

import "sync"

// handoffs lets a waiter be granted on the deletion of the node it watched,
// without reading the queue again, when that node was an exclusive hold of
// this Session. Such a node was at the head of its queue when granted, and
// nodes only ever join a queue at its tail: once it is deleted, the
// contender that waited on it is at the head. A record lives while the node
// is held or watched by a local waiter, whichever ends last.
type handoffs struct {
	mu sync.Mutex
	m  map[string]*handoff
}

type handoff struct {
	held     bool  // the node was granted as an exclusive hold
	gone     bool  // ZooKeeper confirmed the node deleted
	watchers int   // local waiters watching the node
	deleteAt int64 // when its delete was last sent (Session.now), 0 before
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

// deleting records that a delete of the node p is being sent at the
// Session time at, if p is a local exclusive hold: Observer.Handoff counts
// from then.
func (h *handoffs) deleting(p string, at int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.m[p]; r != nil && r.held {
		r.deleteAt = at
	}
}

// watch records that a local waiter watches the node p.
func (h *handoffs) watch(p string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(p).watchers++
}

// unwatch records that a waiter stopped watching p, and reports whether p
// was granted as an exclusive hold, and when its delete was last sent (0:
// not yet).
func (h *handoffs) unwatch(p string) (held bool, deleteAt int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.m[p]
	r.watchers--
	if r.watchers == 0 && (r.gone || !r.held) {
		delete(h.m, p)
	}
	return r.held, r.deleteAt
}

// size returns how many records are kept.
func (h *handoffs) size() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m)
}
