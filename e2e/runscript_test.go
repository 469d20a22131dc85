package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/syncbuf"
)

// runScriptTimeout bounds each step of scripts/run.sh: its start (ZooKeeper's
// JVM, then zklockd), a zk-stop or zk-start, its stop after SIGINT.
const runScriptTimeout = 60 * time.Second

// TestRunScriptOutage rehearses a ZooKeeper outage under scripts/run.sh
// (make run) as the README describes it: zk-stop stops ZooKeeper and
// zklockd keeps running; a holder gets Suspended, then Resumed when zk-start
// brings ZooKeeper back in time with its data. Stopped for longer, the
// holder gets Lost SESSION_EXPIRED after the session timeout, zklockd still
// answers, and once zk-start has run a new Acquire is granted. SIGINT
// (Ctrl-C) then stops zklockd (its holder gets Lost SHUTDOWN) and the
// ZooKeeper that zk-start started, and leaves nothing running.
func TestRunScriptOutage(t *testing.T) {
	t.Parallel()
	// Holders are Lost 3/4 of it after the last contact: 15 s, which leaves
	// ZooKeeper's JVM time to start again for the Resumed case even on a
	// loaded 2-core machine (9 s was once not enough in CI).
	const sessionTimeout = 20 * time.Second
	r := startRunScript(t, "--session-timeout", sessionTimeout.String())

	holder := r.zklockd.acquire("holder", &zklockv1.AcquireRequest{Lock: "rehearsal", Owner: "holder"})
	g1, _ := holder.granted(wait)

	// A short outage: Suspended, then Resumed.
	stopped := time.Now()
	r.command("zk-stop")
	if e := holder.next(wait); e.GetSuspended() == nil {
		t.Fatalf("holder: %v after zk-stop, want Suspended", e.AcquireResponse)
	}
	r.command("zk-start")
	started := time.Since(stopped)
	if e := holder.next(sessionTimeout); e.GetResumed() == nil {
		t.Fatalf("holder: %v %v after zk-stop (zk-start returned after %v), want Resumed",
			e.AcquireResponse, time.Since(stopped).Round(time.Millisecond), started.Round(time.Millisecond))
	}

	// A long one: Suspended, then Lost SESSION_EXPIRED, and zklockd still
	// answers.
	out := r.command("zk-stop")
	if !strings.Contains(out, "zklockd keeps running") {
		t.Errorf("zk-stop printed %q, want it to say zklockd keeps running", out)
	}
	if e := holder.next(wait); e.GetSuspended() == nil {
		t.Fatalf("holder: %v after zk-stop, want Suspended", e.AcquireResponse)
	}
	e := holder.next(sessionTimeout + wait)
	if e.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SESSION_EXPIRED {
		t.Fatalf("holder: %v with ZooKeeper stopped, want Lost SESSION_EXPIRED", e.AcquireResponse)
	}
	if err := holder.end(wait); err != nil {
		t.Errorf("holder's stream ended with %v after Lost, want OK", err)
	}
	if !r.running() {
		t.Fatalf("run.sh exited while ZooKeeper was stopped; its output:\n%s", r.out)
	}
	h, err := healthpb.NewHealthClient(r.zklockd.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("zklockd's health with ZooKeeper stopped: %v, %v; want NOT_SERVING", h, err)
	}
	if !strings.Contains(r.out.String(), "zklockd keeps running without ZooKeeper") {
		t.Errorf("run.sh did not say that zklockd keeps running; its output:\n%s", r.out)
	}

	r.command("zk-start")
	// Until zklockd has a session again, Acquire answers UNAVAILABLE
	// NO_SESSION (retry); health says SERVING once it has.
	if err := r.zklockd.waitServing(sessionTimeout + wait); err != nil {
		t.Fatalf("zklockd after zk-start: %v", err)
	}
	next := r.zklockd.acquire("next", &zklockv1.AcquireRequest{Lock: "rehearsal", Owner: "next"})
	g2, _ := next.granted(wait)
	if g2.GetFencingToken() <= g1.GetFencingToken() {
		t.Errorf("fencing token after the outage %d, want more than %d", g2.GetFencingToken(), g1.GetFencingToken())
	}

	// Ctrl-C stops both, zklockd first: its holder is told SHUTDOWN.
	pids := r.pids()
	r.interrupt()
	if e := next.next(wait); e.GetLost().GetReason() != zklockv1.LostReason_LOST_REASON_SHUTDOWN {
		t.Errorf("next: %v after SIGINT, want Lost SHUTDOWN", e.AcquireResponse)
	}
	st := r.waitExit()
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("run.sh after SIGINT: %v, want killed by SIGINT", st)
	}
	r.checkGone(pids)
}

// TestRunScriptZklockdDies: if zklockd dies on its own, scripts/run.sh stops
// ZooKeeper and exits non-zero.
func TestRunScriptZklockdDies(t *testing.T) {
	t.Parallel()
	r := startRunScript(t)
	pids := r.pids()
	if err := syscall.Kill(pids["zklockd"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := r.waitExit()
	if st.ExitCode() != 128+int(syscall.SIGKILL) {
		t.Errorf("run.sh after zklockd was killed: %v, want exit status %d", st, 128+int(syscall.SIGKILL))
	}
	r.checkGone(pids)
}

// runScript is a scripts/run.sh running zklockdPath against its own
// ZooKeeper, in a RUN_DIR of its own.
type runScript struct {
	t       *testing.T
	script  string
	env     []string
	runDir  string
	zkPort  int
	cmd     *exec.Cmd
	out     *syncbuf.Buffer // run.sh's output, and zklockd's
	exited  chan struct{}
	zklockd *daemon // a client of run.sh's zklockd (not its process)
}

// startRunScript starts scripts/run.sh with zklockd flags args and returns
// once zklockd serves. The test's cleanup stops it (SIGTERM, then SIGKILL)
// if it still runs, then kills what it left running.
func startRunScript(t *testing.T, args ...string) *runScript {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "scripts", "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		r := &runScript{t: t, script: script, runDir: t.TempDir(), zkPort: reserveZKPort(t), out: &syncbuf.Buffer{}, exited: make(chan struct{})}
		listen := freeLoopbackAddr(t)
		r.env = []string{
			"RUN_DIR=" + r.runDir,
			"ZK_PORT=" + strconv.Itoa(r.zkPort),
			"ZKLOCK_PORT=" + portOf(t, listen),
			"ZKLOCK_METRICS_PORT=" + portOf(t, freeLoopbackAddr(t)),
			"ZKLOCKD=" + zklockdPath,
		}
		gorace := "atexit_sleep_ms=0"
		for _, kv := range os.Environ() {
			switch {
			case strings.HasPrefix(kv, "ZKLOCK_"), strings.HasPrefix(kv, "ZK_"), strings.HasPrefix(kv, "RUN_DIR="):
				// The caller's settings must not change the run.
			case strings.HasPrefix(kv, "GORACE="):
				gorace = strings.TrimPrefix(kv, "GORACE=") + " " + gorace
			default:
				r.env = append(r.env, kv)
			}
		}
		r.env = append(r.env, "GORACE="+gorace)

		// env --default-signal: run.sh can trap SIGINT even if this test
		// was started with it ignored (a shell's background job).
		r.cmd = exec.Command("env", append([]string{"--default-signal=INT", script}, args...)...)
		r.cmd.Env = r.env
		r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
		// If this test dies, run.sh gets SIGTERM and stops what it started.
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := startChild(r.cmd, r.exited, nil); err != nil {
			t.Fatalf("run.sh: %v", err)
		}
		t.Cleanup(r.cleanup)

		// The banner comes once zklockd listens.
		deadline := time.Now().Add(runScriptTimeout)
		for !strings.Contains(r.out.String(), "Ctrl-C stops zklockd") && r.running() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !r.running() && strings.Contains(r.out.String(), "in use") && attempt < 3 {
			// A port picked free was taken before run.sh bound it.
			t.Logf("run.sh: a port was taken, trying others:\n%s", r.out)
			continue
		}
		if !r.running() || !strings.Contains(r.out.String(), "Ctrl-C stops zklockd") {
			t.Fatalf("run.sh did not start zklockd within %v; its output:\n%s", runScriptTimeout, r.out)
		}
		r.zklockd = &daemon{t: t, name: "run.sh's zklockd", listen: listen}
		r.zklockd.conn = r.zklockd.dial()
		r.zklockd.client = zklockv1.NewLockServiceClient(r.zklockd.conn)
		t.Cleanup(func() { r.zklockd.conn.Close() })
		if err := r.zklockd.waitServing(startTimeout); err != nil {
			t.Fatalf("run.sh's zklockd: %v; run.sh's output:\n%s", err, r.out)
		}
		return r
	}
}

// reserveZKPort returns a free loopback port for ZooKeeper outside the
// kernel's ephemeral range, so that zklockd, retrying while ZooKeeper is
// stopped, cannot connect to itself from that very port. It takes the
// port's lock the way internal/zktest does, until the test ends, so that no
// zktest server is given it meanwhile.
func reserveZKPort(t *testing.T) int {
	t.Helper()
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, err1 := strconv.Atoi(f[0])
			z, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil {
				lo, hi = a, z
			}
		}
	}
	dir := filepath.Join(os.TempDir(), "zktest-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		p := 10000 + rand.IntN(55536)
		if p >= lo && p <= hi {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)+".lock"), os.O_RDONLY|os.O_CREATE, 0o666)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close()
			continue
		}
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			f.Close()
			continue
		}
		l.Close()
		t.Cleanup(func() { f.Close() })
		return p
	}
	t.Fatal("no free port for ZooKeeper outside the ephemeral range")
	return 0
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func (r *runScript) running() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// command runs scripts/run.sh with args (zk-stop, zk-start) on the same
// RUN_DIR, as make zk-stop and make zk-start do from another terminal, and
// returns its output; it fails the test if that command fails.
func (r *runScript) command(args ...string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runScriptTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, r.script, args...)
	c.Env = r.env
	out, err := c.CombinedOutput()
	if err != nil {
		r.t.Fatalf("run.sh %s: %v; it printed:\n%s\nrun.sh's output:\n%s", strings.Join(args, " "), err, out, r.out)
	}
	return string(out)
}

// pids returns the pids of zklockd and ZooKeeper from run.sh's pid files,
// checking that each is running.
func (r *runScript) pids() map[string]int {
	r.t.Helper()
	pids := map[string]int{}
	for name, file := range map[string]string{"zklockd": "zklockd.pid", "ZooKeeper": "zk/zookeeper.pid"} {
		pid, err := readPid(filepath.Join(r.runDir, file))
		if err != nil {
			r.t.Fatalf("%s: %v", name, err)
		}
		if syscall.Kill(pid, 0) != nil {
			r.t.Fatalf("%s (pid %d) is not running", name, pid)
		}
		pids[name] = pid
	}
	return pids
}

func readPid(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// interrupt sends SIGINT to run.sh, as Ctrl-C in its terminal does.
func (r *runScript) interrupt() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		r.t.Fatalf("run.sh: SIGINT: %v", err)
	}
}

// waitExit waits for run.sh to exit and returns its state.
func (r *runScript) waitExit() *os.ProcessState {
	r.t.Helper()
	select {
	case <-r.exited:
		return r.cmd.ProcessState
	case <-time.After(runScriptTimeout):
		r.t.Fatalf("run.sh still running %v later; its output:\n%s", runScriptTimeout, r.out)
	}
	return nil
}

// checkGone checks that run.sh left none of pids running, nor anything
// listening on ZooKeeper's port.
func (r *runScript) checkGone(pids map[string]int) {
	r.t.Helper()
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			r.t.Errorf("%s (pid %d) still exists after run.sh exited (kill -0: %v)", name, pid, err)
		}
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.zkPort), time.Second); err == nil {
		c.Close()
		r.t.Errorf("something still listens on ZooKeeper's port %d after run.sh exited", r.zkPort)
	}
	if strings.Contains(r.out.String(), "panic:") {
		r.t.Errorf("run.sh's output shows a panic")
	}
	for _, race := range dataRaces(r.out.String()) {
		if !knownLibraryRace(race) {
			r.t.Errorf("zklockd's output shows a data race:\n%s", race)
		}
	}
}

// cleanup stops run.sh if it still runs (SIGTERM, so that it stops what it
// started), then kills whatever its pid files still name, and logs its
// output if the test failed.
func (r *runScript) cleanup() {
	if r.running() {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(runScriptTimeout):
			r.cmd.Process.Kill()
			<-r.exited
		}
	}
	for file, mark := range map[string]string{"zklockd.pid": zklockdPath, "zk/zookeeper.pid": r.runDir} {
		pid, err := readPid(filepath.Join(r.runDir, file))
		if err != nil || pid <= 0 {
			continue
		}
		// Its command line names zklockdPath or the RUN_DIR: the pid is
		// not another process's by now.
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmdline), mark) {
			syscall.Kill(pid, syscall.SIGKILL)
			r.t.Errorf("run.sh left pid %d (%s) running", pid, file)
		}
	}
	if r.t.Failed() {
		r.t.Logf("output of run.sh (RUN_DIR %s):\n%s", r.runDir, r.out)
	}
}
