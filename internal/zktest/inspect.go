package zktest

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// Client returns a plain go-zookeeper client of servers (comma-separated),
// for a test to look at what the code under test left in ZooKeeper. It logs
// nothing and is closed when the test ends.
func Client(t testing.TB, servers string) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect(strings.Split(servers, ","), 10*time.Second, zk.WithLogger(silent{}))
	if err != nil {
		t.Fatalf("zktest: connect to %s: %v", servers, err)
	}
	t.Cleanup(c.Close)
	return c
}

type silent struct{}

func (silent) Printf(string, ...any) {}

// Children returns the children of p, none if p does not exist. It fails
// the test on any other error, so call it from the test's goroutine.
func Children(t testing.TB, c *zk.Conn, p string) []string {
	t.Helper()
	ch, _, err := c.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		t.Fatalf("zktest: children of %s: %v", p, err)
	}
	return ch
}

// Eventually polls cond every 20 ms until it holds, and fails the test with
// what if d passes first.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Logger returns a logger for the code under test: to stderr at debug
// level when ZKLOCK_TEST_LOG is set, else nowhere.
func Logger() *slog.Logger {
	if os.Getenv("ZKLOCK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
