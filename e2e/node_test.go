package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/zktest"
)

// TestNodeClient runs the Node.js client's tests (clients/node, node
// --test) against zklockd processes: one for most tests, one each for the
// tests that stop (SIGTERM, over a unix socket) and kill (SIGKILL) their
// sidecar, two that keepAlive's tests kill (SIGKILL) and pause (SIGSTOP),
// and one whose ZooKeeper server the suspension test pauses. The package is
// copied out of the tree and installed there with npm ci from its lock
// file, so the tests leave no node_modules in the repository.
func TestNodeClient(t *testing.T) {
	t.Parallel()
	node, npm := nodeTools(t)
	dir := t.TempDir()
	copyNodePackage(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	runNpm(ctx, t, dir, npm, "ci")

	zkc := zktest.StartStandalone(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	stopped := startDaemon(t, "stopped", zkc.ConnectString(), daemonOpts{unixSocket: filepath.Join(t.TempDir(), "zklockd.sock")})
	killed := startDaemon(t, "killed", zkc.ConnectString(), daemonOpts{})
	keepAliveKilled := startDaemon(t, "keepalive-killed", zkc.ConnectString(), daemonOpts{})
	keepAlivePaused := startDaemon(t, "keepalive-paused", zkc.ConnectString(), daemonOpts{}) // its cleanup's SIGKILL ends it stopped
	// A ZooKeeper of its own, which the suspension test pauses (SIGSTOP).
	pausedZK := zktest.StartStandalone(t)
	suspending := startDaemon(t, "suspending", pausedZK.ConnectString(), daemonOpts{sessionTimeout: 20 * time.Second})
	cmd := exec.CommandContext(ctx, node, "--test", "test/client.test.js", "test/kinds.test.js", "test/keepalive.test.js", "test/suspend.test.js", "test/types.test.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ZKLOCK_ADDR="+d.listen,
		fmt.Sprintf("ZKLOCK_STOP_DAEMON=%s %d", stopped.listen, stopped.cmd.Process.Pid),
		fmt.Sprintf("ZKLOCK_KILL_DAEMON=%s %d", killed.listen, killed.cmd.Process.Pid),
		fmt.Sprintf("ZKLOCK_KEEPALIVE_KILL=%s %d", keepAliveKilled.listen, keepAliveKilled.cmd.Process.Pid),
		fmt.Sprintf("ZKLOCK_KEEPALIVE_PAUSE=%s %d", keepAlivePaused.listen, keepAlivePaused.cmd.Process.Pid),
		fmt.Sprintf("ZKLOCK_PAUSE_ZK=%s %d", suspending.listen, pausedZK.Server(0).PID()))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test failed after %v (%v):\n%s", time.Since(start).Round(time.Millisecond), err, out)
	}
	if st := stopped.waitExit(exitTimeout); !st.Success() {
		t.Errorf("the zklockd the tests stopped exited with %v, want 0", st)
	}
	killed.waitExit(exitTimeout)
	keepAliveKilled.waitExit(exitTimeout)
}

// nodeTools returns the paths of node and npm, and fails the test if
// either is missing.
func nodeTools(t *testing.T) (node, npm string) {
	t.Helper()
	var paths [2]string
	for i, name := range []string{"node", "npm"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s is not installed: the Node.js client's tests need node and npm (Debian: apt-get install nodejs npm; .ci/run installs them)", name)
		}
		paths[i] = p
	}
	return paths[0], paths[1]
}

// nodePackageDir returns the absolute path of clients/node.
func nodePackageDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../clients/node")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyNodePackage copies clients/node into dst, without node_modules.
func copyNodePackage(t *testing.T, dst string) {
	t.Helper()
	src := nodePackageDir(t)
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			if e.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// runNpm runs npm with args in dir, with its cache under the user's cache
// directory (so that runs after the first download nothing), and fails the
// test with npm's output if it fails.
func runNpm(ctx context.Context, t *testing.T, dir, npm string, args ...string) {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	cmd := exec.CommandContext(ctx, npm, append(args, "--prefer-offline", "--no-audit", "--no-fund")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(cache, "zklock", "npm"),
		"npm_config_update_notifier=false", "npm_config_loglevel=error")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm %s in %s failed after %v (%v):\n%s", strings.Join(args, " "), dir,
			time.Since(start).Round(time.Millisecond), err, out)
	}
}
