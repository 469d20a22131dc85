package zktest_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// quietLogger drops the client library's log lines about the connection
// failures the tests provoke on purpose.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// connect opens a client session and waits until it is established.
func connect(t *testing.T, servers []string) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect(servers, 4*time.Second, zk.WithLogger(quietLogger{}))
	if err != nil {
		t.Fatalf("zk.Connect: %v", err)
	}
	t.Cleanup(conn.Close)
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn
			}
		case <-deadline:
			t.Fatalf("no session with %v", servers)
		}
	}
}

// retry calls fn until it succeeds, for client calls made while servers
// restart or fail over (the client then fails requests with ErrNoServer or
// ErrConnectionClosed until it has reconnected).
func retry(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createRetry creates a node, retrying while the ensemble fails over.
func createRetry(t *testing.T, conn *zk.Conn, path string, data []byte) {
	t.Helper()
	retry(t, "create "+path, func() error {
		_, err := conn.Create(path, data, 0, zk.WorldACL(zk.PermAll))
		if errors.Is(err, zk.ErrNodeExists) {
			return nil // an earlier attempt succeeded after all
		}
		return err
	})
}

func TestStandalone(t *testing.T) {
	t.Parallel()
	c := zktest.StartStandalone(t)
	if got := len(c.Servers()); got != 1 {
		t.Fatalf("Servers() = %d entries, want 1", got)
	}
	if c.ConnectString() != c.Server(0).Addr() {
		t.Fatalf("ConnectString() = %q, Addr() = %q", c.ConnectString(), c.Server(0).Addr())
	}
	reply, err := zktest.FourLetterWord(c.Server(0).Addr(), "ruok", time.Second)
	if err != nil || reply != "imok" {
		t.Fatalf("ruok = %q, %v", reply, err)
	}
	if mode, err := c.Server(0).Mode(); err != nil || mode != "standalone" {
		t.Fatalf("Mode() = %q, %v", mode, err)
	}
	if l := c.Leader(); l != 0 {
		t.Fatalf("Leader() = %d, want 0", l)
	}

	conn := connect(t, c.Servers())
	if _, err := conn.Create("/a", []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create: %v", err)
	}

	// A stop/start cycle keeps the data.
	c.Server(0).Stop()
	if c.Server(0).Running() {
		t.Fatal("Running() after Stop")
	}
	c.Server(0).Start()
	var data []byte
	retry(t, "get after restart", func() (err error) {
		data, _, err = conn.Get("/a")
		return err
	})
	if string(data) != "x" {
		t.Fatalf("get after restart = %q", data)
	}

	// Containers are reaped quickly once their last child goes away.
	if _, err := conn.CreateContainer("/box", nil, zk.FlagContainer, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create container: %v", err)
	}
	if _, err := conn.Create("/box/child", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create child: %v", err)
	}
	if err := conn.Delete("/box/child", -1); err != nil {
		t.Fatalf("delete child: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, _, err := conn.Exists("/box")
		if err != nil {
			t.Fatalf("exists: %v", err)
		}
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("empty container /box not reaped within 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	if !strings.Contains(readFile(t, c.Server(0).LogPath()), "binding to port") {
		t.Errorf("server log %s does not look like a ZooKeeper log", c.Server(0).LogPath())
	}
}

func TestEnsembleFailover(t *testing.T) {
	t.Parallel()
	c := zktest.StartEnsemble(t, 3)
	if got := strings.Count(c.ConnectString(), ",") + 1; got != 3 {
		t.Fatalf("ConnectString() = %q", c.ConnectString())
	}
	leader := c.Leader()
	if leader < 0 {
		t.Fatal("no leader")
	}
	followers := 0
	for i := range c.Size() {
		if mode, _ := c.Server(i).Mode(); mode == "follower" {
			followers++
		}
	}
	if followers != 2 {
		t.Fatalf("%d followers, want 2", followers)
	}

	conn := connect(t, c.Servers())
	createRetry(t, conn, "/before", []byte("1"))

	// Crash the leader: the other two elect a new one and keep serving.
	c.Server(leader).Kill()
	newLeader, err := c.WaitForLeader(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if newLeader == leader {
		t.Fatalf("killed server %d is still leader", leader)
	}
	createRetry(t, conn, "/after", []byte("2"))

	// The old leader rejoins as a follower with the new data.
	c.Server(leader).Start()
	if mode, err := c.Server(leader).Mode(); err != nil || mode != "follower" {
		t.Fatalf("restarted server mode = %q, %v", mode, err)
	}
	direct := connect(t, []string{c.Server(leader).Addr()})
	retry(t, "sync", func() error {
		_, err := direct.Sync("/")
		return err
	})
	for _, p := range []string{"/before", "/after"} {
		var ok bool
		retry(t, "exists "+p, func() (err error) {
			ok, _, err = direct.Exists(p)
			return err
		})
		if !ok {
			t.Fatalf("%s missing on restarted server", p)
		}
	}

	// Freeze a follower: the other two still make a quorum.
	leader, err = c.WaitForLeader(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	follower := (leader + 1) % c.Size()
	c.Server(follower).Pause()
	if !c.Server(follower).Paused() {
		t.Fatal("Paused() = false after Pause")
	}
	createRetry(t, conn, "/paused", nil)
	c.Server(follower).Resume()
	if err := c.WaitServing(15 * time.Second); err != nil {
		t.Fatal(err)
	}

	// Restarting the whole ensemble keeps the data.
	c.StopAll()
	for i := range c.Size() {
		if c.Server(i).Running() {
			t.Fatalf("server %d running after StopAll", i)
		}
	}
	c.StartAll()
	for _, p := range []string{"/before", "/after", "/paused"} {
		var ok bool
		retry(t, "exists "+p, func() (err error) {
			ok, _, err = conn.Exists(p)
			return err
		})
		if !ok {
			t.Fatalf("%s missing after StopAll/StartAll", p)
		}
	}
}

func TestFourLetterWordErrors(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1 of the loopback interface.
	if _, err := zktest.FourLetterWord("127.0.0.1:1", "ruok", time.Second); err == nil {
		t.Fatal("expected an error")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEnsembleWiped: an ensemble killed, its data wiped (myid kept) and
// started again forms a quorum with no history: the nodes are gone, and
// the zxids start over, lower than before.
func TestEnsembleWiped(t *testing.T) {
	t.Parallel()
	c := zktest.StartEnsemble(t, 3)
	conn := connect(t, c.Servers())
	var before zk.Stat
	for i := range 20 {
		createRetry(t, conn, fmt.Sprintf("/before-%d", i), nil)
	}
	retry(t, "exists /before-19", func() error {
		_, st, err := conn.Exists("/before-19")
		if st != nil {
			before = *st
		}
		return err
	})

	c.KillAll()
	for i := range c.Size() {
		if c.Server(i).Running() {
			t.Fatalf("server %d running after KillAll", i)
		}
		if err := c.Server(i).WipeData(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(c.Server(i).DataDir(), "myid")); err != nil {
			t.Fatalf("server %d: myid gone after WipeData: %v", i, err)
		}
	}
	c.StartAll()
	if _, err := c.WaitForLeader(15 * time.Second); err != nil {
		t.Fatal(err)
	}

	fresh := connect(t, c.Servers()) // conn saw later zxids: the servers refuse it
	var ok bool
	retry(t, "exists /before-19", func() (err error) {
		ok, _, err = fresh.Exists("/before-19")
		return err
	})
	if ok {
		t.Fatal("/before-19 still there after the wipe")
	}
	createRetry(t, fresh, "/after", nil)
	_, after, err := fresh.Exists("/after")
	if err != nil {
		t.Fatal(err)
	}
	if after.Czxid >= before.Czxid {
		t.Errorf("czxid after the wipe 0x%x, want below 0x%x from before it", after.Czxid, before.Czxid)
	}
}
