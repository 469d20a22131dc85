package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/clients/go/zklock"
	"github.com/zklock/zklock/internal/zktest"
)

// checker is the resource every interop contender writes to: it refuses a
// critical section that begins while a conflicting one is open, and a zklock
// token lower than one it must be above. Contenders speak lines over TCP:
// "ENTER <who> <token>" for an exclusive section, "ENTER <who> <token>
// shared" for a shared one (token 0: none, as for Curator and Kazoo), and
// "EXIT <who>", each answered "OK" or "VIOLATION". Shared sections may
// overlap one another, never an exclusive one.
type checker struct {
	lis net.Listener

	// barrier, if above 0, holds the answer to the first shared ENTER of
	// each contender until that many contenders' first shared sections are
	// open at once (or barrierWait passed): when that many readers are
	// granted together, their sections surely overlap.
	barrier     int
	barrierWait time.Duration
	barrierDone chan struct{} // closed once the barrier filled

	mu         sync.Mutex
	writer     string          // the open exclusive section's contender
	readers    map[string]bool // the open shared sections' contenders
	firstIn    map[string]bool // contenders that opened a shared section
	maxToken   int64           // of every section so far
	maxWrite   int64           // of the exclusive sections so far
	sections   map[string]int  // per contender kind (the part of who before '-')
	overlaps   int             // pairs of shared sections open at once
	overlapped map[string]map[string]bool
	violations []string
}

// startChecker starts a checker; readers above 0 sets its barrier.
func startChecker(t *testing.T, readers ...int) *checker {
	t.Helper()
	c := &checker{sections: map[string]int{}, readers: map[string]bool{}, firstIn: map[string]bool{},
		overlapped: map[string]map[string]bool{}, barrierWait: time.Minute, barrierDone: make(chan struct{})}
	if len(readers) > 0 {
		c.barrier = readers[0]
	}
	c.lis = listenLines(t, c.serve, nil)
	return c
}

func (c *checker) addr() string { return c.lis.Addr().String() }

// serve answers one line, after the barrier if it is one.
func (c *checker) serve(fields []string) string {
	reply, atBarrier := c.handle(fields)
	if atBarrier {
		select {
		case <-c.barrierDone:
		case <-time.After(c.barrierWait):
		}
	}
	return reply
}

func kindOf(who string) string {
	kind, _, _ := strings.Cut(who, "-")
	return kind
}

// handle answers one line; atBarrier says the answer must wait for the
// barrier.
func (c *checker) handle(f []string) (reply string, atBarrier bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case (len(f) == 3 || len(f) == 4 && f[3] == "shared") && f[0] == "ENTER":
		who, shared := f[1], len(f) == 4
		token, _ := strconv.ParseInt(f[2], 10, 64)
		if c.writer != "" || c.readers[who] || (!shared && len(c.readers) > 0) {
			c.violations = append(c.violations, fmt.Sprintf("%s entered (shared %v) while %s held", who, shared, c.holdersLocked()))
			return "VIOLATION", false
		}
		// A shared holder's token is above every exclusive holder's before
		// it; an exclusive holder's above every holder's before it.
		floor := c.maxToken
		if shared {
			floor = c.maxWrite
		}
		if token > 0 && token <= floor {
			c.violations = append(c.violations, fmt.Sprintf("%s: token %d not above %d", who, token, floor))
			return "VIOLATION", false
		}
		c.maxToken = max(c.maxToken, token)
		c.sections[kindOf(who)]++
		if !shared {
			c.writer = who
			c.maxWrite = max(c.maxWrite, token)
			return "OK", false
		}
		for other := range c.readers {
			c.overlaps++
			for _, p := range [][2]string{{kindOf(who), kindOf(other)}, {kindOf(other), kindOf(who)}} {
				if c.overlapped[p[0]] == nil {
					c.overlapped[p[0]] = map[string]bool{}
				}
				c.overlapped[p[0]][p[1]] = true
			}
		}
		c.readers[who] = true
		if c.barrier == 0 || c.firstIn[who] {
			return "OK", false
		}
		c.firstIn[who] = true
		if len(c.firstIn) == c.barrier {
			close(c.barrierDone)
		}
		return "OK", true
	case len(f) == 2 && f[0] == "EXIT" && c.writer == f[1]:
		c.writer = ""
		return "OK", false
	case len(f) == 2 && f[0] == "EXIT" && c.readers[f[1]]:
		delete(c.readers, f[1])
		return "OK", false
	}
	c.violations = append(c.violations, fmt.Sprintf("bad line %q (holding: %s)", f, c.holdersLocked()))
	return "VIOLATION", false
}

// holdersLocked names the open sections; c.mu is held.
func (c *checker) holdersLocked() string {
	if c.writer != "" {
		return c.writer
	}
	var rs []string
	for r := range c.readers {
		rs = append(rs, r)
	}
	slices.Sort(rs)
	return fmt.Sprintf("readers %v", rs)
}

// enter opens a section for the test itself, as a contender would.
func (c *checker) enter(t *testing.T, who string, token int64) {
	t.Helper()
	if reply, _ := c.handle([]string{"ENTER", who, strconv.FormatInt(token, 10)}); reply != "OK" {
		t.Fatalf("checker refused ENTER %s", who)
	}
}

// exit closes a section the test opened.
func (c *checker) exit(t *testing.T, who string) {
	t.Helper()
	if reply, _ := c.handle([]string{"EXIT", who}); reply != "OK" {
		t.Fatalf("checker refused EXIT %s", who)
	}
}

// goContender takes lock rounds times with the Go client, shared if
// shared.
func goContender(ctx context.Context, addr, lock, checker, who string, rounds int, shared bool) error {
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
	opts := []zklock.Option{zklock.Owner(who)}
	enter := "ENTER %s %d"
	if shared {
		opts = append(opts, zklock.Shared())
		enter += " shared"
	}
	for range rounds {
		lease, err := c.Lock(ctx, lock, opts...)
		if err != nil {
			return err
		}
		for _, line := range []string{fmt.Sprintf(enter, who, lease.Token()), "EXIT " + who} {
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

// contenders are contenders running in the background.
type contenders struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	failures []string
}

// startContenders starts every contender at once.
func startContenders(goFns map[string]func() error, cmds map[string]*exec.Cmd) *contenders {
	cs := &contenders{}
	fail := func(f string) {
		cs.mu.Lock()
		cs.failures = append(cs.failures, f)
		cs.mu.Unlock()
	}
	for who, f := range goFns {
		cs.wg.Add(1)
		go func() {
			defer cs.wg.Done()
			if err := f(); err != nil {
				fail(fmt.Sprintf("%s: %v", who, err))
			}
		}()
	}
	for who, cmd := range cmds {
		cs.wg.Add(1)
		go func() {
			defer cs.wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				fail(fmt.Sprintf("%s: %v\n%s", who, err, out))
			}
		}()
	}
	return cs
}

// failed returns the failures so far.
func (cs *contenders) failed() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return slices.Clone(cs.failures)
}

// wait waits for every contender and reports their failures.
func (cs *contenders) wait(t *testing.T) {
	t.Helper()
	cs.wg.Wait()
	for _, f := range cs.failed() {
		t.Error(f)
	}
}

// runContenders runs every contender at once and waits for them all.
func runContenders(t *testing.T, goFns map[string]func() error, cmds map[string]*exec.Cmd) {
	t.Helper()
	startContenders(goFns, cmds).wait(t)
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
	pyDir, _ := filepath.Abs("../clients/python")
	cp := javaClassPath(t)
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
		goFns[who] = func() error { return goContender(ctx, d.listen, lock, chk.addr(), who, rounds, false) }
	}
	runContenders(t, goFns, cmds)
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
		goFns[who] = func() error { return goContender(ctx, d.listen, lock, chk.addr(), who, rounds, false) }
	}
	runContenders(t, goFns, cmds)
	chk.report(t, map[string]int{"go": 2 * rounds, "python": rounds, "kazoo": 2 * rounds})
}

// rwContenders are the readers or the writers of a read-write interop test.
type rwContenders struct {
	goFns map[string]func() error
	cmds  map[string]*exec.Cmd
}

func (c rwContenders) who() []string {
	var ws []string
	for w := range c.goFns {
		ws = append(ws, w)
	}
	for w := range c.cmds {
		ws = append(ws, w)
	}
	slices.Sort(ws)
	return ws
}

// runReadWrite runs readers and writers, zklock's and another client's,
// on one lock of d, checked by chk (started with a barrier of every
// reader), and checks the node names each one creates against names. The
// contenders must stop when ctx ends.
//
// First, so that readers surely hold together at least once: the test
// takes the lock exclusively (the gate), starts the readers and waits until
// all are queued behind it, then starts the writers and waits until they
// are queued behind the readers, and only then releases the gate. Every
// reader is granted at once, and the checker holds each reader's first
// section open until all are open. The remaining rounds contend freely.
func runReadWrite(t *testing.T, ctx context.Context, d *daemon, chk *checker, lock string, readers, writers rwContenders, names map[zklockv1.Mode]*regexp.Regexp) {
	t.Helper()
	if n := len(readers.who()); n != chk.barrier {
		t.Fatalf("%d readers, but the checker's barrier waits for %d", n, chk.barrier)
	}
	gate, err := zklock.New(d.conn).Lock(ctx, lock, zklock.Owner("gate-1"))
	if err != nil {
		t.Fatalf("gate: %v", err)
	}
	chk.enter(t, "gate-1", gate.Token())

	want := map[string]zklockv1.Mode{}
	for _, who := range readers.who() {
		want[who] = zklockv1.Mode_MODE_SHARED
	}
	rs := startContenders(readers.goFns, readers.cmds)
	t.Cleanup(rs.wg.Wait) // after ctx ended
	holders := awaitQueued(t, d, lock, want, names, rs)
	if len(holders) != 1 || holders[0].GetOwner() != "gate-1" || !names[zklockv1.Mode_MODE_EXCLUSIVE].MatchString(holders[0].GetNode()) {
		t.Errorf("holders %v, want the gate alone, its node named as %v", holders, names[zklockv1.Mode_MODE_EXCLUSIVE])
	}
	for _, who := range writers.who() {
		want[who] = zklockv1.Mode_MODE_EXCLUSIVE
	}
	ws := startContenders(writers.goFns, writers.cmds)
	t.Cleanup(ws.wg.Wait)
	awaitQueued(t, d, lock, want, names, rs, ws)

	chk.exit(t, "gate-1")
	if err := gate.Release(ctx); err != nil {
		t.Fatalf("gate: %v", err)
	}
	rs.wait(t)
	ws.wait(t)
}

// awaitQueued waits until every contender in want (owner: mode) waits in
// the lock's queue, checks its mode and its node's name (names: by mode),
// and returns the lock's holders. It fails at once if a contender of cs
// failed.
func awaitQueued(t *testing.T, d *daemon, lock string, want map[string]zklockv1.Mode, names map[zklockv1.Mode]*regexp.Regexp, cs ...*contenders) []*zklockv1.Contender {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // JVMs start slowly on a busy machine
	for {
		r, err := d.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
		if err != nil {
			t.Fatalf("Describe: %v", err)
		}
		waiting := map[string]*zklockv1.Contender{}
		for _, w := range r.GetWaiters() {
			waiting[w.GetOwner()] = w
		}
		missing := 0
		for who := range want {
			if waiting[who] == nil {
				missing++
			}
		}
		if missing == 0 {
			for who, mode := range want {
				w := waiting[who]
				if w.GetMode() != mode || !names[mode].MatchString(w.GetNode()) {
					t.Errorf("%s waits as %v in node %q, want %v in a node named as %v", who, w.GetMode(), w.GetNode(), mode, names[mode])
				}
			}
			return r.GetHolders()
		}
		for _, c := range cs {
			if f := c.failed(); len(f) > 0 {
				t.Fatalf("a contender failed before all were queued:\n%s", strings.Join(f, "\n"))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %v not queued on %s after 2m: %v", missing, want, lock, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantOverlaps checks that shared sections overlapped, with every reader
// kind holding together with another kind, and that the barrier filled.
func (c *checker) wantOverlaps(t *testing.T, kinds ...string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.barrierDone:
	default:
		t.Errorf("the readers' first sections were not all open at once (%d of %d)", len(c.firstIn), c.barrier)
	}
	t.Logf("%d pairs of shared sections open at once; kinds together: %v", c.overlaps, c.overlapped)
	if c.overlaps == 0 {
		t.Errorf("no two shared sections overlapped: the test proved nothing about shared holds")
	}
	for _, k := range kinds {
		others := 0
		for o := range c.overlapped[k] {
			if o != k {
				others++
			}
		}
		if others == 0 {
			t.Errorf("no %s reader held together with a reader of another kind", k)
		}
	}
}

// TestInteropCuratorReadWrite: with --node-layout curator-rw, zklock's
// shared and exclusive holds (Go and Python clients) and both sides of
// Curator's InterProcessReadWriteLock (straight on ZooKeeper) contend for
// one lock path: readers hold together, a writer with no one. Each side
// names its nodes _c_<uuid>-__READ__<seq> or _c_<uuid>-__WRIT__<seq>.
func TestInteropCuratorReadWrite(t *testing.T) {
	t.Parallel()
	const rounds = 10
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cp := javaClassPath(t)
	pyDir, _ := filepath.Abs("../clients/python")
	zkc := zktest.StartStandalone(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{args: []string{"--node-layout", "curator-rw"}})
	const lock = "interop-rw"
	chk := startChecker(t, 5) // the readers below
	curator := func(mode, who string) *exec.Cmd {
		return exec.CommandContext(ctx, "java", "-cp", cp, "io.zklock.InteropContender", mode, zkc.ConnectString(), "/zklock/"+lock, strconv.Itoa(rounds), chk.addr(), who)
	}
	readers := rwContenders{goFns: map[string]func() error{}, cmds: map[string]*exec.Cmd{
		"curator-r1": curator("curator-read", "curator-r1"),
		"curator-r2": curator("curator-read", "curator-r2"),
		"python-r1":  exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join(pyDir, "interop_contender.py"), "zklock-shared", d.listen, lock, strconv.Itoa(rounds), chk.addr(), "python-r1"),
	}}
	writers := rwContenders{goFns: map[string]func() error{}, cmds: map[string]*exec.Cmd{
		"curator-w1": curator("curator-write", "curator-w1"),
	}}
	readers.cmds["python-r1"].Env = append(os.Environ(), "PYTHONPATH="+pyDir, "PYTHONDONTWRITEBYTECODE=1")
	for _, who := range []string{"go-r1", "go-r2"} {
		readers.goFns[who] = func() error { return goContender(ctx, d.listen, lock, chk.addr(), who, rounds, true) }
	}
	writers.goFns["go-w1"] = func() error { return goContender(ctx, d.listen, lock, chk.addr(), "go-w1", rounds, false) }
	uuid := `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	runReadWrite(t, ctx, d, chk, lock, readers, writers, map[zklockv1.Mode]*regexp.Regexp{
		zklockv1.Mode_MODE_SHARED:    regexp.MustCompile(`^_c_` + uuid + `-__READ__[0-9]{10}$`),
		zklockv1.Mode_MODE_EXCLUSIVE: regexp.MustCompile(`^_c_` + uuid + `-__WRIT__[0-9]{10}$`),
	})
	chk.report(t, map[string]int{"gate": 1, "go": 3 * rounds, "python": rounds, "curator": 3 * rounds})
	chk.wantOverlaps(t, "go", "python", "curator")
}

// TestInteropKazooReadWrite: with --node-layout kazoo, zklock's shared and
// exclusive holds (Go and Python clients) and Kazoo's ReadLock and
// WriteLock (straight on ZooKeeper) contend for one lock path: readers
// hold together, a writer with no one. Each side names its nodes
// <uuid>__rlock__<seq> or <uuid>__lock__<seq>.
func TestInteropKazooReadWrite(t *testing.T) {
	t.Parallel()
	const rounds = 10
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pyDir, _ := filepath.Abs("../clients/python")
	zkc := zktest.StartStandalone(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{args: []string{"--node-layout", "kazoo"}})
	const lock = "interop-kazoo-rw"
	chk := startChecker(t, 5) // the readers below
	py := func(mode, target, lock, who string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join(pyDir, "interop_contender.py"), mode, target, lock, strconv.Itoa(rounds), chk.addr(), who)
		cmd.Env = append(os.Environ(), "PYTHONPATH="+pyDir, "PYTHONDONTWRITEBYTECODE=1")
		return cmd
	}
	readers := rwContenders{goFns: map[string]func() error{}, cmds: map[string]*exec.Cmd{
		"kazoo-r1":  py("kazoo-read", zkc.ConnectString(), "/zklock/"+lock, "kazoo-r1"),
		"kazoo-r2":  py("kazoo-read", zkc.ConnectString(), "/zklock/"+lock, "kazoo-r2"),
		"python-r1": py("zklock-shared", d.listen, lock, "python-r1"),
	}}
	writers := rwContenders{goFns: map[string]func() error{}, cmds: map[string]*exec.Cmd{
		"kazoo-w1": py("kazoo-write", zkc.ConnectString(), "/zklock/"+lock, "kazoo-w1"),
	}}
	for _, who := range []string{"go-r1", "go-r2"} {
		readers.goFns[who] = func() error { return goContender(ctx, d.listen, lock, chk.addr(), who, rounds, true) }
	}
	writers.goFns["go-w1"] = func() error { return goContender(ctx, d.listen, lock, chk.addr(), "go-w1", rounds, false) }
	runReadWrite(t, ctx, d, chk, lock, readers, writers, map[zklockv1.Mode]*regexp.Regexp{
		zklockv1.Mode_MODE_SHARED:    regexp.MustCompile(`^[0-9a-f]{32}__rlock__[0-9]{10}$`),
		zklockv1.Mode_MODE_EXCLUSIVE: regexp.MustCompile(`^[0-9a-f]{32}__lock__[0-9]{10}$`),
	})
	chk.report(t, map[string]int{"gate": 1, "go": 3 * rounds, "python": rounds, "kazoo": 3 * rounds})
	chk.wantOverlaps(t, "go", "python", "kazoo")
}

// TestCheckerRules: the checker lets shared sections overlap, and refuses
// any other overlap and a token that does not rise as it must.
func TestCheckerRules(t *testing.T) {
	t.Parallel()
	c := &checker{sections: map[string]int{}, readers: map[string]bool{}, firstIn: map[string]bool{},
		overlapped: map[string]map[string]bool{}, barrierDone: make(chan struct{})}
	steps := []struct{ line, want string }{
		{"ENTER w-1 10", "OK"},
		{"ENTER r-1 0 shared", "VIOLATION"}, // a reader with a writer
		{"ENTER w-2 0", "VIOLATION"},        // two writers
		{"EXIT w-1", "OK"},
		{"ENTER r-1 9 shared", "VIOLATION"}, // below the last writer's token
		{"ENTER r-1 12 shared", "OK"},
		{"ENTER r-2 11 shared", "OK"}, // readers together; tokens need not rise among them
		{"ENTER x-1 0 shared", "OK"},
		{"ENTER w-1 0", "VIOLATION"}, // a writer with readers
		{"EXIT r-1", "OK"},
		{"EXIT r-2", "OK"},
		{"EXIT x-1", "OK"},
		{"ENTER w-1 12", "VIOLATION"}, // not above the readers' tokens
		{"ENTER w-1 13", "OK"},
		{"EXIT r-1", "VIOLATION"},
		{"EXIT w-1", "OK"},
	}
	for _, s := range steps {
		if got, _ := c.handle(strings.Fields(s.line)); got != s.want {
			t.Errorf("%q: %s, want %s", s.line, got, s.want)
		}
	}
	if c.overlaps != 3 || !c.overlapped["x"]["r"] || !c.overlapped["r"]["x"] || c.overlapped["w"] != nil {
		t.Errorf("overlaps %d %v, want 3: r-1 with r-2, x-1 with both", c.overlaps, c.overlapped)
	}
}
