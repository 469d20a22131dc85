package zkrecipes

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

// recorder is an Observer that remembers what it was told.
type recorder struct {
	mu         sync.Mutex
	reconnects int
	newClients int
	tokensFell int
	losses     []LossCause
	handoffs   []time.Duration
}

func (r *recorder) Reconnected() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reconnects++
}

func (r *recorder) NewClient() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.newClients++
}

func (r *recorder) TokensFell() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokensFell++
}

func (r *recorder) EpochLost(c LossCause) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.losses = append(r.losses, c)
}

func (r *recorder) Handoff(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handoffs = append(r.handoffs, d)
}

func (r *recorder) snapshot() (reconnects int, losses []LossCause, handoffs []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reconnects, append([]LossCause(nil), r.losses...), append([]time.Duration(nil), r.handoffs...)
}

// TestObserverSeesHandoffLossAndReconnect checks what a Session tells its
// Observer: one handoff when a local hold is released to a local waiter,
// one loss by the own clock when contact stops, a reconnect once it comes
// back, and nothing for Close.
func TestObserverSeesHandoffLossAndReconnect(t *testing.T) {
	zkc := startZK(t)
	p := proxied(t, zkc.Servers()[0])
	rec := &recorder{}
	const timeout = 3 * time.Second
	s, err := Connect(Config{Servers: strings.Split(p.Addr(), ","), SessionTimeout: timeout, Logger: zktest.Logger(), Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitEpoch(t, s, 0)
	const lockPath = "/zklock/observed"

	h1, err := s.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Hold, 1)
	go func() {
		h2, err := s.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{})
		if err != nil {
			t.Errorf("waiter's Lock: %v", err)
		}
		got <- h2
	}()
	zktest.Eventually(t, 10*time.Second, "the waiter watches the holder's node", func() bool {
		s.handoffs.mu.Lock()
		defer s.handoffs.mu.Unlock()
		r := s.handoffs.m[h1.Path()]
		return r != nil && r.watchers == 1
	})
	released := time.Now()
	if err := h1.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	h2 := <-got
	if h2 == nil {
		return
	}
	took := time.Since(released)
	if _, _, handoffs := rec.snapshot(); len(handoffs) != 1 || handoffs[0] <= 0 || handoffs[0] > took {
		t.Fatalf("handoffs %v, want one in (0, %v]", handoffs, took)
	}

	// Contact stops: the own clock ends the epoch before the client
	// library can learn of an expiry (it needs a connection for that).
	p.SetMode(tcpproxy.Stall)
	select {
	case <-h2.Done():
	case <-time.After(3 * timeout):
		t.Fatal("epoch not lost after contact stopped")
	}
	if _, losses, _ := rec.snapshot(); len(losses) != 1 || losses[0] != LossOwnClock {
		t.Fatalf("losses %v, want [%v]", losses, LossOwnClock)
	}
	p.SetMode(tcpproxy.Pass)
	waitEpoch(t, s, h2.Epoch().ID())
	zktest.Eventually(t, 10*time.Second, "a reconnect is reported", func() bool {
		n, _, _ := rec.snapshot()
		return n >= 1
	})

	s.Close()
	reconnects, losses, handoffs := rec.snapshot()
	if len(losses) != 1 || len(handoffs) != 1 {
		t.Errorf("after Close: losses %v, handoffs %v, want one of each", losses, handoffs)
	}
	t.Logf("reconnects %d, losses %v, handoff %v", reconnects, losses, handoffs[0])
}
