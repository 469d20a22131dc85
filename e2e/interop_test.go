package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/zklock/zklock/clients/go/zklock"
	"github.com/zklock/zklock/internal/zktest"
)

// checker is the resource every interop contender writes to: it refuses a
// critical section that begins while another is open, and a zklock token
// lower than one it has seen. Contenders speak lines over TCP:
// "ENTER <who> <token>" (token 0: none, as for Curator and Kazoo) and
// "EXIT <who>", each answered "OK" or "VIOLATION".
type checker struct {
	lis net.Listener
	wg  sync.WaitGroup

	mu         sync.Mutex
	holder     string
	maxToken   int64
	sections   map[string]int // per contender kind (the part of who before '-')
	violations []string
}

func startChecker(t *testing.T) *checker {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &checker{lis: lis, sections: map[string]int{}}
	c.wg.Add(1)
	go c.accept()
	t.Cleanup(func() {
		lis.Close()
		c.wg.Wait()
	})
	return c
}

func (c *checker) addr() string { return c.lis.Addr().String() }

func (c *checker) accept() {
	defer c.wg.Done()
	for {
		conn, err := c.lis.Accept()
		if err != nil {
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer conn.Close()
			sc := bufio.NewScanner(conn)
			for sc.Scan() {
				reply := c.handle(strings.Fields(sc.Text()))
				fmt.Fprintln(conn, reply)
			}
		}()
	}
}

func (c *checker) handle(f []string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(f) == 3 && f[0] == "ENTER":
		token, _ := strconv.ParseInt(f[2], 10, 64)
		if c.holder != "" {
			c.violations = append(c.violations, fmt.Sprintf("%s entered while %s held", f[1], c.holder))
			return "VIOLATION"
		}
		if token > 0 && token <= c.maxToken {
			c.violations = append(c.violations, fmt.Sprintf("%s: token %d not above %d", f[1], token, c.maxToken))
			return "VIOLATION"
		}
		c.holder = f[1]
		c.maxToken = max(c.maxToken, token)
		kind, _, _ := strings.Cut(f[1], "-")
		c.sections[kind]++
		return "OK"
	case len(f) == 2 && f[0] == "EXIT" && c.holder == f[1]:
		c.holder = ""
		return "OK"
	}
	c.violations = append(c.violations, fmt.Sprintf("bad line %q (holder %q)", f, c.holder))
	return "VIOLATION"
}

// goContender takes lock rounds times with the Go client.
func goContender(ctx context.Context, addr, lock, checker, who string, rounds int) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := net.Dial("tcp", checker)
	if err != nil {
		return err
	}
	defer ch.Close()
	r := bufio.NewReader(ch)
	c := zklock.New(conn)
	for range rounds {
		lease, err := c.Lock(ctx, lock, zklock.Owner(who))
		if err != nil {
			return err
		}
		for _, line := range []string{fmt.Sprintf("ENTER %s %d", who, lease.Token()), "EXIT " + who} {
			fmt.Fprintln(ch, line)
			if reply, err := r.ReadString('\n'); err != nil || reply != "OK\n" {
				lease.Release(ctx)
				return fmt.Errorf("%s: checker answered %q, %v", who, reply, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := lease.Release(ctx); err != nil {
			return err
		}
	}
	return nil
}

// contenders runs every contender at once and waits for them all.
func runContenders(t *testing.T, ctx context.Context, goFns map[string]func() error, cmds map[string]*exec.Cmd) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for who, f := range goFns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: %v", who, err))
				mu.Unlock()
			}
		}()
	}
	for who, cmd := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: %v\n%s", who, err, out))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
}

func (c *checker) report(t *testing.T, want map[string]int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.violations {
		t.Errorf("violation: %s", v)
	}
	t.Logf("critical sections per contender kind: %v", c.sections)
	for kind, n := range want {
		if c.sections[kind] != n {
			t.Errorf("%s: %d critical sections, want %d", kind, c.sections[kind], n)
		}
	}
}

// TestInteropCurator: Go, Java and Python zklock clients, the zklock CLI and
// Curator's InterProcessMutex (straight on ZooKeeper) contend for one lock
// path; no two critical sections overlap.
func TestInteropCurator(t *testing.T) {
	t.Parallel()
	const rounds = 10
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	javaDir, _ := filepath.Abs("../clients/java")
	pyDir, _ := filepath.Abs("../clients/python")
	jbuild := exec.CommandContext(ctx, filepath.Join(javaDir, "build.sh"), t.TempDir())
	jbuild.Stderr = os.Stderr
	cpOut, err := jbuild.Output()
	if err != nil {
		t.Fatalf("building the Java client: %v", err)
	}
	cp := strings.TrimSpace(string(cpOut))
	cli := filepath.Join(t.TempDir(), "zklock")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", cli, "github.com/zklock/zklock/cmd/zklock").CombinedOutput(); err != nil {
		t.Fatalf("building zklock: %v\n%s", err, out)
	}

	zkc := zktest.StartStandalone(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	chk := startChecker(t)
	const lock = "interop"
	pyEnv := append(os.Environ(), "PYTHONPATH="+pyDir, "PYTHONDONTWRITEBYTECODE=1")
	cmds := map[string]*exec.Cmd{
		"java-1":    exec.CommandContext(ctx, "java", "-cp", cp, "io.zklock.InteropContender", "zklock", d.listen, lock, strconv.Itoa(rounds), chk.addr(), "java-1"),
		"curator-1": exec.CommandContext(ctx, "java", "-cp", cp, "io.zklock.InteropContender", "curator", zkc.ConnectString(), "/zklock/"+lock, strconv.Itoa(rounds), chk.addr(), "curator-1"),
		"curator-2": exec.CommandContext(ctx, "java", "-cp", cp, "io.zklock.InteropContender", "curator", zkc.ConnectString(), "/zklock/"+lock, strconv.Itoa(rounds), chk.addr(), "curator-2"),
		"python-1":  exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join(pyDir, "interop_contender.py"), "zklock", d.listen, lock, strconv.Itoa(rounds), chk.addr(), "python-1"),
	}
	cmds["python-1"].Env = pyEnv
	_, port, _ := net.SplitHostPort(chk.addr())
	cmds["cli-1"] = exec.CommandContext(ctx, "bash", "-c", fmt.Sprintf(`
		for i in $(seq %d); do
			"%s" run --addr %s %s -- bash -c '
				exec 3<>/dev/tcp/127.0.0.1/%s
				echo "ENTER cli-1 $ZKLOCK_FENCING_TOKEN" >&3; read -r r <&3; [ "$r" = OK ] || exit 3
				sleep 0.005
				echo "EXIT cli-1" >&3; read -r r <&3; [ "$r" = OK ] || exit 3' || exit 1
		done`, rounds, cli, d.listen, lock, port))
	goFns := map[string]func() error{}
	for _, who := range []string{"go-1", "go-2"} {
		goFns[who] = func() error { return goContender(ctx, d.listen, lock, chk.addr(), who, rounds) }
	}
	runContenders(t, ctx, goFns, cmds)
	chk.report(t, map[string]int{"go": 2 * rounds, "java": rounds, "python": rounds, "cli": rounds, "curator": 2 * rounds})
}

// TestInteropKazoo: with --node-layout kazoo, Go and Python zklock clients
// and Kazoo's Lock (straight on ZooKeeper) contend for one lock path; no two
// critical sections overlap.
func TestInteropKazoo(t *testing.T) {
	t.Parallel()
	const rounds = 10
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pyDir, _ := filepath.Abs("../clients/python")
	zkc := zktest.StartStandalone(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{args: []string{"--node-layout", "kazoo"}})
	chk := startChecker(t)
	const lock = "interop-kazoo"
	pyEnv := append(os.Environ(), "PYTHONPATH="+pyDir, "PYTHONDONTWRITEBYTECODE=1")
	cmds := map[string]*exec.Cmd{}
	for _, who := range []string{"kazoo-1", "kazoo-2"} {
		cmds[who] = exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join(pyDir, "interop_contender.py"), "kazoo", zkc.ConnectString(), "/zklock/"+lock, strconv.Itoa(rounds), chk.addr(), who)
		cmds[who].Env = pyEnv
	}
	cmds["python-1"] = exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join(pyDir, "interop_contender.py"), "zklock", d.listen, lock, strconv.Itoa(rounds), chk.addr(), "python-1")
	cmds["python-1"].Env = pyEnv
	goFns := map[string]func() error{}
	for _, who := range []string{"go-1", "go-2"} {
		goFns[who] = func() error { return goContender(ctx, d.listen, lock, chk.addr(), who, rounds) }
	}
	runContenders(t, ctx, goFns, cmds)
	chk.report(t, map[string]int{"go": 2 * rounds, "python": rounds, "kazoo": 2 * rounds})
}
