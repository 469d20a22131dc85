package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/zktest"
)

// TestJavaClient compiles the Java stubs and client (clients/java) with
// javac against Debian's grpc-java jars, and runs its end-to-end checks
// against a zklockd process.
func TestJavaClient(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../clients/java")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, filepath.Join(dir, "build.sh"), t.TempDir())
	build.Stderr = os.Stderr
	cp, err := build.Output()
	if err != nil {
		t.Fatalf("building the Java client: %v", err)
	}

	zkc := zktest.StartStandalone(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	// The checks of a lost lease stop one and kill the other.
	stopped := startDaemon(t, "stopped", zkc.ConnectString(), daemonOpts{})
	killed := startDaemon(t, "killed", zkc.ConnectString(), daemonOpts{})
	run := exec.CommandContext(ctx, "java", "-cp", strings.TrimSpace(string(cp)), "io.zklock.ZkLockClientE2E")
	run.Env = append(os.Environ(), "ZKLOCK_ADDR="+d.listen,
		fmt.Sprintf("ZKLOCK_STOP_DAEMON=%s %d", stopped.listen, stopped.cmd.Process.Pid),
		fmt.Sprintf("ZKLOCK_KILL_DAEMON=%s %d", killed.listen, killed.cmd.Process.Pid))
	out, err := run.CombinedOutput()
	t.Logf("java io.zklock.ZkLockClientE2E:\n%s", out)
	if err != nil {
		t.Fatalf("Java client checks failed: %v", err)
	}
	if st := stopped.waitExit(exitTimeout); !st.Success() {
		t.Errorf("the zklockd the checks stopped exited with %v, want 0", st)
	}
	killed.waitExit(exitTimeout)
}
