package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/zktest"
)

// installApp is the throwaway app of TestPythonInstall: it takes and
// releases a lock with the installed zklock package and prints what the
// test checks, one "key value..." line each.
const installApp = `import importlib.metadata
import re
import sys

import zklock
import zklock.v1.lock_pb2

addr, name = sys.argv[1], sys.argv[2]
print("module", zklock.__file__)
print("stubs", zklock.v1.lock_pb2.__file__)
print("version", importlib.metadata.version("zklock"))
print("requires", *(re.match(r"[\w.-]+", r).group() for r in importlib.metadata.requires("zklock")))
with zklock.Client(addr) as client:
    with client.lock(name, owner="install-app", wait=30) as lease:
        leader = client.election(name).leader()
        print("held", lease.token, leader.token, leader.owner)
    print("after", client.election(name).leader())
`

// TestPythonInstall installs the Python client the way the README's "From
// Python" says, offline: a venv made by Debian's python3 with
// --system-site-packages (for python3-grpcio), then `pip install
// --no-build-isolation --no-index <repo>/clients/python`. An app outside the
// repository, without PYTHONPATH, imports zklock from the venv, takes a
// lock from a zklockd and releases it; the installed distribution is zklock
// 0.1.0 and requires grpcio and protobuf.
func TestPythonInstall(t *testing.T) {
	t.Parallel()
	pkg, err := filepath.Abs("../clients/python")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	app := t.TempDir()
	venv := filepath.Join(app, ".venv")
	// What the app finds, it finds in the venv, not in the checkout.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PYTHONPATH=") && !strings.HasPrefix(kv, "PYTHONHOME=") {
			env = append(env, kv)
		}
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = app
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			hint := ""
			if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
				hint = " (Debian's python3; .ci/run installs it)"
			} else if bytes.Contains(out, []byte("ensurepip")) {
				hint = " (needs Debian's python3-venv; .ci/run installs it)"
			} else if bytes.Contains(out, []byte("bdist_wheel")) {
				hint = " (needs Debian's python3-wheel; .ci/run installs it)"
			}
			t.Fatalf("%s %s: %v%s\n%s", name, strings.Join(args, " "), err, hint, out)
		}
		return string(out)
	}

	run("/usr/bin/python3", "-m", "venv", "--system-site-packages", venv)
	run(filepath.Join(venv, "bin", "pip"), "install", "--no-build-isolation", "--no-index", pkg)
	show := run(filepath.Join(venv, "bin", "pip"), "show", "zklock")
	for _, want := range []string{"Name: zklock\n", "Version: 0.1.0\n", "Requires: grpcio, protobuf\n"} {
		if !strings.Contains(show, want) {
			t.Errorf("pip show zklock lacks %q:\n%s", want, show)
		}
	}
	if err := os.WriteFile(filepath.Join(app, "app.py"), []byte(installApp), 0o644); err != nil {
		t.Fatal(err)
	}

	zkc := zktest.StartStandalone(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	out := run(filepath.Join(venv, "bin", "python"), "app.py", d.listen, "install/python")
	lines := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 {
			lines[f[0]] = f[1:]
		}
	}
	site := venv + string(filepath.Separator)
	for _, k := range []string{"module", "stubs"} {
		if f := lines[k]; len(f) != 1 || !strings.HasPrefix(f[0], site) {
			t.Errorf("the app imported %s from %v, want a file in the venv %s", k, f, venv)
		}
	}
	if f := lines["version"]; len(f) != 1 || f[0] != "0.1.0" {
		t.Errorf("importlib.metadata.version(zklock) = %v, want 0.1.0", f)
	}
	if f := lines["requires"]; strings.Join(f, " ") != "grpcio protobuf" {
		t.Errorf("importlib.metadata.requires(zklock) names %v, want grpcio and protobuf", f)
	}
	held := lines["held"]
	if len(held) != 3 {
		t.Fatalf("the app printed no held line:\n%s", out)
	}
	token, err := strconv.ParseInt(held[0], 10, 64)
	if err != nil || token <= 0 {
		t.Errorf("lease token %q, want a positive fencing token", held[0])
	}
	if held[1] != held[0] || held[2] != "install-app" {
		t.Errorf("while the app held the lock, zklockd's holder was token %s owner %s, want token %s owner install-app", held[1], held[2], held[0])
	}
	if f := lines["after"]; len(f) != 1 || f[0] != "None" {
		t.Errorf("after the app released the lock, its holder was %v, want None", f)
	}
	if t.Failed() {
		t.Logf("app.py printed:\n%s", out)
	}
}
