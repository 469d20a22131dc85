package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zklock/zklock/internal/sidecartest"
	"github.com/zklock/zklock/internal/zktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
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

	t.Run("a lost lock stops the command", func(t *testing.T) {
		done := make(chan int, 1)
		started := filepath.Join(t.TempDir(), "started")
		go func() {
			var out, errOut bytes.Buffer
			// The sleep is a child of the shell: the whole group must go.
			done <- run([]string{"run", "--addr", sc.Addr, "doomed", "--", "sh", "-c", "touch " + started + "; sleep 31.37; true"}, &out, &errOut)
		}()
		zktest.Eventually(t, 10*time.Second, "the command started", func() bool {
			_, err := os.Stat(started)
			return err == nil
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
			return exec.Command("pgrep", "-f", "sleep 31.37").Run() != nil
		})
	})
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"run", "lock-only"}, {"release"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != exitUsage {
			t.Errorf("run(%q) = %d, want %d", args, code, exitUsage)
		}
	}
}
