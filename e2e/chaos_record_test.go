package e2e

import (
	"bufio"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// recorder is the chaos run's fenced resource and its witness. Client
// processes report every step to it over TCP (chaosClient.report), and
// write to the resource through it: a write carries the writer's fencing
// token, and a token lower than the highest the resource has accepted for
// that lock is refused ("stale"), as a fenced store would. Every write is
// recorded, refused or not, for I1. After a confirmed Release it checks,
// before answering, that ZooKeeper no longer has the released node (I4).
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

func startRecorder(t *testing.T, c *zk.Conn, root string) *recorder {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{lis: lis, zk: c, root: root,
		conns: make(map[net.Conn]struct{}), maxToken: make(map[string]int64), holding: make(map[string]record),
		waiting: make(map[string]record), daemonOf: make(map[string]int),
		successors: make(map[string]int64), release: make(map[string]bool), grants: make(map[string]time.Time)}
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
		r.checkGone(rec)
	case "granted":
		successor = r.checkHead(rec)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ans := "ok"
	switch rec.kind {
	case "write":
		rec.history = r.history
		rec.refused = rec.token < r.maxToken[rec.lock]
		r.writes = append(r.writes, rec) // writes are not events
		if r.release[rec.op] {
			delete(r.release, rec.op)
			ans = "release"
		}
		if rec.refused {
			return "stale"
		}
		r.maxToken[rec.lock] = rec.token
		return ans
	case "acquire":
		r.waiting[rec.op] = rec
	case "not-granted", "cancel-wait":
		delete(r.waiting, rec.op)
	case "granted":
		delete(r.waiting, rec.op)
		r.holding[rec.client] = rec
		r.grants[rec.op] = rec.at
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
	case "release", "lost", "error":
		delete(r.holding, rec.client)
	}
	r.events = append(r.events, rec)
	return ans
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
	return r.since
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

// checkGone records an I4 violation if ZooKeeper still has the node of a
// confirmed release: a child of the lock node whose czxid is its token.
// A release of a lease of a ZooKeeper history that was wiped cannot be
// looked at; but if it was confirmed once a new history began, that is a
// violation too: no server could confirm the delete, and the lease's
// zklockd had given it up by its own clock long before (the ensemble was
// down for longer than a session).
func (r *recorder) checkGone(rec record) {
	lockPath := path.Join(r.root, rec.lock)
	r.mu.Lock()
	granted, ok := r.grants[rec.op]
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
	for attempt := 0; attempt < 50; attempt++ {
		if attempt > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		c, ok := r.zkFor(granted)
		if !ok {
			return
		}
		if _, err := c.Sync(lockPath); err != nil && err != zk.ErrNoNode {
			continue
		}
		children, _, err := c.Children(lockPath)
		if err == zk.ErrNoNode {
			return
		}
		if err != nil {
			continue
		}
		looked := true
		for _, ch := range children {
			_, st, err := c.Exists(path.Join(lockPath, ch))
			if err != nil {
				looked = false
				break
			}
			if st != nil && st.Czxid == rec.token {
				r.mu.Lock()
				r.released = append(r.released, fmt.Sprintf("I4 %s: Release of token %d confirmed, node %s still there", rec.op, rec.token, ch))
				r.mu.Unlock()
				return
			}
		}
		if looked {
			return
		}
	}
	r.mu.Lock()
	r.unproven++
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
