package e2e

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// fault is one fault the chaos run injected.
type fault struct {
	kind   string // leader-kill, follower-kill, partition, pause, zklockd-kill, client-kill, ensemble-stop, handoff-cut, ensemble-wipe
	daemon int    // the zklockd it hit, or -1
	client string // the client it hit, if any
	// holder is the grant the fault was aimed at: a client told to hold
	// its lock through the fault (partition, pause, zklockd kill), if any.
	holder record
	rival  bool // a client of another zklockd waited for the holder's lock
	start  time.Time
	woke   time.Time // pause: SIGCONT; partition, handoff cut: the heal; ensemble wipe: the new ZooKeeper history began; else start
	end    time.Time // when every zklockd served again
}

// Fault kinds that make a zklockd stop vouching for its holders; the
// locks they held must be granted again within the session timeout + 1 s.
var crashFaults = map[string]bool{"zklockd-kill": true, "pause": true, "partition": true, "handoff-cut": true}

// Fault kinds that must cost the holder they hit its lease, with
// Lost{SESSION_EXPIRED}: they cut its zklockd off for longer than a
// session. For a handoff cut that holder is the waiter the released holder
// handed the lock to while cut off.
var leaseFaults = map[string]bool{"partition": true, "pause": true, "handoff-cut": true}

// history is everything a chaos run recorded, for the checks.
type history struct {
	events   []record // clients' reports and the test's notes
	writes   []record // every write, in the order the resource took them
	faults   []fault
	daemonOf map[string]int // client → the zklockd it uses
	timeout  time.Duration  // zklockd's session timeout
	end      time.Time      // when the clients were told to stop
	// permits maps each semaphore's name to its number of permits; a name
	// not in it is a lock.
	permits map[string]int

	byOp    map[string][]record  // each hold's events (its leases' included) in time order, set by check
	byLease map[string][]record  // each lease's events in time order, set by check
	rawEnd  map[string]time.Time // when each hold's client stopped using it, set by check
}

// A hold is what one op of a client holds: the lease it was granted (its
// op, "c3.17"), and the leases it re-entered that one with, each with an op
// of its own ("c3.17.r1", "c3.17.r2"). They share one fencing token, and
// one place in the lock: the hold lasts until the last of them ended, and a
// loss of any of them is a loss of all. The checks judge holds, not leases;
// each write carries its hold's op.

// holdOf returns the op of the hold a lease's op belongs to.
func holdOf(op string) string {
	i := strings.IndexByte(op, '.')
	if i < 0 {
		return op
	}
	if j := strings.IndexByte(op[i+1:], '.'); j >= 0 {
		return op[:i+1+j]
	}
	return op
}

// capacity returns how many holders name may have at once.
func (h *history) capacity(name string) int {
	if n := h.permits[name]; n > 1 {
		return n
	}
	return 1
}

// interval is one hold: from its grant until the holder stopped using it
// (it began to release the last of its leases, or heard that one is lost),
// or its zklockd stopped vouching for it, whichever came first.
type interval struct {
	op, client, lock string
	daemon           int
	token            int64
	start, end       time.Time
	endedBy          string
}

// overlap is an I2 violation: second was granted while first was held.
type overlap struct{ first, second *interval }

// verdict is what the checks found.
type verdict struct {
	ops            int
	semGrants      int      // grants of a semaphore's permit
	reentries      int      // leases granted by re-entering a held one
	i1, i2, i5, i6 []string // violations of each invariant, described
	// refusals describes Acquires refused with a code that the run's
	// requests, all valid, must never get.
	refusals []string
	overlaps []overlap // I2 violations of locks
	// mostHeld maps each semaphore to the most holds it had at once.
	mostHeld map[string]int
	// Partitions and pauses: how many there were, and how many cost the
	// holder they hit its lease. unfelt describes the others.
	leaseFaults, lostToFaults int
	unfelt                    []string
	handoffsCut               int // handoff cuts whose holder handed the lock on while cut off
	regrants                  int // regrant latencies measured
	maxRegrant                time.Duration
	releaseRegrants           []time.Duration // the latencies measured after releases
	unmeasured                int             // crash victims whose regrant could not be measured
}

// violations returns every violation the checks described.
func (v *verdict) violations() []string {
	return slices.Concat(v.i1, v.i2, v.i5, v.i6, v.refusals, v.unfelt)
}

// wakeBound is how soon a zklockd woken from a pause must tell the client of
// each lease it granted before the pause that the lease is lost (it checks
// its clock before it answers anything: this takes milliseconds).
const wakeBound = 2 * time.Second

// Bounds of I5. A released lock goes to its next waiter in tens of
// milliseconds (the run logs the distribution); the bound is far above
// that, so that a loaded 2-core machine running -race builds stays under
// it, and far below what a lost wakeup costs (the waiter waits until its
// 10 s wait runs out). Speed is measured by make bench, not here.
const releasedRegrant = 2 * time.Second

// crashRegrant bounds the regrant of a lock whose holder's zklockd was cut
// off: ZooKeeper expires the session a session timeout after it last heard
// from it, rounded up to its tick, and the waiter's watch then fires.
func (h *history) crashRegrant() time.Duration { return h.timeout + 2*time.Second }

// ownDeadline is how long a zklockd cut off at from may still vouch for
// its holders: its own clock gives them up three quarters of the session
// timeout after its last contact with ZooKeeper, which was no later.
func (h *history) ownDeadline(from time.Time) time.Time {
	return from.Add(h.timeout - h.timeout/4)
}

// The events of an op that carry what its zklockd said about the lease,
// as opposed to what the client did.
var zklockdWords = map[string]bool{"suspended": true, "resumed": true, "lost": true, "error": true, "released": true, "release-failed": true}

// saysLost reports whether w tells the client that its lease is gone: Lost,
// a broken stream, or a Release answered ABORTED.
func saysLost(w record) bool {
	return w.kind == "lost" || w.kind == "error" || (w.kind == "release-failed" && w.detail == "Aborted")
}

// words returns what e says, as its kind and detail.
func words(e record) string { return strings.TrimSpace(e.kind + " " + e.detail) }

// losesHold reports whether e tells the client that its hold is gone: one
// of its leases is (saysLost), or re-entering it was answered ABORTED.
func losesHold(e record) bool {
	return saysLost(e) || (e.kind == "reenter-failed" && e.detail == "Aborted")
}

// Why a semaphore's resource refused a write, in the write's detail:
// semFull for an (N+1)th lease while N it admitted have not ended; for a
// lease it knows ended, how it ended (how its hold ended, such as
// "release", or semGone).
const (
	semFull = "full"
	semGone = "node gone"
)

// refusedCodes are the codes an Acquire of the run must never get: every
// request it makes is valid (a lock or a semaphore whose contenders agree
// on the permits, a re-entry of a lease its client holds). A re-entry may
// be answered UNAVAILABLE (no session), ABORTED (the lease was just lost)
// or end with its caller's deadline; an Acquire also DEADLINE_EXCEEDED.
var refusedCodes = map[string]bool{
	"InvalidArgument": true, "FailedPrecondition": true, "NotFound": true, "AlreadyExists": true,
	"PermissionDenied": true, "OutOfRange": true, "Unimplemented": true, "Internal": true, "DataLoss": true,
}

// firstWord returns the first thing op's zklockd said about its lease at
// or after t. A Release the client's own deadline ended said nothing.
func (h *history) firstWord(op string, t time.Time) (record, bool) {
	for _, e := range h.byOp[op] {
		if e.kind == "release-failed" && (e.detail == "DeadlineExceeded" || e.detail == "Canceled") {
			continue
		}
		if zklockdWords[e.kind] && !e.at.Before(t) {
			return e, true
		}
	}
	return record{}, false
}

// wakeWord returns what op's zklockd said first about op's lease once it
// woke from pause f, if it said it within wakeBound.
func (h *history) wakeWord(op string, f *fault) (record, bool) {
	w, ok := h.firstWord(op, f.woke)
	if !ok || w.at.After(f.woke.Add(wakeBound)) {
		return record{}, false
	}
	return w, true
}

// pausedLease says whether op's lease is one that f, a pause of its
// zklockd, caught: granted before the pause, or received during it or
// just after it but sent before it. For the latter, the zklockd's first
// word after waking must say lost, and no other lease of that zklockd may
// have held the lock when the pause began (then the grant was not sent
// before it). It also returns until when a stale write of the lease is
// the zklockd's pause and not its fault: until it said lost on waking;
// if it said anything else, until then; if it said nothing, until the
// client stopped using the lease, at the latest wakeBound after waking.
func (h *history) pausedLease(op string, f *fault) (time.Time, bool) {
	g, ok := h.grantOf(op)
	if !ok || f.kind != "pause" || h.daemonOf[g.client] != f.daemon || g.at.After(f.woke.Add(wakeBound)) {
		return time.Time{}, false
	}
	w, said := h.wakeWord(op, f)
	if !g.at.Before(f.start) && (!said || !saysLost(w) || !g.at.Before(w.at) || h.heldAt(f.daemon, g.lock, f.start)) {
		return time.Time{}, false
	}
	if said {
		return w.at, true
	}
	end := f.woke.Add(wakeBound)
	if e := h.rawEnd[op]; e.Before(end) {
		end = e
	}
	return end, true
}

// heldAt reports whether a client of zklockd daemon held lock at t.
func (h *history) heldAt(daemon int, lock string, t time.Time) bool {
	for op, evs := range h.byOp {
		g, ok := h.grantOf(op)
		if ok && g.lock == lock && h.daemonOf[evs[0].client] == daemon && g.at.Before(t) && h.rawEnd[op].After(t) {
			return true
		}
	}
	return false
}

// historyAt returns which ZooKeeper history a grant received at t is of:
// how many ensemble wipes began a new one by then. A grant received during
// a wipe's outage (a zklockd's local handoff, while its own clock still
// vouched for its session) is of the history before it.
func (h *history) historyAt(t time.Time) int {
	n := 0
	for _, f := range h.faults {
		if f.kind == "ensemble-wipe" && !t.Before(f.woke) {
			n++
		}
	}
	return n
}

// grantOf returns op's grant.
func (h *history) grantOf(op string) (record, bool) {
	for _, e := range h.byOp[op] {
		if e.kind == "granted" {
			return e, true
		}
	}
	return record{}, false
}

// check runs I1, I2 and I5 over the history, and checks that every
// partition and pause cost its holder the lease (I3 and I4 are checked
// while the run goes on).
func (h *history) check() verdict {
	v := verdict{mostHeld: map[string]int{}}
	events := slices.Clone(h.events)
	slices.SortStableFunc(events, func(a, b record) int { return a.at.Compare(b.at) })
	h.byOp, h.byLease = map[string][]record{}, map[string][]record{}
	for _, e := range events {
		if e.op != "" {
			h.byOp[holdOf(e.op)] = append(h.byOp[holdOf(e.op)], e)
			h.byLease[e.op] = append(h.byLease[e.op], e)
		}
		switch {
		case e.kind == "acquire":
			v.ops++
		case e.kind == "reentered":
			v.reentries++
		case e.kind == "granted" && h.capacity(e.lock) > 1:
			v.semGrants++
		case (e.kind == "not-granted" || e.kind == "reenter-failed") && refusedCodes[e.detail]:
			v.refusals = append(v.refusals, fmt.Sprintf("%s %s: %s at %s: %s, but the request was valid", e.lock, e.op, e.kind, clock(e.at), e.detail))
		}
	}
	ivs, acquired := h.intervals(&v, events)
	h.checkTokens(&v, events)
	h.checkReentries(&v)
	byLock := h.checkOverlaps(&v, ivs)
	h.checkFaultsCost(&v)
	h.checkRegrants(&v, ivs, byLock, acquired)
	return v
}

// checkTokens is I1: every write carries a token at least as high as the
// highest the resource accepted for its lock before (refused or not: a
// resource that checks tokens only hides the fault), and grants of a lock
// carry rising tokens in the order they were received.
//
// Both within one ZooKeeper history: an ensemble wipe starts a new one,
// whose tokens are lower, and the resource's high-water marks are reset
// then. A write the resource took after that reset, of a lease of an
// earlier history, is a violation in itself: that lease's zklockd had
// given it up by its own clock long before (the ensemble was down for
// longer than a session), so its client wrote after it should have heard
// Lost, with a token from which the new holders' lower ones look stale.
//
// The one exception: a client whose zklockd is paused by SIGSTOP cannot be
// told anything, so the writes of a lease the pause caught may be stale
// from the pause until the zklockd says on waking that the lease is lost
// (pausedLease); the resource's refusal is what protects the lock then. A
// grant received in the pause was sent before it.
//
// A semaphore's holders overlap, each with a token of its own: the
// resource refuses a write of a lease it knows ended (its client released
// it or heard it lost, or ZooKeeper no longer has its lease node), and a
// write of an (N+1)th lease while N others it has not seen end wrote; so
// every write of a semaphore must be accepted, but for the writes a pause
// caught. A refusal of the first kind is I1's, of the second I2's. Its
// grants may reach their clients out of order, as they need not wait for
// each other: each grant's token must be higher than that of every grant
// of the semaphore received before its Acquire began (its lease node was
// created later), within one ZooKeeper history.
func (h *history) checkTokens(v *verdict, events []record) {
	type key struct {
		history int
		lock    string
	}
	what := func(w record) string {
		if w.refused {
			return "refused"
		}
		return "accepted"
	}
	highest := map[key]record{}
	for _, w := range h.writes {
		if g, ok := h.grantOf(w.op); ok && h.historyAt(g.at) != w.history {
			v.i1 = append(v.i1, fmt.Sprintf("I1 %s: %s wrote with token %d at %s (%s), of ZooKeeper history %d (granted %s), once the resource had reset its high-water marks for history %d",
				w.lock, w.op, w.token, clock(w.at), what(w), h.historyAt(g.at), clock(g.at), w.history))
		}
		if h.capacity(w.lock) > 1 {
			switch {
			case !w.refused || h.fencedInPause(w):
			case w.detail == semFull:
				v.i2 = append(v.i2, fmt.Sprintf("I2 %s: %s wrote with token %d at %s, refused: %d other leases of the semaphore of %d permits wrote and had not ended",
					w.lock, w.op, w.token, clock(w.at), h.capacity(w.lock), h.capacity(w.lock)))
			default:
				v.i1 = append(v.i1, fmt.Sprintf("I1 %s: %s wrote with token %d at %s, refused: the resource knew the lease ended (%s)",
					w.lock, w.op, w.token, clock(w.at), w.detail))
			}
			continue
		}
		k := key{w.history, w.lock}
		if hi, ok := highest[k]; ok && w.token < hi.token && !h.fencedInPause(w) {
			v.i1 = append(v.i1, fmt.Sprintf("I1 %s: %s wrote with token %d at %s (%s) after %s wrote with token %d",
				w.lock, w.op, w.token, clock(w.at), what(w), hi.op, hi.token))
		}
		if hi, ok := highest[k]; !w.refused && (!ok || w.token > hi.token) {
			highest[k] = w
		}
	}
	last := map[key]record{}
	seen := map[key]record{}      // a semaphore's highest token received so far
	before := map[string]record{} // per op of a semaphore: seen when it began to acquire
	for _, g := range events {
		if h.capacity(g.lock) > 1 {
			k := key{h.historyAt(g.at), g.lock}
			switch g.kind {
			case "acquire":
				if s, ok := seen[k]; ok {
					before[g.op] = s
				}
			case "granted":
				if b, ok := before[g.op]; ok && h.historyAt(b.at) == k.history && g.token <= b.token {
					v.i1 = append(v.i1, fmt.Sprintf("I1 %s: %s granted token %d at %s, though %s was granted token %d at %s, before %s asked",
						g.lock, g.op, g.token, clock(g.at), b.op, b.token, clock(b.at), g.op))
				}
				if s, ok := seen[k]; !ok || g.token > s.token {
					seen[k] = g
				}
			}
			continue
		}
		if g.kind != "granted" || h.sentBeforePause(g) {
			continue
		}
		k := key{h.historyAt(g.at), g.lock}
		if prev, ok := last[k]; ok && g.token <= prev.token {
			v.i1 = append(v.i1, fmt.Sprintf("I1 %s: %s granted token %d at %s after %s was granted token %d at %s",
				g.lock, g.op, g.token, clock(g.at), prev.op, prev.token, clock(prev.at)))
		}
		last[k] = g
	}
}

// fencedInPause reports whether a stale write w is the one exception of
// I1: a write of a lease a pause caught, before its zklockd said on waking
// that it is lost.
func (h *history) fencedInPause(w record) bool {
	for i := range h.faults {
		f := &h.faults[i]
		if until, ok := h.pausedLease(w.op, f); ok && !w.at.Before(f.start) && !w.at.After(until) {
			return true
		}
	}
	return false
}

// sentBeforePause reports whether grant g reached its client after its
// zklockd was paused, having been sent before.
func (h *history) sentBeforePause(g record) bool {
	for i := range h.faults {
		f := &h.faults[i]
		if _, ok := h.pausedLease(g.op, f); ok && !g.at.Before(f.start) {
			return true
		}
	}
	return false
}

// checkOverlaps is I2: no two vouched intervals of one lock overlap, and no
// more than N of a semaphore of N permits. It returns the intervals by lock,
// sorted by start.
func (h *history) checkOverlaps(v *verdict, ivs []*interval) map[string][]*interval {
	byLock := map[string][]*interval{}
	for _, iv := range ivs {
		byLock[iv.lock] = append(byLock[iv.lock], iv)
	}
	for lock, l := range byLock {
		slices.SortFunc(l, func(a, b *interval) int { return a.start.Compare(b.start) })
		if n := h.capacity(lock); n > 1 {
			var held []*interval // the intervals b's start falls in
			for _, b := range l {
				held = slices.DeleteFunc(held, func(a *interval) bool { return !b.start.Before(a.end) })
				if len(held) >= n {
					var who []string
					for _, a := range held {
						who = append(who, fmt.Sprintf("%s (token %d, granted %s, held until %s, %s)", a.op, a.token, clock(a.start), clock(a.end), a.endedBy))
					}
					v.i2 = append(v.i2, fmt.Sprintf("I2 %s: %s (token %d) granted at %s, a permit of %d, while %d held it: %s",
						lock, b.op, b.token, clock(b.start), n, len(held), strings.Join(who, ", ")))
				}
				held = append(held, b)
				v.mostHeld[lock] = max(v.mostHeld[lock], len(held))
			}
			continue
		}
		for i, a := range l {
			for _, b := range l[i+1:] {
				if !b.start.Before(a.end) {
					break
				}
				v.overlaps = append(v.overlaps, overlap{a, b})
				v.i2 = append(v.i2, fmt.Sprintf("I2 %s: %s (token %d) granted at %s while %s (token %d, granted %s) held it until %s (%s)",
					a.lock, b.op, b.token, clock(b.start), a.op, a.token, clock(a.start), clock(a.end), a.endedBy))
			}
		}
	}
	return byLock
}

// checkReentries is I6: a lease granted by re-entering a hold has the
// hold's token; a re-entry of a lease its client holds is granted, or
// refused only for a reason that a fault explains (see refusedCodes); a
// loss of one lease of a hold is a loss of all: each other lease its client
// had not begun to release hears that it is lost too (Lost, a broken stream,
// a Release answered ABORTED), and first, within wakeBound; and its lock's
// node stays while any lease of the hold is live: when ZooKeeper no longer
// had it at a confirmed Release of a lease that left another live (the
// recorder's "node-gone"), the hold must have been lost.
func (h *history) checkReentries(v *verdict) {
	for hold, evs := range h.byOp {
		g, granted := h.grantOf(hold)
		var loss *record
		for i, e := range evs {
			if e.kind == "reentered" && (!granted || e.token != g.token) {
				v.i6 = append(v.i6, fmt.Sprintf("I6 %s: %s re-entered %s (token %d) at %s and got token %d",
					e.lock, e.op, e.detail, g.token, clock(e.at), e.token))
			}
			if e.kind == "queued" && e.op != hold {
				v.i6 = append(v.i6, fmt.Sprintf("I6 %s: %s, a re-entry, was queued at %s", e.lock, e.op, clock(e.at)))
			}
			if loss == nil && losesHold(e) {
				loss = &evs[i]
			}
		}
		for _, e := range evs {
			if e.kind == "node-gone" && loss == nil {
				v.i6 = append(v.i6, fmt.Sprintf("I6 %s: %s released at %s while another lease of its hold lived, and ZooKeeper no longer had the lock's node with token %d, but the hold was not lost",
					e.lock, e.op, clock(e.at), e.token))
			}
		}
		if loss == nil {
			continue
		}
		// The leases live when the loss came, or granted after it (a
		// re-entry's grant may reach its client before the loss it
		// preceded, or after).
		for _, e := range evs {
			if (e.kind != "granted" && e.kind != "reentered") || e.op == loss.op {
				continue
			}
			from := loss.at
			if e.at.After(from) {
				from = e.at
			}
			var said *record
			released := false
			for i, w := range h.byLease[e.op] {
				if w.kind == "release" && !w.at.After(loss.at) {
					released = true
				}
				if w.kind == "release-failed" && (w.detail == "DeadlineExceeded" || w.detail == "Canceled") {
					continue
				}
				if said == nil && zklockdWords[w.kind] && !w.at.Before(from) {
					said = &h.byLease[e.op][i]
				}
			}
			switch {
			case released:
			case said == nil:
				v.i6 = append(v.i6, fmt.Sprintf("I6 %s: %s heard at %s that its hold (token %d) is lost (%s), but %s, of the same hold, heard nothing after it",
					loss.lock, loss.op, clock(loss.at), g.token, words(*loss), e.op))
			case !saysLost(*said) || said.at.After(from.Add(wakeBound)):
				v.i6 = append(v.i6, fmt.Sprintf("I6 %s: %s heard at %s that its hold (token %d) is lost (%s), but %s, of the same hold, heard %q at %s",
					loss.lock, loss.op, clock(loss.at), g.token, words(*loss), e.op, words(*said), clock(said.at)))
			}
		}
	}
}

// checkFaultsCost checks that every partition and pause hit a holder and
// cost it its lease: the holder heard Lost{SESSION_EXPIRED}.
func (h *history) checkFaultsCost(v *verdict) {
	for _, f := range h.faults {
		if !leaseFaults[f.kind] {
			continue
		}
		v.leaseFaults++
		if f.holder.op == "" {
			v.unfelt = append(v.unfelt, fmt.Sprintf("%s at %s hit no holder", f.kind, clock(f.start)))
			continue
		}
		holder := f.holder
		if f.kind == "handoff-cut" {
			g, ok := h.handedOn(&f)
			if !ok {
				v.unfelt = append(v.unfelt, fmt.Sprintf("handoff-cut of zklockd %d at %s: %s released, but its zklockd handed %s to none of its waiters while cut off",
					f.daemon, clock(f.start), f.holder.op, f.holder.lock))
				continue
			}
			v.handoffsCut++
			holder = g
		}
		lost := false
		for _, e := range h.byOp[holder.op] {
			if e.kind == "lost" && strings.HasSuffix(e.detail, "SESSION_EXPIRED") && e.at.After(f.start) {
				lost = true
				break
			}
		}
		if lost {
			v.lostToFaults++
			continue
		}
		said := "nothing"
		if w, ok := h.firstWord(holder.op, f.start); ok {
			said = fmt.Sprintf("%s %s at %s", w.kind, w.detail, clock(w.at))
		}
		v.unfelt = append(v.unfelt, fmt.Sprintf("%s of zklockd %d at %s did not cost %s (granted %s) its lease: it heard %s, want Lost SESSION_EXPIRED",
			f.kind, f.daemon, clock(f.start), holder.op, clock(holder.at), said))
	}
}

// handedOn returns the grant a handoff cut's holder handed its lock to: the
// first grant of that lock to a client of the same zklockd while it was cut
// off.
func (h *history) handedOn(f *fault) (record, bool) {
	var first record
	for _, evs := range h.byOp {
		for _, e := range evs {
			if e.kind == "granted" && e.lock == f.holder.lock && e.op != f.holder.op && h.daemonOf[e.client] == f.daemon &&
				e.at.After(f.start) && e.at.Before(f.woke) && (first.op == "" || e.at.Before(first.at)) {
				first = e
			}
		}
	}
	return first, first.op != ""
}

// checkRegrants is I5: a released lock is granted again within
// releasedRegrant to a caller already waiting; a crashed holder's within
// crashRegrant. Not measured while another fault may slow ZooKeeper or the
// waiters.
func (h *history) checkRegrants(v *verdict, ivs []*interval, byLock map[string][]*interval, acquired map[string]time.Time) {
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
		if cause == nil {
			v.releaseRegrants = append(v.releaseRegrants, d)
		}
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
}

// intervals builds the holds from the events, and returns them with the
// time each op began to acquire. A hold ends when its client begins to
// release the last of its leases, or hears that one of them is lost.
func (h *history) intervals(v *verdict, events []record) ([]*interval, map[string]time.Time) {
	acquired := map[string]time.Time{}
	killed := map[string]time.Time{}
	byOp := map[string]*interval{}
	live := map[string]map[string]bool{} // per hold, its leases not yet released
	var ivs []*interval
	for _, e := range events {
		iv := byOp[holdOf(e.op)]
		if iv != nil && !iv.end.IsZero() {
			iv = nil // ended
		}
		switch e.kind {
		case "acquire":
			acquired[e.op] = e.at
		case "granted":
			iv := &interval{op: e.op, client: e.client, lock: e.lock, daemon: h.daemonOf[e.client], token: e.token, start: e.at}
			byOp[e.op] = iv
			live[e.op] = map[string]bool{e.op: true}
			ivs = append(ivs, iv)
		case "reentered":
			if iv != nil {
				live[iv.op][e.op] = true
			}
		case "release":
			if iv != nil {
				delete(live[iv.op], e.op)
				if len(live[iv.op]) == 0 {
					iv.end, iv.endedBy = e.at, e.kind
				}
			}
		case "lost", "error", "release-failed", "reenter-failed":
			if iv != nil && losesHold(e) {
				iv.end, iv.endedBy = e.at, e.kind
			}
		case "killed":
			killed[e.client] = e.at
		}
	}
	h.rawEnd = map[string]time.Time{}
	for _, iv := range ivs {
		if iv.end.IsZero() {
			if k, ok := killed[iv.client]; ok && k.After(iv.start) {
				iv.end, iv.endedBy = k, "killed"
			} else {
				iv.end, iv.endedBy = h.end, "never released"
			}
		}
		h.rawEnd[iv.op] = iv.end
	}
	// A zklockd vouches for nothing once it is dead. A paused zklockd
	// cannot tell its holders anything, and vouches until its own clock's
	// deadline only if, once it woke, the first thing it said about each
	// lease was that it is lost; anything else (Suspended, Resumed, a
	// Release answered OK) is a violation, and the lease runs on.
	for _, f := range h.faults {
		switch f.kind {
		case "zklockd-kill":
			for _, iv := range ivs {
				if iv.daemon == f.daemon && !f.start.Before(iv.start) && f.start.Before(iv.end) {
					iv.end, iv.endedBy = f.start, "vouched until (zklockd-kill)"
				}
			}
		case "pause":
			until := h.ownDeadline(f.start)
			for _, iv := range ivs {
				if iv.daemon != f.daemon || !until.Before(iv.end) {
					continue
				}
				if _, ok := h.pausedLease(iv.op, &f); !ok {
					continue
				}
				w, said := h.wakeWord(iv.op, &f)
				switch {
				case said && !saysLost(w):
					v.i2 = append(v.i2, fmt.Sprintf("I2 %s: %s (token %d): its zklockd, paused at %s past its deadline %s, said %q at %s on waking, not that the lease was lost",
						iv.lock, iv.op, iv.token, clock(f.start), clock(until), strings.TrimSpace(w.kind+" "+w.detail), clock(w.at)))
					continue
				case !said && iv.end.After(f.woke.Add(wakeBound)):
					v.i2 = append(v.i2, fmt.Sprintf("I2 %s: %s (token %d): its zklockd, paused at %s past its deadline %s, said nothing about the lease within %v of waking at %s",
						iv.lock, iv.op, iv.token, clock(f.start), clock(until), wakeBound, clock(f.woke)))
					continue
				}
				iv.end, iv.endedBy = until, "vouched until (pause)"
				if iv.start.After(until) { // a grant sent before the pause, received after the deadline
					iv.end = iv.start
				}
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
