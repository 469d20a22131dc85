package zkrecipes

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zklock/zklock/internal/zktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startZK starts a standalone ZooKeeper for one test.
func startZK(t *testing.T) *zktest.Cluster {
	t.Helper()
	return zktest.StartStandalone(t, zktest.WithConfig("4lw.commands.whitelist", "*"))
}

// newSession connects a Session to servers and waits until it is usable.
func newSession(t *testing.T, servers string, timeout time.Duration) *Session {
	t.Helper()
	s, err := Connect(Config{Servers: strings.Split(servers, ","), SessionTimeout: timeout, Logger: zktest.Logger()})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(s.Close)
	waitEpoch(t, s, 0)
	return s
}

// waitEpoch waits for a live epoch other than not, and returns it.
func waitEpoch(t *testing.T, s *Session, not uint64) *Epoch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		st, changed := s.State()
		if st.Epoch != nil && st.Epoch.ID() != not {
			return st.Epoch
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no live epoch after 30s")
		case <-changed:
		}
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
