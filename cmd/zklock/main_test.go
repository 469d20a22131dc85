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

	t.Run("exports the token, lease, lock and address and passes the exit code through", func(t *testing.T) {
		dir := t.TempDir()
		code, _, errOut := cli(t, sc.Addr, "run", "demo", "--", "sh", "-c",
			`echo "$ZKLOCK_FENCING_TOKEN $ZKLOCK_LEASE $ZKLOCK_LOCK $ZKLOCK_ADDR" > `+filepath.Join(dir, "env")+`; exit 7`)
		if code != 7 {
			t.Fatalf("exit code %d, want the command's 7 (stderr %q)", code, errOut)
		}
		env, _ := os.ReadFile(filepath.Join(dir, "env"))
		f := strings.Fields(string(env))
		if len(f) != 4 || f[0] == "" || len(f[1]) != 32 || f[2] != "demo" || f[3] != sc.Addr {
			t.Errorf("command saw %q, want a token, a 32-character lease id, demo and %s", env, sc.Addr)
		}
	})

	t.Run("a run nested in a run of the same lock re-enters it", func(t *testing.T) {
		dir := t.TempDir()
		bin := zklockBinary(t)
		// The inner run records what it got and what describe shows while
		// both hold; then the outer one checks that the lock is still held
		// (ZKLOCK_LEASE emptied, so as not to re-enter).
		script := fmt.Sprintf(`cd %[1]s
echo "$ZKLOCK_FENCING_TOKEN $ZKLOCK_LEASE" > outer
%[2]s run --wait 20s nest -- sh -c 'echo "$ZKLOCK_FENCING_TOKEN $ZKLOCK_LEASE" > inner; %[2]s describe nest > described' || exit 10
if ZKLOCK_LEASE= %[2]s run --wait 0s nest -- true 2>/dev/null; then echo free > after; else echo held > after; fi`, dir, bin)
		if code, _, errOut := cli(t, sc.Addr, "run", "nest", "--", "sh", "-c", script); code != 0 {
			t.Fatalf("nested runs: exit %d, stderr %q", code, errOut)
		}
		outer := strings.Fields(readFile(t, filepath.Join(dir, "outer")))
		inner := strings.Fields(readFile(t, filepath.Join(dir, "inner")))
		if len(outer) != 2 || len(inner) != 2 || inner[0] != outer[0] || inner[1] == outer[1] {
			t.Errorf("outer run got token and lease %q, inner %q: want the same token and another lease", outer, inner)
		}
		described := readFile(t, filepath.Join(dir, "described"))
		if lines := strings.Split(strings.TrimSpace(described), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "holder\t") || !strings.HasSuffix(lines[0], "\treentered=1") {
			t.Errorf("describe while both runs held:\n%s\nwant one holder, re-entered once", described)
		}
		if after := readFile(t, filepath.Join(dir, "after")); after != "held\n" {
			t.Errorf("once the inner run ended, the lock was %q, want held by the outer run", after)
		}
		assertFree(t, sc.Addr, "nest")
	})

	t.Run("a run in a run of another lock does not re-enter", func(t *testing.T) {
		script := fmt.Sprintf(`%s run --wait 20s other-inner -- sh -c 'test "$ZKLOCK_LOCK" = other-inner'`, zklockBinary(t))
		if code, _, errOut := cli(t, sc.Addr, "run", "other-outer", "--", "sh", "-c", script); code != 0 {
			t.Errorf("a run of another lock inside a run: exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("a ZKLOCK_LEASE that no longer holds is not re-entered", func(t *testing.T) {
		code, out, errOut := cli(t, sc.Addr, "acquire", "--ttl", "30s", "stale")
		if code != 0 {
			t.Fatalf("acquire: exit %d, %s", code, errOut)
		}
		lease := strings.Fields(out)[0]
		if code, _, errOut := cli(t, sc.Addr, "release", lease); code != 0 {
			t.Fatalf("release: exit %d, %s", code, errOut)
		}
		// As in a process that outlived the zklock run of the lock.
		t.Setenv("ZKLOCK_LEASE", lease)
		t.Setenv("ZKLOCK_LOCK", "stale")
		t.Setenv("ZKLOCK_ADDR", sc.Addr)
		if code, _, errOut := cli(t, sc.Addr, "run", "--wait", "10s", "stale", "--", "true"); code != 0 {
			t.Errorf("run with a released lease in ZKLOCK_LEASE: exit %d, stderr %q; want the lock taken as usual", code, errOut)
		}
		if code, _, errOut := cli(t, sc.Addr, "run", "--reenter", lease, "stale", "--", "true"); code != exitError || !strings.Contains(errOut, "NotFound") {
			t.Errorf("run --reenter of a released lease: exit %d, stderr %q; want %d and NotFound", code, errOut, exitError)
		}
	})

	t.Run("acquire --reenter", func(t *testing.T) {
		code, out, errOut := cli(t, sc.Addr, "acquire", "--ttl", "30s", "relock")
		if code != 0 {
			t.Fatalf("acquire: exit %d, %s", code, errOut)
		}
		first := strings.Fields(out)
		code, out, errOut = cli(t, sc.Addr, "acquire", "--ttl", "30s", "--wait", "0s", "--reenter", first[0], "relock")
		if code != 0 {
			t.Fatalf("acquire --reenter: exit %d, %s", code, errOut)
		}
		second := strings.Fields(out)
		if len(second) != 2 || second[1] != first[1] || second[0] == first[0] {
			t.Errorf("acquire --reenter printed %q after %q, want another lease with the same token", second, first)
		}
		if code, out, _ := cli(t, sc.Addr, "describe", "relock"); code != 0 || !strings.HasSuffix(out, "\treentered=1\n") {
			t.Errorf("describe: exit %d, %q; want a holder re-entered once", code, out)
		}
		for i, lease := range []string{first[0], second[0]} {
			if code, _, errOut := cli(t, sc.Addr, "run", "--wait", "0s", "relock", "--", "true"); code != exitError {
				t.Errorf("run --wait 0s with %d of the 2 leases released: exit %d, stderr %q; want %d (held)", i, code, errOut, exitError)
			}
			if code, _, errOut := cli(t, sc.Addr, "release", lease); code != 0 {
				t.Fatalf("release: exit %d, %s", code, errOut)
			}
		}
		assertFree(t, sc.Addr, "relock")
	})

	t.Run("a semaphore", func(t *testing.T) {
		var leases, tokens []string
		for range 2 {
			code, out, errOut := cli(t, sc.Addr, "acquire", "--ttl", "30s", "--wait", "0s", "--permits", "2", "pool")
			if code != 0 {
				t.Fatalf("acquire --permits 2 with %d holders: exit %d, %s", len(leases), code, errOut)
			}
			f := strings.Fields(out)
			leases, tokens = append(leases, f[0]), append(tokens, f[1])
		}
		if tokens[0] == tokens[1] {
			t.Errorf("two holders of a semaphore with the same token %s", tokens[0])
		}
		if code, _, errOut := cli(t, sc.Addr, "run", "--permits", "2", "--wait", "0s", "pool", "--", "true"); code != exitError || !strings.Contains(errOut, "held") {
			t.Errorf("run --permits 2 --wait 0s with 2 holders: exit %d, stderr %q; want %d", code, errOut, exitError)
		}
		if code, _, errOut := cli(t, sc.Addr, "run", "--permits", "3", "--wait", "0s", "pool", "--", "true"); code != exitError ||
			!strings.Contains(errOut, "FailedPrecondition") || !strings.Contains(errOut, "2 permits") || !strings.Contains(errOut, "3 permits") {
			t.Errorf("run --permits 3 on a semaphore of 2: exit %d, stderr %q; want %d, FailedPrecondition naming 2 and 3 permits", code, errOut, exitError)
		}
		code, out, _ := cli(t, sc.Addr, "describe", "pool")
		if lines := strings.Split(out, "\n"); code != 0 || len(lines) < 3 || lines[0] != "permits\t2" || !strings.HasPrefix(lines[1], "holder\t") || !strings.HasPrefix(lines[2], "holder\t") {
			t.Errorf("describe of a semaphore of 2 with 2 holders: exit %d, %q", code, out)
		}
		for _, lease := range leases {
			if code, _, errOut := cli(t, sc.Addr, "release", lease); code != 0 {
				t.Fatalf("release: exit %d, %s", code, errOut)
			}
		}
		// Two commands hold it at once: each waits (10 s at most) to see
		// the other's file.
		dir := t.TempDir()
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for i := range codes {
			wg.Go(func() {
				var out, errOut bytes.Buffer
				codes[i] = run([]string{"run", "--addr", sc.Addr, "--permits", "2", "pool", "--", "sh", "-c",
					fmt.Sprintf(`touch %[1]s/%[2]d; n=0; until [ -e %[1]s/0 ] && [ -e %[1]s/1 ] || [ $n -ge 200 ]; do sleep 0.05; n=$((n+1)); done; [ -e %[1]s/0 ] && [ -e %[1]s/1 ]`, dir, i)}, &out, &errOut)
			})
		}
		wg.Wait()
		for i, c := range codes {
			if c != 0 {
				t.Errorf("command %d exited %d: did not run while the other held the semaphore", i, c)
			}
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
		if code, _, errOut := cli(t, sc.Addr, "run", "--wait", "0s", "busy", "--", "true"); code != exitError || !strings.Contains(errOut, "not granted in time: busy is held") {
			t.Errorf("run --wait 0s on a held lock: exit %d, stderr %q; want %d and 'not granted in time: busy is held'", code, errOut, exitError)
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

// readFile returns the contents of the file at path.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestObserve runs zklock observe as a process: it prints the holders at
// once, then a line per change, until Ctrl-C, on which it exits 130.
func TestObserve(t *testing.T) {
	t.Parallel()
	sc := sidecartest.Start(t, zktest.StartStandalone(t).ConnectString())
	p := startCLI(t, t.TempDir(), sc.Addr, "observe", "watched")
	want := "holders: none\n"
	waitFile(t, p.out, want)
	code, out, errOut := cli(t, sc.Addr, "acquire", "--ttl", "30s", "--owner", "owner-a", "watched")
	if code != 0 {
		t.Fatalf("acquire: exit %d, %s", code, errOut)
	}
	lease, token := strings.Fields(out)[0], strings.Fields(out)[1]
	want += "holders: owner-a (token " + token + ")\n"
	waitFile(t, p.out, want)
	if code, _, errOut := cli(t, sc.Addr, "release", lease); code != 0 {
		t.Fatalf("release: exit %d, %s", code, errOut)
	}
	want += "holders: none\n"
	waitFile(t, p.out, want)
	p.signal(syscall.SIGINT)
	if code, _ := p.wait(10 * time.Second); code != 130 {
		t.Errorf("zklock observe exited %d on SIGINT, want 130", code)
	}
	if got := p.output(); got != want {
		t.Errorf("zklock observe printed %q, want %q", got, want)
	}
}

func TestHoldersLine(t *testing.T) {
	for want, s := range map[string]zklock.State{
		"holders: none":        {},
		"holders: a (token 5)": {Holders: []zklock.Holder{{Owner: "a", Token: 5, Node: "_c_1-lock-0000000001"}}},
		"holders: r1 (token 5, shared), r2 (token 7, shared)": {Holders: []zklock.Holder{
			{Owner: "r1", Token: 5, Shared: true}, {Owner: "r2", Token: 7, Shared: true}}},
		"holders: zklock@h pid 7 (token 5), _c_2-lease-0000000002 (token 6); permits 3": {Permits: 3, Holders: []zklock.Holder{
			{Owner: "zklock@h pid 7", Token: 5}, {Node: "_c_2-lease-0000000002", Token: 6}}},
		`holders: "a, b\n" (token 5)`: {Holders: []zklock.Holder{{Owner: "a, b\n", Token: 5}}},
	} {
		if got := holdersLine(s); got != want {
			t.Errorf("holdersLine(%+v) = %q, want %q", s, got, want)
		}
	}
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
		if code, _, errOut := cli(t, addr, "run", "x", "--", "true"); code != exitUnavailable || !strings.Contains(errOut, "cannot reach zklockd at "+addr) {
			t.Errorf("run against %s, where nothing listens: exit %d, stderr %q; want %d and cannot reach zklockd at it", addr, code, errOut, exitUnavailable)
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
	for _, args := range [][]string{nil, {"bogus"}, {"run", "lock-only"}, {"release"}, {"observe"}, {"observe", "a", "b"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != exitUsage {
			t.Errorf("run(%q) = %d, want %d", args, code, exitUsage)
		}
	}
}

// TestHelpAndVersion: help in each of its spellings, and the version,
// print to stdout and exit 0; a flag other than --addr before the command
// is a bad command line.
func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"run", "--help"}, {"describe", "-h"}, {"--addr", "127.0.0.1:1", "--help"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "usage:") || errOut.Len() != 0 {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q; want 0 and the usage on stdout", args, code, out.String(), errOut.String())
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 || out.String() != "zklock "+version+"\n" {
			t.Errorf("run(%q) = %d, stdout %q; want 0 and %q", args, code, out.String(), "zklock "+version)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"--wait", "1s", "describe", "x"}, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "only --addr") {
		t.Errorf("a flag before the command: %d, %q; want %d saying only --addr goes there", code, errOut.String(), exitUsage)
	}
	if strings.Contains(usage, "-1ns") {
		t.Error("the usage shows a default as -1ns")
	}
}

// TestUnreachableSidecar: --addr goes before or after the command's name,
// and a sidecar nobody answers at is named, with exit code 69 (retry).
func TestUnreachableSidecar(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens there now
	for _, args := range [][]string{{"--addr", addr, "describe", "x"}, {"--addr=" + addr, "describe", "x"}, {"describe", "--addr", addr, "x"}} {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		if want := "zklock: cannot reach zklockd at " + addr + ": connection refused"; code != exitUnavailable || !strings.HasPrefix(errOut.String(), want) {
			t.Errorf("run(%q) = %d, %q; want %d and %q", args, code, errOut.String(), exitUnavailable, want)
		}
	}
}
