package zkrecipes

import (
	"errors"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/tcpproxy"
)

// TestValidChecksItsOwnClock: Valid answers from the clock itself, not from
// what the Session's loop last concluded, so that a process resumed after a
// pause longer than its deadline does not vouch for a hold in the moment
// before the loop wakes (the e2e test TestPausedZklockdSaysLostOnWaking
// pauses a real zklockd). Here the pause is what it leaves behind: a last
// contact older than the deadline, while no reply can move it forward (the
// connection is stalled) and the loop sleeps (it looks every tenth of the
// timeout).
func TestValidChecksItsOwnClock(t *testing.T) {
	zkc := startZK(t)
	p := proxied(t, zkc.Servers()[0])
	const timeout = 20 * time.Second
	s := newSession(t, p.Addr(), timeout)
	h, err := s.Lock(ctxFor(t, 10*time.Second), "/zklock/valid", LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.SetMode(tcpproxy.Stall)
	defer p.SetMode(tcpproxy.Pass)
	if !h.Valid() {
		t.Fatal("hold not valid just after its grant")
	}
	// A reply already past the proxy may still move the last contact
	// forward: wait until it stays put (heartbeats go every 2 s).
	for last := int64(-1); last != s.lastContact.Load(); {
		last = s.lastContact.Load()
		time.Sleep(100 * time.Millisecond)
	}
	s.lastContact.Store(s.now() - int64(timeout))
	if h.Valid() {
		t.Fatal("hold valid although its last contact is a whole session timeout old")
	}
	select {
	case <-h.Done():
	default:
		t.Fatal("Valid found the deadline passed but did not end the epoch")
	}
}

// TestTryOnceWhileSuspended: a try-once Lock answers ErrSuspended at once
// while contact with ZooKeeper is in doubt, sending nothing that would wait
// for the connection.
func TestTryOnceWhileSuspended(t *testing.T) {
	zkc := startZK(t)
	p := proxied(t, zkc.Servers()[0])
	s := newSession(t, p.Addr(), 20*time.Second)
	st, changed := s.State()
	p.SetMode(tcpproxy.Stall)
	defer p.SetMode(tcpproxy.Pass)
	for st.Connected {
		<-changed
		st, changed = s.State()
	}
	start := time.Now()
	if _, err := s.Lock(ctxFor(t, 10*time.Second), "/zklock/suspended", LockOptions{TryOnce: true}); !errors.Is(err, ErrSuspended) {
		t.Errorf("try-once while suspended = %v, want ErrSuspended", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("try-once while suspended took %v", took)
	}
}
