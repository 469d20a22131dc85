package sidecar

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// tombstone remembers how a lease ended, so that late Renew and Release
// calls get a meaningful answer.
type tombstone struct {
	reason endReason
	token  int64
	at     time.Time
}

// table holds the sidecar's leases, the tombstones of ended ones, and the
// count of local waiters. Its lock is never held across a ZooKeeper call.
type table struct {
	tombTTL time.Duration

	mu        sync.Mutex
	leases    map[string]*lease
	tombs     map[string]tombstone
	tombOrder []string // tombstone ids, oldest first
	waiters   map[string]int
	active    int // waiting and held acquires
}

func newTable(tombTTL time.Duration) *table {
	return &table{
		tombTTL: tombTTL,
		leases:  make(map[string]*lease),
		tombs:   make(map[string]tombstone),
		waiters: make(map[string]int),
	}
}

// newLeaseID returns a random 128-bit id, hex-encoded.
func newLeaseID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("sidecar: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// admit counts a new waiter on lock unless a limit is reached. It returns
// the limit reached, or "".
func (t *table) admit(lock string, maxPerLock, maxActive int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.waiters[lock] >= maxPerLock {
		return "waiters"
	}
	if t.active >= maxActive {
		return "leases"
	}
	t.active++
	t.waiters[lock]++
	return ""
}

// unwait uncounts a waiter on lock; if it was not granted it is no longer
// active either.
func (t *table) unwait(lock string, granted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.waiters[lock]--; t.waiters[lock] <= 0 {
		delete(t.waiters, lock)
	}
	if !granted {
		t.active--
	}
}

func (t *table) add(l *lease) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.leases[l.id] = l
}

// lookup returns the live lease with id, or its tombstone while it lasts.
func (t *table) lookup(id string) (*lease, tombstone, bool) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.leases[id]; ok {
		return l, tombstone{}, true
	}
	t.prune(now)
	tb, ok := t.tombs[id]
	if ok && now.Sub(tb.at) >= t.tombTTL {
		// Older than the tombstone time, though not pruned yet: tombOrder
		// is only roughly in burial order.
		return nil, tombstone{}, false
	}
	return nil, tb, ok
}

// bury moves an ended lease to the tombstones.
func (t *table) bury(l *lease, now time.Time) {
	reason, _ := l.state()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.leases[l.id]; !ok {
		return
	}
	delete(t.leases, l.id)
	t.active--
	t.tombs[l.id] = tombstone{reason: reason, token: l.hold.Token(), at: now}
	t.tombOrder = append(t.tombOrder, l.id)
	t.prune(now)
}

// prune forgets the tombstones older than the tombstone time, oldest first.
// It runs on every burial and every lookup, so that a tombstone ends on
// time even when no other lease ends. t.mu must be held.
func (t *table) prune(now time.Time) {
	for len(t.tombOrder) > 0 {
		old := t.tombs[t.tombOrder[0]]
		if now.Sub(old.at) < t.tombTTL {
			break
		}
		delete(t.tombs, t.tombOrder[0])
		t.tombOrder = t.tombOrder[1:]
	}
}

// all returns the live leases.
func (t *table) all() []*lease {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*lease, 0, len(t.leases))
	for _, l := range t.leases {
		out = append(out, l)
	}
	return out
}
