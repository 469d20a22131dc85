package zkrecipes

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/goleak"

	"github.com/zklock/zklock/internal/zktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger logs to stderr when ZKLOCK_TEST_LOG is set, else nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("ZKLOCK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startZK starts a standalone ZooKeeper for one test.
func startZK(t *testing.T) *zktest.Cluster {
	t.Helper()
	return zktest.StartStandalone(t, zktest.WithConfig("4lw.commands.whitelist", "*"))
}

// newSession connects a Session to servers and waits until it is usable.
func newSession(t *testing.T, servers string, timeout time.Duration) *Session {
	t.Helper()
	s, err := Connect(Config{Servers: strings.Split(servers, ","), SessionTimeout: timeout, Logger: testLogger()})
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

// inspector is a plain ZooKeeper client for looking at what the recipes
// left behind.
func inspector(t *testing.T, servers string) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect(strings.Split(servers, ","), 10*time.Second,
		zk.WithLogger(silent{}))
	if err != nil {
		t.Fatalf("zk.Connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

type silent struct{}

func (silent) Printf(string, ...any) {}

// children returns the children of p, none if p does not exist.
func childrenOf(t *testing.T, c *zk.Conn, p string) []string {
	t.Helper()
	ch, _, err := c.Children(p)
	if err == zk.ErrNoNode {
		return nil
	}
	if err != nil {
		t.Fatalf("Children(%s): %v", p, err)
	}
	return ch
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
