package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/clients/go/zklock"
	"github.com/zklock/zklock/internal/sidecartest"
	"github.com/zklock/zklock/internal/zktest"
)

// binDir holds the zklock binary that the tests of signals build; TestMain
// makes and removes it.
var binDir string

var built struct {
	once sync.Once
	path string
	err  error
}

// zklockBinary builds cmd/zklock once per test run and returns its path.
// Signals to zklock itself need it as a process of its own.
func zklockBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			built.err = fmt.Errorf("the go tool is needed to build zklock: %w", err)
			return
		}
		p := filepath.Join(binDir, "zklock")
		out, err := exec.Command(goTool, "build", "-o", p, "github.com/zklock/zklock/cmd/zklock").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		built.path = p
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// cliProcess is a zklock process.
type cliProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    string // file with its stdout and stderr
	exited chan struct{}
}

// startCLI runs the zklock binary in dir with args (the command first,
// then --addr addr, then the rest). It is killed when the test ends if it
// still runs.
func startCLI(t *testing.T, dir, addr string, args ...string) *cliProcess {
	t.Helper()
	p := &cliProcess{t: t, out: filepath.Join(t.TempDir(), "output"), exited: make(chan struct{})}
	// A file, not a pipe: a pipe would be held open by the command's
	// children, and Wait would wait for them too.
	f, err := os.Create(p.out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command(zklockBinary(t), append([]string{args[0], "--addr", addr}, args[1:]...)...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("output of zklock %s:\n%s", strings.Join(args, " "), p.output())
		}
	})
	return p
}

func (p *cliProcess) output() string {
	b, _ := os.ReadFile(p.out)
	return string(b)
}

// signal sends sig to zklock and returns when it was sent.
func (p *cliProcess) signal(sig syscall.Signal) time.Time {
	p.t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v to zklock: %v", sig, err)
	}
	return at
}

// wait waits at most d for zklock to exit and returns its exit code and
// when its exit was seen.
func (p *cliProcess) wait(d time.Duration) (int, time.Time) {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode(), time.Now()
	case <-time.After(d):
		p.t.Fatalf("zklock still running after %v", d)
	}
	return 0, time.Time{}
}

// waitFile waits until the file at path holds want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	zktest.Eventually(t, 10*time.Second, fmt.Sprintf("%s holds %q", path, want), func() bool {
		b, _ := os.ReadFile(path)
		return string(b) == want
	})
}

// grace is how long the README says a command has after the signal
// before its process group gets SIGKILL.
const grace = 10 * time.Second

// TestRunSignals runs zklock as a process and signals it: while queued, it
// leaves the queue and exits 128+N on signal N (130 on Ctrl-C); while the
// command runs, it passes signals on to the command's process group (and
// the command's exit code back, 130 if SIGINT killed it), kills the group
// on a second signal, and kills it 10 s after the first if it is still
// running.
func TestRunSignals(t *testing.T) {
	t.Parallel()
	zklockBinary(t) // build before the parallel subtests start their clocks
	sc := sidecartest.Start(t, zktest.StartStandalone(t).ConnectString())
	conn, err := zklock.Dial(sc.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	api := zklockv1.NewLockServiceClient(conn)

	for sig, want := range map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143} {
		t.Run(fmt.Sprintf("%v while queued exits %d and leaves the queue", sig, want), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			lock := fmt.Sprintf("queued-%d", sig)
			holder, err := zklock.New(conn).Lock(ctx, lock)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Release(ctx)
			dir := t.TempDir()
			p := startCLI(t, dir, sc.Addr, "run", lock, "--", "touch", "ran")
			waiters := func() int {
				r, err := api.Describe(ctx, &zklockv1.DescribeRequest{Lock: lock})
				if err != nil {
					t.Fatalf("Describe: %v", err)
				}
				return len(r.GetWaiters())
			}
			zktest.Eventually(t, 10*time.Second, "zklock is queued", func() bool { return waiters() == 1 })
			p.signal(sig)
			if code, _ := p.wait(10 * time.Second); code != want {
				t.Errorf("zklock given %v while queued exited %d, want %d", sig, code, want)
			}
			zktest.Eventually(t, 10*time.Second, "zklock's node left the queue", func() bool { return waiters() == 0 })
			if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
				t.Error("the command ran without the lock")
			}
		})
	}

	t.Run("SIGINT is passed on to the command", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := startCLI(t, dir, sc.Addr, "run", "sigint", "--", "sh", "-c",
			`trap 'echo INT > got; exit 4' INT; touch started; while :; do sleep 0.1; done`)
		waitFileExists(t, filepath.Join(dir, "started"))
		p.signal(syscall.SIGINT)
		if code, _ := p.wait(10 * time.Second); code != 4 {
			t.Errorf("zklock exited %d, want the command's 4 from its INT trap", code)
		}
		waitFile(t, filepath.Join(dir, "got"), "INT\n")
	})

	t.Run("Ctrl-C while the command runs exits 130 when it kills the command", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := startCLI(t, dir, sc.Addr, "run", "ctrl-c", "--", "sh", "-c", `touch started; while :; do sleep 0.1; done`)
		waitFileExists(t, filepath.Join(dir, "started"))
		p.signal(syscall.SIGINT)
		if code, _ := p.wait(10 * time.Second); code != 130 {
			t.Errorf("zklock exited %d, want 130 (the command killed by the SIGINT passed on)", code)
		}
	})

	t.Run("SIGTERM is passed on, and a second signal kills the command", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		p := startCLI(t, dir, sc.Addr, "run", "sigterm", "--", "sh", "-c",
			`trap 'echo TERM >> got' TERM; touch started; while :; do sleep 0.1; done`)
		waitFileExists(t, filepath.Join(dir, "started"))
		first := p.signal(syscall.SIGTERM)
		waitFile(t, filepath.Join(dir, "got"), "TERM\n")
		p.signal(syscall.SIGTERM)
		code, at := p.wait(grace)
		if code != 128+int(syscall.SIGKILL) {
			t.Errorf("zklock exited %d after a second SIGTERM, want %d (the command killed)", code, 128+int(syscall.SIGKILL))
		}
		if d := at.Sub(first); d >= grace {
			t.Errorf("the command ended %v after the first signal: killed by the %v timer, not by the second signal", d, grace)
		}
		waitFile(t, filepath.Join(dir, "got"), "TERM\n") // the second one was not passed on
	})

	t.Run("a command that ignores the signal is killed 10 s later", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		// The shell ignores SIGTERM while it starts the sleep, which inherits
		// that, then traps it to show it arrived; the whole group must go.
		sleep := []string{"sleep", uniqueDuration()}
		killAtCleanup(t, sleep...)
		p := startCLI(t, dir, sc.Addr, "run", "stubborn", "--", "sh", "-c",
			`trap '' TERM; `+strings.Join(sleep, " ")+` & trap 'echo TERM >> got' TERM; touch started; while :; do sleep 0.1; done`)
		waitFileExists(t, filepath.Join(dir, "started"))
		zktest.Eventually(t, 10*time.Second, "the command's child runs", func() bool {
			return len(processes(t, sleep...)) == 1
		})
		sent := p.signal(syscall.SIGTERM)
		waitFile(t, filepath.Join(dir, "got"), "TERM\n")
		code, at := p.wait(grace + 20*time.Second)
		if code != 128+int(syscall.SIGKILL) {
			t.Errorf("zklock exited %d, want %d (the command killed)", code, 128+int(syscall.SIGKILL))
		}
		if d := at.Sub(sent); d < grace {
			t.Errorf("the command was killed %v after SIGTERM, want %v or more", d, grace)
		}
		zktest.Eventually(t, 5*time.Second, "the command's child is killed too", func() bool {
			return len(processes(t, sleep...)) == 0
		})
		assertFree(t, sc.Addr, "stubborn")
	})
}

// waitFileExists waits until path exists.
func waitFileExists(t *testing.T, path string) {
	t.Helper()
	zktest.Eventually(t, 10*time.Second, path+" exists", func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}
