package zkrecipes

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

// proxied starts a fault-injection proxy in front of a ZooKeeper server.
func proxied(t *testing.T, addr string) *tcpproxy.Proxy {
	t.Helper()
	p, err := tcpproxy.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestCreateAfterConnectionLossFindsItsOwnNode(t *testing.T) {
	zkc := startZK(t)
	p := proxied(t, zkc.Servers()[0])
	s := newSession(t, p.Addr(), 6*time.Second)
	ins := zktest.Client(t, zkc.ConnectString())
	const lockPath = "/zklock/lostreply"
	// Make the lock node exist, so that the create below is the only write.
	h, err := s.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	holder := h.n.getName()

	// The server applies the waiter's create, but its reply never arrives.
	p.SetMode(tcpproxy.DropReplies)
	done := make(chan error, 1)
	queued := make(chan [2]int, 10) // the waiter's position and queue length
	var hold *Hold
	go func() {
		var err error
		hold, err = s.Lock(context.Background(), lockPath, LockOptions{OnQueued: func(pos, n int) { queued <- [2]int{pos, n} }})
		done <- err
	}()
	zktest.Eventually(t, 10*time.Second, "the waiter's node is created", func() bool {
		return len(zktest.Children(t, ins, lockPath)) == 2
	})
	p.Cut()
	p.SetMode(tcpproxy.Pass)

	// Once reconnected, the waiter must find its node rather than make a
	// second one: it queues behind the holder, and no other node appeared.
	select {
	case q := <-queued:
		if q != [2]int{1, 2} {
			t.Errorf("waiter queued at position %d of %d, want 1 of 2", q[0], q[1])
		}
	case err := <-done:
		t.Fatalf("waiter's Lock returned %v before it queued", err)
	case <-time.After(20 * time.Second):
		t.Fatal("waiter not queued 20s after the cut")
	}
	if c := zktest.Children(t, ins, lockPath); len(c) != 2 {
		t.Fatalf("nodes after reconnecting: %v, want the holder's and one waiter's", c)
	}
	if err := h.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waiter's Lock: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("waiter not granted 20s after the holder released: a second node of its own blocks it? nodes: %v",
			zktest.Children(t, ins, lockPath))
	}
	c := zktest.Children(t, ins, lockPath)
	if len(c) != 1 || c[0] == holder || c[0] != hold.n.getName() {
		t.Errorf("nodes once the waiter holds: %v, want only its node %s", c, hold.n.getName())
	}
	if err := hold.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestLostBeforeAnotherIsGranted checks the safety rule of the session's
// own clock: when ZooKeeper is cut off, the holder is told Suspended, then
// Lost, before ZooKeeper can grant the lock to anyone else. The goroutine
// granted checks at once, so the test's goroutine waking late cannot blur
// the order: A's own clock, asked then, must not vouch for the hold (the
// hard rule: a sidecar asks it before it answers), and A must have been
// told already (its clock ended the epoch by itself, a quarter of the
// timeout before ZooKeeper could).
func TestLostBeforeAnotherIsGranted(t *testing.T) {
	zkc := startZK(t)
	p := proxied(t, zkc.Servers()[0])
	const timeout = 3 * time.Second
	a := newSession(t, p.Addr(), timeout)
	b := newSession(t, zkc.ConnectString(), timeout)
	const lockPath = "/zklock/partition"
	ha, err := a.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type grant struct {
		err   error
		at    time.Time
		lost  bool // A's hold had ended (Done closed) when B was granted
		valid bool // then A's own clock, asked, still vouched for its hold
	}
	granted := make(chan grant, 1)
	go func() {
		hb, err := b.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{})
		g := grant{err: err, at: time.Now()}
		select {
		case <-ha.Done():
			g.lost = true
		default:
		}
		g.valid = ha.Valid() // after Done: Valid ends an epoch past its deadline
		granted <- g
		if err == nil {
			hb.Release(context.Background())
		}
	}()

	st, changed := a.State()
	stallAt := time.Now()
	p.SetMode(tcpproxy.Stall)
	for st.Connected {
		<-changed
		st, changed = a.State()
	}
	suspended := time.Now()
	<-ha.Done()
	lostAt := time.Now()
	g := <-granted
	p.SetMode(tcpproxy.Pass)
	if g.err != nil {
		t.Fatalf("B's Lock: %v", g.err)
	}

	t.Logf("suspended after %v, lost after %v, other granted after %v",
		suspended.Sub(stallAt), lostAt.Sub(stallAt), g.at.Sub(stallAt))
	if g.valid {
		t.Errorf("A's hold still valid by its own clock when B was granted, %v after the cut: two holders", g.at.Sub(stallAt))
	}
	if !g.lost {
		t.Errorf("A's hold not yet lost when B was granted, %v after the cut (A learnt it %v after)", g.at.Sub(stallAt), lostAt.Sub(stallAt))
	}
	if ha.Valid() {
		t.Error("hold still valid after its epoch ended")
	}
	if err := ha.Release(ctxFor(t, time.Second)); !errors.Is(err, ErrLost) {
		t.Errorf("Release of a lost hold = %v, want ErrLost", err)
	}
	// A gets a new session and can lock again.
	waitEpoch(t, a, ha.Epoch().ID())
	h, err := a.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{})
	if err != nil {
		t.Fatalf("Lock after the new session: %v", err)
	}
	if h.Epoch().SessionID() == ha.Epoch().SessionID() {
		t.Errorf("same session 0x%x after expiry", h.Epoch().SessionID())
	}
	if err := h.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestEpochEndedOnSurvivingSessionLeavesNoOrphan covers a session that
// outlives the epoch its holders were told was lost: the Session must
// delete the old nodes itself, and re-queue its waiters.
//
// ZooKeeper's replies are dropped while its requests get through: the
// Session's clock sees no contact and ends the epoch at 3/4 of the
// timeout, while ZooKeeper keeps hearing the client's pings, and its
// reconnect request if its library gives up on the connection first, so
// the session cannot expire during the cut. Once the hold is lost, the cut
// heals and the connection is closed (a reconnect whose reply was dropped
// would otherwise wait for it for ten times the read timeout). The library
// reconnects within a second, while ZooKeeper keeps the session at least
// 2/3 of the timeout after the last ping it heard: over 4 s of slack here.
func TestEpochEndedOnSurvivingSessionLeavesNoOrphan(t *testing.T) {
	zkc := startZK(t)
	p := proxied(t, zkc.Servers()[0])
	const timeout = 8 * time.Second
	a := newSession(t, p.Addr(), timeout)
	b := newSession(t, zkc.ConnectString(), timeout)
	ins := zktest.Client(t, zkc.ConnectString())
	const lockPath = "/zklock/survivor"
	ctx := ctxFor(t, 2*time.Minute)

	hb, err := b.Lock(ctx, lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ha, err := a.Lock(ctx, "/zklock/survivor-held", LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A waiter of A's, queued behind B.
	queued := make(chan struct{})
	var once sync.Once
	waited := make(chan *Hold, 1)
	go func() {
		h, err := a.Lock(ctx, lockPath, LockOptions{OnQueued: func(int, int) { once.Do(func() { close(queued) }) }})
		if err != nil {
			t.Errorf("A's waiter: %v", err)
		}
		waited <- h
	}()
	<-queued
	oldWaiter := zktest.Children(t, ins, lockPath)
	sid := ha.Epoch().SessionID()

	p.SetMode(tcpproxy.DropReplies)
	<-ha.Done() // lost by A's clock; ZooKeeper still hears A
	p.SetMode(tcpproxy.Pass)
	p.Cut()

	e := waitEpoch(t, a, ha.Epoch().ID())
	if e.SessionID() != sid {
		t.Fatalf("session 0x%x expired (new 0x%x), though ZooKeeper heard from it all along", sid, e.SessionID())
	}
	zktest.Eventually(t, 10*time.Second, "the lost hold's node is deleted", func() bool {
		ok, _, err := ins.Exists(ha.Path())
		return err == nil && !ok
	})
	// Its node is gone, but not by a release within its epoch.
	if err := ha.Release(ctxFor(t, time.Second)); !errors.Is(err, ErrLost) {
		t.Errorf("Release of a hold whose epoch ended = %v, want ErrLost", err)
	}
	// The waiter queued again on the new epoch; its old node is gone.
	zktest.Eventually(t, 10*time.Second, "the waiter re-queues with a new node", func() bool {
		c := zktest.Children(t, ins, lockPath)
		return len(c) == 2 && !slicesContainAll(c, oldWaiter)
	})
	if err := hb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	h := <-waited
	if h == nil {
		return
	}
	if h.Epoch() != e {
		t.Errorf("waiter granted in epoch %d, want %d", h.Epoch().ID(), e.ID())
	}
	if err := h.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if c := zktest.Children(t, ins, lockPath); len(c) != 0 {
		t.Errorf("orphans: %v", c)
	}
}

func slicesContainAll(have, want []string) bool {
	all := strings.Join(have, "\n") + "\n"
	for _, w := range want {
		if !strings.Contains(all, w+"\n") {
			return false
		}
	}
	return true
}

// TestShorterGrantedTimeoutIsUsed asks for a longer session than the server
// allows: the Session must judge by the timeout granted, and hold its epoch
// steadily.
func TestShorterGrantedTimeoutIsUsed(t *testing.T) {
	zkc := zktest.StartStandalone(t, zktest.WithMaxSessionTimeout(2*time.Second))
	s := newSession(t, zkc.ConnectString(), 10*time.Second)
	if got := s.Timeout(); got != 2*time.Second {
		t.Fatalf("Timeout() = %v, want the 2s granted", got)
	}
	st, _ := s.State()
	time.Sleep(3 * time.Second)
	if now, _ := s.State(); now.Epoch != st.Epoch || !now.Connected {
		t.Errorf("epoch %v connected %v after 3s, want epoch %d still live", now.Epoch, now.Connected, st.Epoch.ID())
	}
}

// TestHoldSurvivesLosingItsServer: in a 3-server ensemble, the server the
// holder's session uses is killed. The session moves to another server
// within its timeout: the hold is kept (no epoch ends) and nobody else is
// granted the lock meanwhile.
func TestHoldSurvivesLosingItsServer(t *testing.T) {
	zkc := zktest.StartEnsemble(t, 3)
	// The holder may use only servers 0 and 1; the rival only server 2, so
	// that it keeps its session whichever server dies.
	a := newSession(t, zkc.Servers()[0]+","+zkc.Servers()[1], 10*time.Second)
	b := newSession(t, zkc.Servers()[2], 10*time.Second)
	const lockPath = "/zklock/failover"
	ctx := ctxFor(t, time.Minute)
	h, err := a.Lock(ctx, lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rival := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		hb, err := b.Lock(rctx, lockPath, LockOptions{})
		if err == nil {
			hb.Release(context.Background())
		}
		rival <- err
	}()

	victim := 0
	if a.conn().Server() == zkc.Servers()[1] {
		victim = 1
	}
	zkc.Server(victim).Kill()
	zktest.Eventually(t, 20*time.Second, "the holder reconnects to the other server", func() bool {
		st, _ := a.State()
		return st.Connected && a.conn().Server() != zkc.Servers()[victim]
	})
	select {
	case <-h.Done():
		t.Fatal("hold lost although its session moved within the timeout")
	case err := <-rival:
		t.Fatalf("rival's Lock returned %v while the lock was held", err)
	case <-time.After(2 * time.Second):
	}
	if !h.Valid() {
		t.Fatal("hold not valid after the move")
	}
	if err := h.Release(ctx); err != nil {
		t.Fatalf("Release after the move: %v", err)
	}
	if err := <-rival; err != nil {
		t.Fatalf("rival's Lock after the release: %v", err)
	}
}

// TestLostCreateReplyLeavesNoNodeOnEnsemble: on a 3-server ensemble, with
// the session on a follower, the reply of a contender's create is lost and
// the Lock call ends meanwhile: the node was made, but its name is unknown.
// The janitor finds it by its prefix (after a sync: a lagging follower
// might not show it yet) and deletes it, so that it does not block the lock
// until the session ends.
func TestLostCreateReplyLeavesNoNodeOnEnsemble(t *testing.T) {
	ens := zktest.StartEnsemble(t, 3)
	follower := (ens.Leader() + 1) % ens.Size()
	p := proxied(t, ens.Server(follower).Addr())
	const timeout = 10 * time.Second
	s := newSession(t, p.Addr(), timeout)
	other := newSession(t, ens.ConnectString(), timeout)
	ins := zktest.Client(t, ens.ConnectString())
	const lockPath = "/zklock/janitor"
	e := waitEpoch(t, s, 0)
	if err := s.ensurePath(ctxFor(t, 10*time.Second), e, lockPath); err != nil {
		t.Fatal(err)
	}

	// The create reaches ZooKeeper but its reply is dropped; the call
	// gives up meanwhile.
	p.SetMode(tcpproxy.DropReplies)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := s.Lock(ctx, lockPath, LockOptions{})
		done <- err
	}()
	zktest.Eventually(t, timeout/2, "the create whose reply is dropped reaches ZooKeeper", func() bool {
		_, err := ins.Sync(lockPath) // ins may be on a lagging server
		return err == nil && len(zktest.Children(t, ins, lockPath)) == 1
	})
	<-ctx.Done()
	p.SetMode(tcpproxy.Pass)
	p.Cut() // the client reconnects at once
	if err := <-done; err == nil {
		t.Fatal("Lock succeeded with its reply dropped and its context ended")
	}
	zktest.Eventually(t, timeout, "the janitor deleted the node of the lost reply", func() bool {
		_, err := ins.Sync(lockPath)
		return err == nil && len(zktest.Children(t, ins, lockPath)) == 0
	})
	if !s.Valid(e) {
		t.Fatal("the session ended: its node went with it, not by the janitor")
	}
	h, err := other.Lock(ctxFor(t, 10*time.Second), lockPath, LockOptions{TryOnce: true})
	if err != nil {
		t.Fatalf("another session's try-once after the janitor's delete: %v", err)
	}
	h.Release(ctxFor(t, 10*time.Second))
}
