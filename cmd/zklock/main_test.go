package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zklock/zklock/clients/go/zklock"
	"github.com/zklock/zklock/internal/sidecartest"
	"github.com/zklock/zklock/internal/zktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(withBinDir{m})
}

// withBinDir runs the tests with binDir made, and removes it after them,
// so that goleak.VerifyTestMain still sees the tests' exit code.
type withBinDir struct{ m *testing.M }

func (w withBinDir) Run() int {
	dir, err := os.MkdirTemp("", "zklock-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	return w.m.Run()
}

// cli runs the command line and returns its exit code and output.
func cli(t *testing.T, addr string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{args[0], "--addr", addr}, args[1:]...)
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRun(t *testing.T) {
	sc := sidecartest.Start(t, zktest.StartStandalone(t).ConnectString())

	t.Run("exports the token and passes the exit code through", func(t *testing.T) {
		dir := t.TempDir()
		code, _, errOut := cli(t, sc.Addr, "run", "demo", "--", "sh", "-c",
			`echo "$ZKLOCK_FENCING_TOKEN $ZKLOCK_LEASE" > `+filepath.Join(dir, "env")+`; exit 7`)
		if code != 7 {
			t.Fatalf("exit code %d, want the command's 7 (stderr %q)", code, errOut)
		}
		env, _ := os.ReadFile(filepath.Join(dir, "env"))
		f := strings.Fields(string(env))
		if len(f) != 2 || f[0] == "" || len(f[1]) != 32 {
			t.Errorf("command saw %q, want a token and a 32-character lease id", env)
		}
	})

	t.Run("commands under one lock never overlap", func(t *testing.T) {
		// mkdir fails if the directory exists: a command that finds it
		// there ran while another held the lock.
		marker := filepath.Join(t.TempDir(), "inside")
		var wg sync.WaitGroup
		codes := make([]int, 4)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out, errOut bytes.Buffer
				codes[i] = run([]string{"run", "--addr", sc.Addr, "serial", "--", "sh", "-c",
					"mkdir " + marker + " && sleep 0.2 && rmdir " + marker}, &out, &errOut)
			}()
		}
		wg.Wait()
		for i, c := range codes {
			if c != 0 {
				t.Errorf("command %d exited %d: ran while another held the lock", i, c)
			}
		}
	})

	t.Run("try once fails while held", func(t *testing.T) {
		code, out, _ := cli(t, sc.Addr, "acquire", "--ttl", "30s", "busy")
		if code != 0 {
			t.Fatalf("acquire exited %d", code)
		}
		lease := strings.Fields(out)[0]
		if code, _, errOut := cli(t, sc.Addr, "run", "--wait", "0s", "busy", "--", "true"); code != exitError || !strings.Contains(errOut, "lock is held by another: busy") {
			t.Errorf("run --wait 0s on a held lock: exit %d, stderr %q; want %d and 'lock is held by another: busy'", code, errOut, exitError)
		}
		if code, out, _ := cli(t, sc.Addr, "describe", "busy"); code != 0 || !strings.HasPrefix(out, "holder\tMODE_EXCLUSIVE") {
			t.Errorf("describe: exit %d, %q", code, out)
		}
		if code, _, errOut := cli(t, sc.Addr, "renew", lease); code != 0 {
			t.Errorf("renew: exit %d, %s", code, errOut)
		}
		if code, _, errOut := cli(t, sc.Addr, "release", lease); code != 0 {
			t.Errorf("release: exit %d, %s", code, errOut)
		}
		if code, _, errOut := cli(t, sc.Addr, "renew", lease); code != exitError || !strings.Contains(errOut, "NotFound") {
			t.Errorf("renew after release: exit %d, %q; want NotFound", code, errOut)
		}
	})

	t.Run("a command that cannot be run exits 126", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), "not-executable")
		if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := cli(t, sc.Addr, "run", "cannot-run", "--", script); code != 126 || !strings.Contains(errOut, "permission denied") {
			t.Errorf("run of a file without execute permission: exit %d, stderr %q; want 126 and 'permission denied'", code, errOut)
		}
		assertFree(t, sc.Addr, "cannot-run")
	})

	t.Run("a command that cannot be found exits 127", func(t *testing.T) {
		for _, command := range []string{"zklock-test-no-such-command", filepath.Join(t.TempDir(), "missing")} {
			if code, _, errOut := cli(t, sc.Addr, "run", "not-found", "--", command); code != 127 {
				t.Errorf("run of %s: exit %d, want 127 (stderr %q)", command, code, errOut)
			}
		}
		assertFree(t, sc.Addr, "not-found")
	})

	t.Run("a command killed by signal N exits 128+N", func(t *testing.T) {
		for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGUSR1} {
			code, _, errOut := cli(t, sc.Addr, "run", "signalled", "--", "sh", "-c", fmt.Sprintf("kill -%d $$", sig))
			if want := 128 + int(sig); code != want {
				t.Errorf("command killed by %v: exit %d, want %d (stderr %q)", sig, code, want, errOut)
			}
		}
		assertFree(t, sc.Addr, "signalled")
	})

	t.Run("a lost lock stops the command", func(t *testing.T) {
		done := make(chan int, 1)
		started := filepath.Join(t.TempDir(), "started")
		sleep := []string{"sleep", uniqueDuration()}
		killAtCleanup(t, sleep...)
		go func() {
			var out, errOut bytes.Buffer
			// The sleep is a child of the shell: the whole group must go.
			done <- run([]string{"run", "--addr", sc.Addr, "doomed", "--", "sh", "-c", "touch " + started + "; " + strings.Join(sleep, " ") + "; true"}, &out, &errOut)
		}()
		zktest.Eventually(t, 10*time.Second, "the command's child runs", func() bool {
			return len(processes(t, sleep...)) == 1
		})
		sc.Stop()
		select {
		case code := <-done:
			if code != exitLost {
				t.Errorf("exit code %d after the lock was lost, want %d", code, exitLost)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("command still running 10s after the lock was lost")
		}
		zktest.Eventually(t, 5*time.Second, "the command's child is stopped too", func() bool {
			return len(processes(t, sleep...)) == 0
		})
	})
}

// assertFree checks that lock can be taken at once, as it is once a run
// that held it has ended.
func assertFree(t *testing.T, addr, lock string) {
	t.Helper()
	if code, _, errOut := cli(t, addr, "run", "--wait", "0s", lock, "--", "true"); code != 0 {
		t.Errorf("run --wait 0s %s after the last run ended: exit %d, stderr %q; want the lock free", lock, code, errOut)
	}
}

// TestRunUnavailable: a sidecar that cannot answer makes run exit 69, so
// that a script knows to retry.
func TestRunUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("no sidecar at the address", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if code, _, errOut := cli(t, addr, "run", "x", "--", "true"); code != exitUnavailable || !strings.Contains(errOut, "Unavailable") {
			t.Errorf("run against %s, where nothing listens: exit %d, stderr %q; want %d and Unavailable", addr, code, errOut, exitUnavailable)
		}
	})
	t.Run("no ZooKeeper session", func(t *testing.T) {
		zkc := zktest.StartStandalone(t)
		sc := sidecartest.Start(t, zkc.ConnectString())
		zkc.StopAll()
		conn, err := zklock.Dial(sc.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		health := healthpb.NewHealthClient(conn)
		// NOT_SERVING: the sidecar has given up its session, and cannot get
		// another while ZooKeeper is down.
		zktest.Eventually(t, 30*time.Second, "the sidecar reports NOT_SERVING", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
			return err == nil && r.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
		})
		ran := filepath.Join(t.TempDir(), "ran")
		if code, _, errOut := cli(t, sc.Addr, "run", "x", "--", "touch", ran); code != exitUnavailable || !strings.Contains(errOut, "no ZooKeeper session") {
			t.Errorf("run without a ZooKeeper session: exit %d, stderr %q; want %d and 'no ZooKeeper session'", code, errOut, exitUnavailable)
		}
		if _, err := os.Stat(ran); err == nil {
			t.Error("the command ran without the lock")
		}
	})
}

// processes returns the ids of the processes whose command line is argv
// exactly. It reads /proc, so it needs no procps; it fails the test if it
// cannot, rather than report nothing running.
func processes(t *testing.T, argv ...string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("listing processes: %v", err)
	}
	want := strings.Join(argv, "\x00") + "\x00"
	var pids []int
	sawSelf := false
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sawSelf = sawSelf || pid == os.Getpid()
		// A process that exited meanwhile has no cmdline to read; a zombie
		// has an empty one. Neither runs.
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == want {
			pids = append(pids, pid)
		}
	}
	if !sawSelf {
		t.Fatalf("/proc does not list this process (pid %d): cannot tell which processes run", os.Getpid())
	}
	return pids
}

// killAtCleanup makes sure no process with the command line argv outlives
// the test, even if it fails.
func killAtCleanup(t *testing.T, argv ...string) {
	t.Cleanup(func() {
		for _, pid := range processes(t, argv...) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// uniqueDuration returns an argument for sleep that no other process on
// the machine is likely to have, so that processes finds only the test's.
func uniqueDuration() string {
	return fmt.Sprintf("%d.%06d", 3000+rand.IntN(1000), rand.IntN(1e6))
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"run", "lock-only"}, {"release"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != exitUsage {
			t.Errorf("run(%q) = %d, want %d", args, code, exitUsage)
		}
	}
}
