package e2e

import (
	"fmt"
	"slices"
	"time"
)

// fault is one fault the chaos run injected.
type fault struct {
	kind   string // leader-kill, follower-kill, partition, pause, zklockd-kill, client-kill, ensemble-stop
	daemon int    // the zklockd it hit, or -1
	client string // the client it hit, if any
	start  time.Time
	end    time.Time // when every zklockd served again
}

// Fault kinds that make a zklockd stop vouching for its holders; the
// locks they held must be granted again within the session timeout + 1 s.
var crashFaults = map[string]bool{"zklockd-kill": true, "pause": true, "partition": true}

// history is everything a chaos run recorded, for the checks.
type history struct {
	events   []record // clients' reports and the test's notes
	writes   []record // writes the resource accepted, in order
	faults   []fault
	daemonOf map[string]int // client → the zklockd it uses
	timeout  time.Duration  // zklockd's session timeout
	ownClock bool           // zklockd's own-clock loss detection is on
	end      time.Time      // when the clients were told to stop
}

// interval is one lease: from its grant until the holder stopped using it,
// or its zklockd stopped vouching for it, whichever came first.
type interval struct {
	op, client, lock string
	daemon           int
	token            int64
	start, end       time.Time
	endedBy          string
}

// verdict is what the checks found.
type verdict struct {
	ops        int
	i1, i2, i5 []string // violations of each invariant, described
	regrants   int      // regrant latencies measured
	maxRegrant time.Duration
	unmeasured int // crash victims whose regrant could not be measured
}

// Bounds of I5.
const releasedRegrant = 500 * time.Millisecond

func (h *history) crashRegrant() time.Duration { return h.timeout + time.Second }

// check runs I1, I2 and I5 over the history (I3 and I4 are checked while
// the run goes on).
func (h *history) check() verdict {
	var v verdict
	events := slices.Clone(h.events)
	slices.SortStableFunc(events, func(a, b record) int { return a.at.Compare(b.at) })

	// I1: the tokens the resource accepted for a lock never decrease.
	highest := map[string]record{}
	for _, w := range h.writes {
		if hi, ok := highest[w.lock]; ok && w.token < hi.token {
			v.i1 = append(v.i1, fmt.Sprintf("I1 %s: %s wrote with token %d at %s after %s wrote with token %d",
				w.lock, w.op, w.token, clock(w.at), hi.op, hi.token))
			continue
		}
		highest[w.lock] = w
	}

	ivs, acquired := h.intervals(events)
	for _, e := range events {
		if e.kind == "acquire" {
			v.ops++
		}
	}

	// I2: no two vouched intervals of one lock overlap.
	byLock := map[string][]*interval{}
	for _, iv := range ivs {
		byLock[iv.lock] = append(byLock[iv.lock], iv)
	}
	for _, l := range byLock {
		slices.SortFunc(l, func(a, b *interval) int { return a.start.Compare(b.start) })
		for i, a := range l {
			for _, b := range l[i+1:] {
				if !b.start.Before(a.end) {
					break
				}
				v.i2 = append(v.i2, fmt.Sprintf("I2 %s: %s (token %d) granted at %s while %s (token %d, granted %s) held it until %s (%s)",
					a.lock, b.op, b.token, clock(b.start), a.op, a.token, clock(a.start), clock(a.end), a.endedBy))
			}
		}
	}

	// I5: a released lock is granted again within releasedRegrant to a
	// caller already waiting; a crashed holder's within crashRegrant. Not
	// measured while another fault may slow ZooKeeper or the waiters.
	next := func(lock string, after time.Time) *interval {
		for _, iv := range byLock[lock] {
			if iv.start.After(after) {
				return iv
			}
		}
		return nil
	}
	// measure checks the regrant of lock, free from `from`, to a caller
	// that began to wait before waitedBy; it reports whether it could.
	measure := func(what, lock string, from time.Time, bound time.Duration, waitedBy time.Time, cause *fault) bool {
		n := next(lock, from)
		if n == nil || !acquired[n.op].Before(waitedBy) || h.disturbed(from, from.Add(bound), cause) {
			return false
		}
		if cause != nil && n.daemon == cause.daemon {
			return false // granted only once its own zklockd recovered
		}
		d := n.start.Sub(from)
		v.regrants++
		v.maxRegrant = max(v.maxRegrant, d)
		if d > bound {
			v.i5 = append(v.i5, fmt.Sprintf("I5 %s: %s at %s, next grant (%s) %v later, bound %v", lock, what, clock(from), n.op, d.Round(time.Millisecond), bound))
		}
		return true
	}
	for _, iv := range ivs {
		if iv.endedBy == "release" || iv.endedBy == "killed" {
			measure("released", iv.lock, iv.end, releasedRegrant, iv.end, nil)
		}
	}
	for i := range h.faults {
		f := &h.faults[i]
		if !crashFaults[f.kind] {
			continue
		}
		for _, iv := range ivs {
			if iv.daemon != f.daemon || iv.start.After(f.start) || iv.end.Before(f.start) {
				continue
			}
			if !measure(f.kind+" of the holder's zklockd", iv.lock, f.start, h.crashRegrant(), f.start.Add(h.timeout), f) {
				v.unmeasured++
			}
		}
	}
	return v
}

// intervals builds the leases from the events, and returns them with the
// time each op began to acquire.
func (h *history) intervals(events []record) ([]*interval, map[string]time.Time) {
	acquired := map[string]time.Time{}
	killed := map[string]time.Time{}
	byOp := map[string]*interval{}
	var ivs []*interval
	for _, e := range events {
		switch e.kind {
		case "acquire":
			acquired[e.op] = e.at
		case "granted":
			iv := &interval{op: e.op, client: e.client, lock: e.lock, daemon: h.daemonOf[e.client], token: e.token, start: e.at}
			byOp[e.op] = iv
			ivs = append(ivs, iv)
		case "release", "lost", "error":
			if iv := byOp[e.op]; iv != nil && iv.end.IsZero() {
				iv.end, iv.endedBy = e.at, e.kind
			}
		case "killed":
			killed[e.client] = e.at
		}
	}
	for _, iv := range ivs {
		if !iv.end.IsZero() {
			continue
		}
		if k, ok := killed[iv.client]; ok && k.After(iv.start) {
			iv.end, iv.endedBy = k, "killed"
		} else {
			iv.end, iv.endedBy = h.end, "never released"
		}
	}
	// A zklockd vouches for nothing once it is dead, and, with its own
	// clock on, nothing past the deadline that clock sets: the last
	// contact with ZooKeeper (no later than the SIGSTOP) plus the session
	// timeout less its quarter margin.
	for _, f := range h.faults {
		var until time.Time
		switch {
		case f.kind == "zklockd-kill":
			until = f.start
		case f.kind == "pause" && h.ownClock:
			until = f.start.Add(h.timeout - h.timeout/4)
		default:
			continue
		}
		for _, iv := range ivs {
			if iv.daemon == f.daemon && !f.start.Before(iv.start) && f.start.Before(iv.end) && until.Before(iv.end) {
				iv.end, iv.endedBy = until, "vouched until ("+f.kind+")"
			}
		}
	}
	return ivs, acquired
}

// disturbed reports whether a fault, or the second after it, overlaps
// [from, to]; the fault being measured and clients' kills do not count.
// A fault that cut a zklockd off lasts at least the session timeout: until
// its session expires, the nodes of its waiters stay in the queues, and a
// released lock goes to them first, in vain.
func (h *history) disturbed(from, to time.Time, cause *fault) bool {
	for i := range h.faults {
		f := &h.faults[i]
		if f == cause || f.kind == "client-kill" {
			continue
		}
		end := f.end
		if crashFaults[f.kind] && end.Before(f.start.Add(h.timeout)) {
			end = f.start.Add(h.timeout)
		}
		if f.start.Before(to) && from.Before(end.Add(time.Second)) {
			return true
		}
	}
	return false
}

// clock formats t as a time of day with milliseconds.
func clock(t time.Time) string { return t.Format("15:04:05.000") }
