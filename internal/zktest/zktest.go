package zktest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DefaultStartTimeout is how long StartStandalone, StartEnsemble,
// Server.Start and Cluster.StartAll wait for servers to serve by default.
const DefaultStartTimeout = 30 * time.Second

// fourLWWhitelist is the value of 4lw.commands.whitelist.
const fourLWWhitelist = "ruok,srvr,mntr,stat,cons,conf,envi,isro,wchc,wchs,dump"

type kv struct{ k, v string }

type config struct {
	tickTime     time.Duration
	maxSession   time.Duration
	initLimit    int
	syncLimit    int
	startTimeout time.Duration
	extra        []kv
	sysProps     map[string]string
	jvmArgs      []string
}

func defaultConfig() *config {
	return &config{
		tickTime:     200 * time.Millisecond,
		maxSession:   60 * time.Second,
		initLimit:    30, // 6s at the default tick
		syncLimit:    10, // 2s at the default tick
		startTimeout: DefaultStartTimeout,
		sysProps:     map[string]string{},
	}
}

// An Option changes how servers are configured or started.
type Option func(*config)

// WithTickTime sets zoo.cfg's tickTime (default 200ms). The minimum session
// timeout is always two ticks; initLimit and syncLimit count ticks.
func WithTickTime(d time.Duration) Option {
	return func(c *config) { c.tickTime = d }
}

// WithMaxSessionTimeout sets zoo.cfg's maxSessionTimeout (default 60s).
func WithMaxSessionTimeout(d time.Duration) Option {
	return func(c *config) { c.maxSession = d }
}

// WithLimits sets zoo.cfg's initLimit and syncLimit, in ticks (defaults 30
// and 10). syncLimit also bounds how long followers take to notice a paused
// leader and vice versa.
func WithLimits(initLimit, syncLimit int) Option {
	return func(c *config) { c.initLimit, c.syncLimit = initLimit, syncLimit }
}

// WithStartTimeout sets how long to wait for servers to serve (default
// DefaultStartTimeout), both at start-up and in Server.Start and
// Cluster.StartAll.
func WithStartTimeout(d time.Duration) Option {
	return func(c *config) { c.startTimeout = d }
}

// WithConfig sets an arbitrary zoo.cfg key, overriding the value this
// package would write. dataDir, clientPort and server.N are managed by the
// package and cannot be set.
func WithConfig(key, value string) Option {
	return func(c *config) { c.extra = append(c.extra, kv{key, value}) }
}

// WithSystemProperty passes -Dkey=value to the server JVM, after (and so
// overriding) this package's own properties.
func WithSystemProperty(key, value string) Option {
	return func(c *config) { c.sysProps[key] = value }
}

// WithJVMArgs appends arguments to the JVM command line, before the class
// path and main class.
func WithJVMArgs(args ...string) Option {
	return func(c *config) { c.jvmArgs = append(c.jvmArgs, args...) }
}

// Cluster is a set of running ZooKeeper servers: one standalone server or
// the members of an ensemble. Its methods may be called from any goroutine,
// except those documented to fail the test, which must be called from the
// test goroutine.
type Cluster struct {
	t          testing.TB
	cfg        *config
	rt         javaRuntime
	standalone bool
	dir        string
	servers    []*Server
	ports      []*portReservation
	cdsArchive string // class data sharing archive path; "" if off
}

// StartStandalone starts one ZooKeeper server (ZooKeeperServerMain) and
// returns once it serves. The server is killed when the test ends. It fails
// the test with t.Fatalf, quoting the server log, if the server does not
// serve within the start timeout. Call it from the test goroutine.
func StartStandalone(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	return start(t, 1, true, opts)
}

// StartEnsemble starts an ensemble of n servers (QuorumPeerMain; n is
// usually 3 or 5) and returns once every member is serving as leader or
// follower. The servers are killed when the test ends. It fails the test with
// t.Fatalf, quoting the server logs, if that does not happen within the start
// timeout. Call it from the test goroutine.
func StartEnsemble(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("zktest: StartEnsemble: need at least one server, got %d", n)
	}
	return start(t, n, false, opts)
}

func start(t testing.TB, n int, standalone bool, opts []Option) *Cluster {
	t.Helper()
	cfg := defaultConfig()
	for _, o := range opts {
		o(cfg)
	}
	for _, e := range cfg.extra {
		if e.k == "dataDir" || e.k == "clientPort" || strings.HasPrefix(e.k, "server.") {
			t.Fatalf("zktest: WithConfig(%q): zktest manages that setting", e.k)
		}
	}
	rt, err := findRuntime()
	if err != nil {
		t.Fatalf("%v", err)
	}
	// TempDir first: cleanups run last-in first-out, so the servers are
	// killed before their directories are removed.
	c := &Cluster{t: t, cfg: cfg, rt: rt, standalone: standalone, dir: t.TempDir()}
	for i := range n {
		dir := filepath.Join(c.dir, "server"+strconv.Itoa(i+1))
		s := &Server{
			c:       c,
			id:      i + 1,
			dir:     dir,
			dataDir: filepath.Join(dir, "data"),
			logPath: filepath.Join(dir, "zookeeper.log"),
		}
		c.servers = append(c.servers, s)
	}
	c.cdsArchive = cdsArchivePath(rt, jvmFlags(cfg, c.servers[0].dir))
	t.Cleanup(c.cleanup)

	begin := time.Now()
	const attempts = 4
	for attempt := 1; ; attempt++ {
		err := c.launch()
		if err == nil {
			break
		}
		c.shutdownAll()
		c.releasePorts()
		var se *startError
		if errors.As(err, &se) && se.bind && attempt < attempts {
			t.Logf("zktest: port collision, retrying on other ports: %v", se.short())
			continue
		}
		t.Fatalf("%v", err)
	}
	kind := "standalone server"
	if !standalone {
		kind = fmt.Sprintf("%d-server ensemble", n)
	}
	t.Logf("zktest: %s serving at %s (started in %v)", kind, c.ConnectString(), time.Since(begin).Round(time.Millisecond))
	return c
}

// testHookReserved, if set, is called with the ports of each start attempt.
var testHookReserved func([]*portReservation)

// launch reserves ports, writes configuration and data directories, starts
// every server and waits until all serve.
func (c *Cluster) launch() error {
	perServer := 3
	if c.standalone {
		perServer = 1
	}
	ports, err := reservePorts(perServer * len(c.servers))
	if err != nil {
		return err
	}
	c.ports = ports
	if testHookReserved != nil {
		testHookReserved(ports)
	}
	for i, s := range c.servers {
		s.clientPort = ports[i*perServer].port
		if !c.standalone {
			s.peerPort = ports[i*perServer+1].port
			s.electionPort = ports[i*perServer+2].port
		}
	}
	for _, s := range c.servers {
		if err := s.writeFiles(); err != nil {
			return err
		}
	}
	for _, s := range c.servers {
		if err := s.launch(); err != nil {
			return err
		}
	}
	return c.waitServing(c.servers, c.cfg.startTimeout)
}

func (c *Cluster) releasePorts() {
	for _, p := range c.ports {
		p.release()
	}
	c.ports = nil
}

// shutdownAll ends all servers for good (see Server.shutdown).
func (c *Cluster) shutdownAll() {
	for _, s := range c.servers {
		s.signalIfRunning(s.cleanupSignal())
	}
	for _, s := range c.servers {
		s.shutdown()
	}
}

func (c *Cluster) cleanup() {
	if c.t.Failed() && os.Getenv("ZKTEST_DUMP_LOGS") != "" {
		for _, s := range c.servers {
			c.t.Logf("zktest: server %d (%s) log tail:\n%s", s.id, s.Addr(), tailFile(s.logPath, 60))
		}
	}
	c.shutdownAll()
	c.releasePorts()
}

// zooCfg renders zoo.cfg for s.
func (c *Cluster) zooCfg(s *Server) string {
	tick := c.cfg.tickTime.Milliseconds()
	if tick < 1 {
		tick = 1
	}
	base := []kv{
		{"tickTime", strconv.FormatInt(tick, 10)},
		{"initLimit", strconv.Itoa(c.cfg.initLimit)},
		{"syncLimit", strconv.Itoa(c.cfg.syncLimit)},
		{"minSessionTimeout", strconv.FormatInt(2*tick, 10)},
		{"maxSessionTimeout", strconv.FormatInt(c.cfg.maxSession.Milliseconds(), 10)},
		{"clientPortAddress", "127.0.0.1"},
		{"maxClientCnxns", "0"},
		{"admin.enableServer", "false"},
		{"4lw.commands.whitelist", fourLWWhitelist},
		{"autopurge.purgeInterval", "0"},
	}
	for _, e := range c.cfg.extra {
		replaced := false
		for i := range base {
			if base[i].k == e.k {
				base[i].v, replaced = e.v, true
			}
		}
		if !replaced {
			base = append(base, e)
		}
	}
	var b strings.Builder
	b.WriteString("# written by zktest\n")
	fmt.Fprintf(&b, "dataDir=%s\n", s.dataDir)
	fmt.Fprintf(&b, "clientPort=%d\n", s.clientPort)
	for _, e := range base {
		fmt.Fprintf(&b, "%s=%s\n", e.k, e.v)
	}
	if !c.standalone {
		for _, o := range c.servers {
			fmt.Fprintf(&b, "server.%d=127.0.0.1:%d:%d\n", o.id, o.peerPort, o.electionPort)
		}
	}
	return b.String()
}

// Size returns the number of servers in the cluster.
func (c *Cluster) Size() int { return len(c.servers) }

// Server returns the i-th server, counting from 0 (its myid is i+1).
func (c *Cluster) Server(i int) *Server { return c.servers[i] }

// Servers returns the client addresses ("127.0.0.1:port") of all servers,
// running or not, in server order.
func (c *Cluster) Servers() []string {
	addrs := make([]string, len(c.servers))
	for i, s := range c.servers {
		addrs[i] = s.Addr()
	}
	return addrs
}

// ConnectString returns the client addresses joined by commas, as accepted
// by ZooKeeper clients.
func (c *Cluster) ConnectString() string { return strings.Join(c.Servers(), ",") }

// Leader returns the index of the server that currently reports Mode: leader
// (per srvr), or -1 if none does. For a standalone cluster it returns 0 while
// the server is serving.
func (c *Cluster) Leader() int {
	for i, s := range c.servers {
		if !s.Running() || s.Paused() {
			continue
		}
		switch mode, _ := s.Mode(); mode {
		case "leader":
			return i
		case "standalone":
			if c.standalone || len(c.servers) == 1 {
				return i
			}
		}
	}
	return -1
}

// WaitForLeader polls Leader until it reports a leader or the timeout
// expires.
func (c *Cluster) WaitForLeader(timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		if l := c.Leader(); l >= 0 {
			return l, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("zktest: no leader after %v", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitServing waits until every running, unpaused server is serving (as
// leader, follower, observer or standalone server), for example after
// Server.Resume. The error quotes the logs of the servers that are not.
func (c *Cluster) WaitServing(timeout time.Duration) error {
	var running []*Server
	for _, s := range c.servers {
		if s.Running() && !s.Paused() {
			running = append(running, s)
		}
	}
	return c.waitServing(running, timeout)
}

// StopAll stops every running server with SIGTERM and waits for them to
// exit. Data directories and ports are kept for StartAll.
func (c *Cluster) StopAll() {
	for _, s := range c.servers {
		s.signalIfRunning(syscall.SIGTERM)
	}
	for _, s := range c.servers {
		s.Stop()
	}
}

// KillAll sends SIGKILL (a crash) to every running server at once and
// waits for them to exit. Data directories and ports are kept for StartAll.
func (c *Cluster) KillAll() {
	for _, s := range c.servers {
		s.signalIfRunning(syscall.SIGKILL)
	}
	for _, s := range c.servers {
		s.Kill()
	}
}

// StartAll starts every server that is not running, with the same ports and
// data, and waits until all serve. It fails the test with t.Fatalf if they do
// not serve within the start timeout; call it from the test goroutine.
func (c *Cluster) StartAll() {
	c.t.Helper()
	if err := c.TryStartAll(); err != nil {
		c.t.Fatalf("%v", err)
	}
}

// TryStartAll is StartAll returning an error instead of failing the test; it
// may be called from any goroutine.
func (c *Cluster) TryStartAll() error {
	for _, s := range c.servers {
		if err := s.startProcess(); err != nil {
			return err
		}
	}
	return c.waitServing(c.servers, c.cfg.startTimeout)
}

// ready reports whether a srvr Mode means serving for this cluster.
func (c *Cluster) ready(mode string) bool {
	if c.standalone {
		return mode == "standalone"
	}
	switch mode {
	case "leader", "follower", "observer":
		return true
	case "standalone":
		return len(c.servers) == 1
	}
	return false
}

// startError is a server that failed to start or to serve in time.
type startError struct {
	server *Server
	reason string
	bind   bool // the log shows a failure to bind a port
	tail   string
}

func (e *startError) short() string {
	return fmt.Sprintf("zktest: server %d (%s): %s", e.server.id, e.server.Addr(), e.reason)
}

func (e *startError) Error() string {
	return fmt.Sprintf("%s\n--- tail of %s ---\n%s", e.short(), e.server.logPath, e.tail)
}

func newStartError(s *Server, reason string) *startError {
	return &startError{
		server: s,
		reason: reason,
		bind:   s.logShowsBindFailure(),
		tail:   tailFile(s.logPath, 40),
	}
}

// waitServing waits until every server in ss reports a serving Mode.
func (c *Cluster) waitServing(ss []*Server, timeout time.Duration) error {
	begin := time.Now()
	deadline := begin.Add(timeout)
	pending := append([]*Server(nil), ss...)
	nextLogCheck := begin.Add(time.Second)
	for {
		// A server that has just bound its client port may accept a
		// connection and never answer it, so poll with a short timeout,
		// lengthened over time in case the machine is merely slow.
		pollTimeout := min(250*time.Millisecond+time.Since(begin)/10, 2*time.Second)
		var still []*Server
		for _, s := range pending {
			p := s.current()
			if p == nil {
				return newStartError(s, "server is not running")
			}
			select {
			case <-p.done:
				return newStartError(s, fmt.Sprintf("server exited during start-up: %v", p.err))
			default:
			}
			reply, err := FourLetterWord(s.Addr(), "srvr", pollTimeout)
			if err != nil || !c.ready(parseMode(reply)) {
				still = append(still, s)
			}
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(nextLogCheck) {
			// A server that cannot bind its election or quorum port may
			// keep running; notice that early rather than at the deadline.
			for _, s := range pending {
				if e := newStartError(s, "cannot bind a port"); e.bind {
					return e
				}
			}
			nextLogCheck = time.Now().Add(time.Second)
		}
		if time.Now().After(deadline) {
			var msgs []string
			for _, s := range pending {
				reply, err := FourLetterWord(s.Addr(), "srvr", time.Second)
				state := strings.TrimSpace(reply)
				if err != nil {
					state = err.Error()
				}
				msgs = append(msgs, newStartError(s, fmt.Sprintf("not serving after %v (srvr: %s)", timeout, state)).Error())
			}
			return errors.New(strings.Join(msgs, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
