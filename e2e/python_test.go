package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/zktest"
)

// TestPythonClient runs the Python client's tests (clients/python), with
// Debian's python3-grpcio, against zklockd processes: one for most tests,
// and one each for the tests that stop (SIGTERM) and kill (SIGKILL) their
// sidecar. They import the package from the checkout (PYTHONPATH), so that
// they test the files as they are; TestPythonInstall installs it with pip.
func TestPythonClient(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../clients/python")
	if err != nil {
		t.Fatal(err)
	}
	zkc := zktest.StartStandalone(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	stopped := startDaemon(t, "stopped", zkc.ConnectString(), daemonOpts{})
	killed := startDaemon(t, "killed", zkc.ConnectString(), daemonOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-m", "unittest", "-v", "test_zklock")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ZKLOCK_ADDR="+d.listen, "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1",
		fmt.Sprintf("ZKLOCK_STOP_DAEMON=%s %d", stopped.listen, stopped.cmd.Process.Pid),
		fmt.Sprintf("ZKLOCK_KILL_DAEMON=%s %d", killed.listen, killed.cmd.Process.Pid))
	out, err := cmd.CombinedOutput()
	t.Logf("python3 -m unittest:\n%s", out)
	if err != nil {
		t.Fatalf("Python client tests failed: %v", err)
	}
	if st := stopped.waitExit(exitTimeout); !st.Success() {
		t.Errorf("the zklockd the tests stopped exited with %v, want 0", st)
	}
	killed.waitExit(exitTimeout)
}
