package e2e

import (
	"bufio"
	"fmt"
	"maps"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zklock/zklock/zkrecipes"
)

// recorder is the chaos run's fenced resource and its witness. Client
// processes report every step to it over TCP (chaosClient.report), and
// write to the resource through it: a write carries the writer's fencing
// token, and a token lower than the highest the resource has accepted for
// that lock is refused ("stale"), as a fenced store would. Every write is
// recorded, refused or not, for I1. After a confirmed Release it checks,
// before answering, that ZooKeeper no longer has the released node (I4),
// or, if the released lease re-entered a hold (or was re-entered) whose
// other leases live on, that it still has it (I6).
//
// A semaphore of N permits has N holders at once, each with a token of its
// own, so the resource fences it otherwise (semWrite): it admits the tokens
// of at most N leases, and refuses the token of a lease it knows ended (its
// client began to release it, heard it lost or was killed, or ZooKeeper no
// longer has its lease node), and that of an (N+1)th lease while the N it
// admitted have not ended.
//
// An ensemble wipe starts a new ZooKeeper history, whose tokens are lower:
// the resource's high-water marks are reset then, as an operator would
// (docs/operations.md), and its own ZooKeeper client, which the fresh
// servers would refuse for ever, is replaced (historyEnds, historyBegins).
//
// Before a fault that must cost a holder its lease, the test asks it to
// designate one (designate): the next client granted a lock is answered
// "hold" instead of "ok", and holds that lock until it loses it.
type recorder struct {
	lis  net.Listener
	root string
	wg   sync.WaitGroup
	// checks counts the checks in ZooKeeper still running: a client waits
	// for one at most checkWait, so that a ZooKeeper outage does not hold
	// up its reading of its streams (it would hear Lost late).
	checks sync.WaitGroup

	mu sync.Mutex
	// zk is the test's own client, for the checks in ZooKeeper at grants
	// and releases; a new one replaces it at each wipe.
	zk *zk.Conn
	// history counts the ZooKeeper histories begun after the first: the
	// ensemble wipes. since is when the current one began, and ended tells
	// that its servers are gone (a wipe is under way): a check in
	// ZooKeeper of anything granted before since, or while ended, is
	// impossible (the data is gone), and counted in wiped.
	history  int
	since    time.Time
	ended    bool
	wiped    int
	grants   map[string]time.Time // per op, when its client received its grant
	conns    map[net.Conn]struct{}
	events   []record
	maxToken map[string]int64  // per lock, the highest token the resource accepted
	writes   []record          // every write, in the order the resource took them
	holding  map[string]record // per client, its grant while it holds
	waiting  map[string]record // per op, its acquire while it waits
	daemonOf map[string]int    // client → its zklockd
	released []string          // I4 violations
	unproven int               // confirmed releases that could not be checked
	foreign  []string          // I2 violations seen in ZooKeeper at a grant
	unseen   int               // grants whose node could not be looked at
	// successors maps lock → the token (czxid) of the node right behind a
	// designated holder's, when that node is of the same session: the grant
	// a local handoff will make is answered "hold" too.
	successors map[string]int64
	release    map[string]bool // ops whose next write is answered "release"
	arm        *designation    // the designation in progress, if any

	permits map[string]int          // semaphore → its permits (a name not in it is a lock)
	holds   map[string]*recHold     // per hold (its first lease's op), what its client reported
	sems    map[string]*semResource // per semaphore, the resource's state, in the current history
	// unjudged counts semaphore writes the resource accepted without
	// knowing whether N other leases still held (ZooKeeper unreachable).
	unjudged int
}

// recHold is a hold as its client reported it: the lease it was granted and
// the leases that re-entered it.
type recHold struct {
	lock   string
	token  int64
	client string
	live   map[string]bool // its leases not yet released, by op
	closed bool            // one of its leases was released by closing its stream (or a re-entry given up)
	ended  string          // why it ended, once it did
}

// semResource is the fenced resource's state for one semaphore.
type semResource struct {
	admitted map[int64]bool   // tokens of leases that wrote and have not ended
	ended    map[int64]string // tokens of leases known ended, and how
}

// designation is a request for a holder to hold its lock through a fault.
type designation struct {
	otherWaiter bool          // only a lock that a client of another zklockd waits for
	successor   bool          // only a holder whose node is followed by one of its own session's
	chosen      chan designee // receives the grant chosen
}

// designee is the grant a designation chose.
type designee struct {
	grant record
	rival bool // a client of another zklockd waited for the lock then
}

// record is one step of a client (or of the test, for a kill), as reported.
type record struct {
	kind    string
	at      time.Time
	op      string // client.n
	client  string
	lock    string
	token   int64
	detail  string
	refused bool // a write the resource refused for a stale token
	// history, of a write: how many ZooKeeper histories had begun after
	// the first when the resource took it (its high-water marks are reset
	// at each ensemble wipe).
	history int
}

// startRecorder starts the recorder of locks and semaphores under root in
// ZooKeeper; permits maps each semaphore's name to its permits.
func startRecorder(t *testing.T, c *zk.Conn, root string, permits map[string]int) *recorder {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{lis: lis, zk: c, root: root,
		conns: make(map[net.Conn]struct{}), maxToken: make(map[string]int64), holding: make(map[string]record),
		waiting: make(map[string]record), daemonOf: make(map[string]int),
		successors: make(map[string]int64), release: make(map[string]bool), grants: make(map[string]time.Time),
		permits: permits, holds: make(map[string]*recHold), sems: make(map[string]*semResource)}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *recorder) addr() string { return r.lis.Addr().String() }

func (r *recorder) close() {
	r.lis.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *recorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.lis.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns[c] = struct{}{}
		r.mu.Unlock()
		r.wg.Add(1)
		go r.serve(c)
	}
}

// serve answers one client's lines until it disconnects.
func (r *recorder) serve(c net.Conn) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		c.Close()
	}()
	in := bufio.NewScanner(c)
	for in.Scan() {
		rec, err := parseRecord(in.Text())
		if err != nil {
			fmt.Fprintf(c, "error %v\n", err)
			return
		}
		ans := r.take(rec)
		if _, err := fmt.Fprintln(c, ans); err != nil {
			return
		}
	}
}

func parseRecord(line string) (record, error) {
	f := strings.Fields(line)
	if len(f) != 6 {
		return record{}, fmt.Errorf("bad record %q", line)
	}
	ns, err1 := strconv.ParseInt(f[1], 10, 64)
	token, err2 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil {
		return record{}, fmt.Errorf("bad record %q", line)
	}
	client, _, _ := strings.Cut(f[2], ".")
	return record{kind: f[0], at: time.Unix(0, ns), op: f[2], client: client, lock: f[3], token: token, detail: f[5]}, nil
}

// take records rec and returns the answer to its client: "ok", "stale" for
// a write it refused, "hold" for a grant to hold through a fault, "release"
// for a write of a lease to release now.
func (r *recorder) take(rec record) string {
	var successor int64
	switch rec.kind {
	case "released":
		r.mu.Lock()
		h := r.holds[holdOf(rec.op)]
		stays, closed := h != nil && h.ended == "" && len(h.live) > 0, h != nil && h.closed
		r.mu.Unlock()
		if stays {
			r.check(func() int64 { r.checkStays(rec); return 0 })
		} else {
			r.check(func() int64 { r.checkGone(rec, closed); return 0 })
		}
	case "granted":
		if r.permits[rec.lock] > 1 {
			r.check(func() int64 { r.checkPermits(rec); return 0 })
		} else {
			successor = r.check(func() int64 { return r.checkHead(rec) })
		}
	case "write":
		if r.permits[rec.lock] > 1 {
			r.semWrite(&rec)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ans := "ok"
	switch rec.kind {
	case "write":
		rec.history = r.history
		if r.permits[rec.lock] <= 1 {
			rec.refused = rec.token < r.maxToken[rec.lock]
		}
		r.writes = append(r.writes, rec) // writes are not events
		if r.release[rec.op] {
			delete(r.release, rec.op)
			ans = "release"
		}
		if rec.refused {
			return "stale"
		}
		if r.permits[rec.lock] <= 1 {
			r.maxToken[rec.lock] = rec.token
		}
		return ans
	case "acquire":
		r.waiting[rec.op] = rec
	case "not-granted", "cancel-wait":
		delete(r.waiting, rec.op)
	case "granted":
		delete(r.waiting, rec.op)
		r.holding[rec.client] = rec
		r.grants[rec.op] = rec.at
		r.holds[rec.op] = &recHold{lock: rec.lock, token: rec.token, client: rec.client, live: map[string]bool{rec.op: true}}
		if tok, ok := r.successors[rec.lock]; ok && tok == rec.token {
			delete(r.successors, rec.lock)
			ans = "hold" // handed the lock by the designated holder
		}
		if r.arm != nil && (!r.arm.successor || successor != 0) {
			if rival := r.otherWaits(rec); rival || !r.arm.otherWaiter {
				r.arm.chosen <- designee{rec, rival}
				r.arm = nil
				ans = "hold"
				if successor != 0 {
					r.successors[rec.lock] = successor
				}
			}
		}
	case "reentered":
		if h := r.holds[holdOf(rec.op)]; h != nil && h.ended == "" {
			h.live[rec.op] = true
		}
	case "release":
		if h := r.holds[holdOf(rec.op)]; h != nil && h.ended == "" {
			delete(h.live, rec.op)
			h.closed = h.closed || rec.detail == "close"
			if len(h.live) == 0 {
				r.holdEnded(h, "release")
			}
		}
	case "lost", "error", "release-failed", "reenter-failed":
		h := r.holds[holdOf(rec.op)]
		if h != nil && rec.kind == "reenter-failed" && rec.detail == gaveUp {
			h.closed = true // a re-entry zklockd may have granted, closed
		}
		if h != nil && h.ended == "" && losesHold(rec) {
			r.holdEnded(h, rec.kind)
		}
	}
	r.events = append(r.events, rec)
	return ans
}

// holdEnded records that h's client stopped using it. r.mu must be held.
func (r *recorder) holdEnded(h *recHold, how string) {
	h.ended = how
	if g, ok := r.holding[h.client]; ok && g.token == h.token && g.lock == h.lock {
		delete(r.holding, h.client)
	}
	if s := r.sems[h.lock]; s != nil && r.permits[h.lock] > 1 {
		delete(s.admitted, h.token)
		s.ended[h.token] = how
	}
}

// semResource returns the resource's state for semaphore name. r.mu must
// be held.
func (r *recorder) semResource(name string) *semResource {
	s := r.sems[name]
	if s == nil {
		s = &semResource{admitted: map[int64]bool{}, ended: map[int64]string{}}
		r.sems[name] = s
	}
	return s
}

// semWrite decides whether the resource takes w, a write to a semaphore:
// it refuses the token of a lease it knows ended, and admits a new token
// only while fewer than N are admitted. When N are, it first looks in
// ZooKeeper for the lease nodes of the admitted tokens, and ends those
// whose node is gone (their zklockd's session expired; a paused zklockd's
// client cannot know yet). It sets w.refused, and w.detail to why.
func (r *recorder) semWrite(w *record) {
	n := r.permits[w.lock]
	r.mu.Lock()
	s := r.semResource(w.lock)
	if how, ok := s.ended[w.token]; ok {
		w.refused, w.detail = true, how
		r.mu.Unlock()
		return
	}
	if s.admitted[w.token] || len(s.admitted) < n {
		s.admitted[w.token] = true
		r.mu.Unlock()
		return
	}
	admitted := slices.Collect(maps.Keys(s.admitted))
	history := r.history
	r.mu.Unlock()

	present, ok := r.leaseTokens(w.lock)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.history != history {
		return // reset meanwhile: a new history admits anew
	}
	s = r.semResource(w.lock)
	if !ok {
		r.unjudged++
		s.admitted[w.token] = true
		return
	}
	for _, tok := range admitted {
		if !present[tok] && s.admitted[tok] {
			delete(s.admitted, tok)
			s.ended[tok] = semGone
		}
	}
	switch how, ended := s.ended[w.token]; {
	case ended:
		w.refused, w.detail = true, how
	case !present[w.token]:
		w.refused, w.detail = true, semGone
		s.ended[w.token] = semGone
	case len(s.admitted) >= n:
		w.refused, w.detail = true, semFull
	default:
		s.admitted[w.token] = true
	}
}

// leaseTokens returns the tokens (czxids) of semaphore name's lease nodes,
// after a sync, and whether it could look.
func (r *recorder) leaseTokens(name string) (map[int64]bool, bool) {
	leases := zkrecipes.SemaphoreLeases(path.Join(r.root, name))
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		r.mu.Lock()
		c, ended := r.zk, r.ended
		r.mu.Unlock()
		if ended {
			return nil, false
		}
		stats, err := nodeStats(c, leases)
		if err != nil {
			continue
		}
		tokens := map[int64]bool{}
		for _, st := range stats {
			tokens[st.Czxid] = true
		}
		return tokens, true
	}
	return nil, false
}

// nodeStats syncs p and returns the stat of each of its children (none if p
// does not exist).
func nodeStats(c *zk.Conn, p string) (map[string]*zk.Stat, error) {
	if _, err := c.Sync(p); err != nil && err != zk.ErrNoNode {
		return nil, err
	}
	children, _, err := c.Children(p)
	if err == zk.ErrNoNode {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	stats := map[string]*zk.Stat{}
	for _, ch := range children {
		found, st, err := c.Exists(path.Join(p, ch))
		if err != nil {
			return nil, err
		}
		if found {
			stats[ch] = st
		}
	}
	return stats, nil
}

// otherWaits reports whether a client of another zklockd than g's waits
// for g's lock. r.mu must be held.
func (r *recorder) otherWaits(g record) bool {
	for _, w := range r.waiting {
		if w.lock == g.lock && r.daemonOf[w.client] != r.daemonOf[g.client] {
			return true
		}
	}
	return false
}

// regrantedElsewhere reports whether g's lock was granted after g to a
// client of another zklockd.
func (r *recorder) regrantedElsewhere(g record) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range slices.Backward(r.events) {
		if !e.at.After(g.at) {
			break
		}
		if e.kind == "granted" && e.lock == g.lock && r.daemonOf[e.client] != r.daemonOf[g.client] {
			return true
		}
	}
	return false
}

// releaseNow makes the recorder answer op's next write with "release":
// its client then releases the lease.
func (r *recorder) releaseNow(op string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.release[op] = true
}

// addClient tells the recorder which zklockd a client uses.
func (r *recorder) addClient(client string, daemon int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.daemonOf[client] = daemon
}

// designate makes the next client granted a lock hold it until it loses
// it, and returns that grant. It prefers a lock that a client of another
// zklockd waits for (so that a wrong grant to that client would show), for
// up to prefer, and then takes any grant, for up to timeout in all. It
// returns false if there was none.
//
// With successor, only a holder whose node in ZooKeeper is followed by a
// node of its own session qualifies: the waiter that a local handoff will
// grant at once when the holder releases. That grant is answered "hold"
// too.
func (r *recorder) designate(successor bool, prefer, timeout time.Duration) (designee, bool) {
	d := &designation{otherWaiter: true, successor: successor, chosen: make(chan designee, 1)}
	r.mu.Lock()
	r.arm = d
	r.mu.Unlock()
	deadline := time.After(timeout)
	relax := time.After(prefer)
	for {
		select {
		case g := <-d.chosen:
			return g, true
		case <-relax:
			r.mu.Lock()
			d.otherWaiter = false
			r.mu.Unlock()
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.arm == d {
				r.arm = nil
				return designee{}, false
			}
			return <-d.chosen, true
		}
	}
}

// historyEnds tells the recorder that the servers of the current ZooKeeper
// history are about to be killed and wiped: checks in ZooKeeper give up
// from now on, and its client is closed (while the servers are still
// there to end its session).
func (r *recorder) historyEnds() {
	r.mu.Lock()
	old := r.zk
	r.zk, r.ended = nil, true
	r.mu.Unlock()
	old.Close()
}

// historyBegins starts a new ZooKeeper history, before the wiped servers
// start: the resource forgets its high-water marks, and c, a new client,
// takes the place of the one historyEnds closed (the fresh servers would
// refuse that one for ever: it saw later transactions than they have). It
// returns when the new history began: a grant received since then is of
// the new history.
func (r *recorder) historyBegins(c *zk.Conn) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.zk = c
	r.history++
	r.since = time.Now()
	r.ended = false
	clear(r.maxToken)
	clear(r.sems)
	return r.since
}

// staysJudged bounds the time from a Release's confirmation to a look in
// ZooKeeper that judges checkStays: below the chaos run's own-clock
// deadline, 3/4 of its 3 s session timeout.
const staysJudged = 2 * time.Second

// checkWait is how long a client's report waits for the check in
// ZooKeeper it asked for; the check goes on without it after that.
const checkWait = 500 * time.Millisecond

// check runs f, a check in ZooKeeper, and returns what it returns if it
// ends within checkWait, else 0 (f goes on: its findings are recorded all
// the same).
func (r *recorder) check(f func() int64) int64 {
	res := make(chan int64, 1)
	r.checks.Add(1)
	go func() {
		defer r.checks.Done()
		res <- f()
	}()
	select {
	case v := <-res:
		return v
	case <-time.After(checkWait):
		return 0
	}
}

// zkFor returns the recorder's ZooKeeper client, and whether a lease
// granted at granted can be looked at with it: the servers of its history
// are still there.
func (r *recorder) zkFor(granted time.Time) (*zk.Conn, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended || granted.Before(r.since) {
		r.wiped++
		return nil, false
	}
	return r.zk, true
}

// nodesOf returns the node whose children are the holders' (and waiters')
// nodes of lock: the lock's own, or a semaphore's leases.
func (r *recorder) nodesOf(lock string) string {
	p := path.Join(r.root, lock)
	if r.permits[lock] > 1 {
		return zkrecipes.SemaphoreLeases(p)
	}
	return p
}

// releasedGrace is how long the node of a hold may outlive the confirmed
// Release of its last lease when another of its leases was released by
// closing its stream: zklockd may not have heard of that close yet, and
// then keeps the node for it.
const releasedGrace = 2 * time.Second

// checkGone records an I4 violation if ZooKeeper still has the node of a
// confirmed release that ended its hold: a child of the lock node (of the
// semaphore's leases) whose czxid is its token; if closed (another lease
// of the hold was released by closing its stream), once releasedGrace has
// passed. A release of a lease of a ZooKeeper history that was wiped
// cannot be looked at; but if it was confirmed once a new history began,
// that is a violation too: no server could confirm the delete, and the
// lease's zklockd had given it up by its own clock long before (the
// ensemble was down for longer than a session).
func (r *recorder) checkGone(rec record, closed bool) {
	r.mu.Lock()
	granted, ok := r.grants[holdOf(rec.op)]
	if !ok {
		granted = rec.at
	}
	if granted.Before(r.since) && !rec.at.Before(r.since) {
		r.released = append(r.released, fmt.Sprintf("I4 %s: Release of token %d, granted at %s, confirmed at %s, after ZooKeeper's data was wiped at %s",
			rec.op, rec.token, clock(granted), clock(rec.at), clock(r.since)))
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	grace := time.Now()
	if closed {
		grace = grace.Add(releasedGrace)
	}
	for attempt := 0; attempt < 50; attempt++ {
		if attempt > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		c, ok := r.zkFor(granted)
		if !ok {
			return
		}
		stats, err := nodeStats(c, r.nodesOf(rec.lock))
		if err != nil {
			continue
		}
		left := ""
		for ch, st := range stats {
			if st.Czxid == rec.token {
				left = ch
			}
		}
		if left == "" {
			return
		}
		if time.Now().Before(grace) {
			continue
		}
		r.mu.Lock()
		r.released = append(r.released, fmt.Sprintf("I4 %s: Release of token %d confirmed, node %s still there", rec.op, rec.token, left))
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	r.unproven++
	r.mu.Unlock()
}

// checkStays looks, at the confirmed Release of a lease that left other
// leases of its hold live, whether ZooKeeper still has the hold's node (the
// child of the lock node, or of the semaphore's leases, whose czxid is its
// token). If not, it records a "node-gone" event: I6 then wants the hold to
// have been lost (its session may have ended meanwhile).
//
// Only a look within staysJudged of the confirmation judges: the Release's
// confirmation proves contact with ZooKeeper then, so the hold cannot be
// lost (by zklockd's clock, or by ZooKeeper's expiry) sooner; later, a
// node gone may be a loss its client has not heard of yet.
func (r *recorder) checkStays(rec record) {
	r.mu.Lock()
	granted, ok := r.grants[holdOf(rec.op)]
	r.mu.Unlock()
	if !ok {
		return
	}
	for attempt := 0; attempt < 50; attempt++ {
		if attempt > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		c, ok := r.zkFor(granted)
		if !ok {
			return
		}
		stats, err := nodeStats(c, r.nodesOf(rec.lock))
		if err != nil {
			continue
		}
		for _, st := range stats {
			if st.Czxid == rec.token {
				return
			}
		}
		if time.Since(rec.at) > staysJudged {
			break // the hold may have been lost since, unheard by its client yet
		}
		r.mu.Lock()
		r.events = append(r.events, record{kind: "node-gone", at: rec.at, op: rec.op, client: rec.client, lock: rec.lock, token: rec.token})
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	r.unproven++
	r.mu.Unlock()
}

// checkPermits records an I2 violation if, when a client reports a grant of
// a semaphore of N permits, ZooKeeper shows N lease nodes older than the
// grantee's (lower czxids) of holds whose clients reported their grant and
// have not stopped using them: since a contender creates its lease node and
// then holds a permit only if at most N lease nodes exist, and nodes never
// come back, those N nodes existed when it was granted.
func (r *recorder) checkPermits(rec record) {
	n := r.permits[rec.lock]
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		c, ok := r.zkFor(rec.at)
		if !ok {
			return
		}
		stats, err := nodeStats(c, r.nodesOf(rec.lock))
		if err != nil {
			continue
		}
		mine := false
		for _, st := range stats {
			mine = mine || st.Czxid == rec.token
		}
		if !mine {
			break // gone with its session
		}
		r.mu.Lock()
		live := map[int64]string{}
		for op, h := range r.holds {
			if h.lock == rec.lock && h.ended == "" && !r.grants[op].Before(r.since) { // tokens of another history may be equal
				live[h.token] = op
			}
		}
		var older []string
		for ch, st := range stats {
			if op, ok := live[st.Czxid]; ok && st.Czxid < rec.token {
				older = append(older, fmt.Sprintf("%s (%s, token %d)", ch, op, st.Czxid))
			}
		}
		if len(older) >= n {
			slices.Sort(older)
			r.foreign = append(r.foreign, fmt.Sprintf("I2 %s: %s granted token %d, a permit of %d, while ZooKeeper had %d older lease nodes of holders: %s",
				rec.lock, rec.op, rec.token, n, len(older), strings.Join(older, ", ")))
		}
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	r.unseen++
	r.mu.Unlock()
}

// checkHead records an I2 violation if, when a client reports a grant,
// ZooKeeper shows a node of another session ahead of the grantee's (the
// child whose czxid is its token) in the lock's queue: the lock was
// granted over a contender that may still hold it. The grantee waits for
// the answer, so its node is there unless its session ended meanwhile.
// Nodes of the grantee's own session may be ahead: its zklockd may hand
// the lock on before ZooKeeper confirmed the delete of its own released
// hold. (The chaos clients take exclusive locks only.)
//
// A grant of a ZooKeeper history that was wiped (or is being wiped)
// cannot be looked at; the grant order (I1) and the intervals (I2) still
// judge it.
//
// It returns the czxid of the node right behind the grantee's if that node
// is of the grantee's session, else 0.
func (r *recorder) checkHead(rec record) int64 {
	lockPath := path.Join(r.root, rec.lock)
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		c, ok := r.zkFor(rec.at)
		if !ok {
			return 0
		}
		if _, err := c.Sync(lockPath); err != nil && err != zk.ErrNoNode {
			continue
		}
		children, _, err := c.Children(lockPath)
		if err != nil {
			continue
		}
		stats := map[string]*zk.Stat{}
		var mine string
		looked := true
		for _, ch := range children {
			found, st, err := c.Exists(path.Join(lockPath, ch))
			if err != nil {
				looked = false
				break
			}
			if found {
				stats[ch] = st
				if st.Czxid == rec.token {
					mine = ch
				}
			}
		}
		if !looked {
			continue
		}
		if mine == "" {
			break // gone with its session
		}
		seq := func(name string) string { return name[max(0, len(name)-10):] } // zero-padded: sorts as numbers
		var next string
		for ch, st := range stats {
			if seq(ch) < seq(mine) && st.EphemeralOwner != stats[mine].EphemeralOwner {
				r.mu.Lock()
				r.foreign = append(r.foreign, fmt.Sprintf("I2 %s: %s granted token %d while ZooKeeper had %s of another session (0x%x) ahead of it",
					rec.lock, rec.op, rec.token, ch, st.EphemeralOwner))
				r.mu.Unlock()
			}
			if seq(ch) > seq(mine) && (next == "" || seq(ch) < seq(next)) {
				next = ch
			}
		}
		if next != "" && stats[next].EphemeralOwner == stats[mine].EphemeralOwner {
			return stats[next].Czxid
		}
		return 0
	}
	r.mu.Lock()
	r.unseen++
	r.mu.Unlock()
	return 0
}

// note records a step taken by the test itself, such as a client's kill.
func (r *recorder) note(kind, client string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.holding, client)
	for _, h := range r.holds {
		if h.client == client && h.ended == "" {
			r.holdEnded(h, kind)
		}
	}
	for op, w := range r.waiting {
		if w.client == client {
			delete(r.waiting, op)
		}
	}
	r.events = append(r.events, record{kind: kind, at: at, client: client})
}

// holder returns a client that holds a lock now, and whether there is one.
func (r *recorder) holder() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cs []string
	for c := range r.holding {
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		return "", false
	}
	slices.Sort(cs)
	return cs[0], true
}
