package zkrecipes

import (
	"errors"
	"testing"
	"time"
)

// TestRefusedPathIsFinal: a request ZooKeeper refuses for good (here the
// create of a path with a character above U+FFFF; the sidecar checks names
// before they get here) ends Lock with ErrRefused at once, not with an
// error a caller would retry forever, and leaves the Session usable.
func TestRefusedPathIsFinal(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 10*time.Second)
	const bad = "/zklock/orders/\U0001F600"
	if _, err := s.Lock(ctxFor(t, 10*time.Second), bad, LockOptions{}); !errors.Is(err, ErrRefused) {
		t.Errorf("Lock(%q) = %v, want ErrRefused", bad, err)
	}
	if _, err := s.Lock(ctxFor(t, 10*time.Second), "/zklock/orders/ok", LockOptions{TryOnce: true}); err != nil {
		t.Errorf("Lock after the refused one: %v", err)
	}
}
