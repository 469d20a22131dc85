package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zklock/zklock/internal/netns"
	"github.com/zklock/zklock/internal/syncbuf"
	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

// The chaos run's settings from the environment (make chaos sets them).
const (
	chaosDurationEnv = "ZKLOCK_CHAOS_DURATION" // how long to inject faults; default one round of each
	chaosSeedEnv     = "ZKLOCK_CHAOS_SEED"     // the faults' and clients' random seed; default the time
	chaosSummaryEnv  = "ZKLOCK_CHAOS_SUMMARY"  // a file to write the summary line to
	chaosLogsEnv     = "ZKLOCK_CHAOS_LOGS"     // a directory to write every zklockd's output to
)

// chaosParams shapes a chaos run.
type chaosParams struct {
	duration    time.Duration // faults go on until this has passed, at least one round of each
	timeout     time.Duration // zklockd's session timeout
	daemons     int           // zklockd processes, each in a network namespace of its own
	clients     int           // client processes per zklockd
	locks       int           // locks they share
	semaphores  int           // semaphores they share, besides
	permits     int           // each semaphore's permits
	reenter     bool          // clients re-enter some of their holds
	faults      []string      // the faults of one round, in a random order each round
	quiet       time.Duration // pause between faults
	unsafe      bool          // the negative control: zklockd's own clock off
	seed        uint64
	summaryTo   string // file to write the summary line to, if set
	allFaults   bool   // the run must inject every kind of fault
	unsafeBuild string // the zklockd built without its own clock, when unsafe
}

var everyFault = []string{"leader-kill", "follower-kill", "partition", "pause", "zklockd-kill", "client-kill", "ensemble-stop", "handoff-cut", "ensemble-wipe"}

// opName finds the ops (client.n, or client.n.rk for a re-entry) in a
// violation's text.
var opName = regexp.MustCompile(`\bc\d+\.\d+(\.r\d+)?\b`)

// TestChaos injects every fault of issues 3 and 12 into a live system (a 3-server
// ensemble, zklockds in network namespaces, client processes taking locks
// and a semaphore's permits, re-entering some of their holds, and writing
// to a fenced resource) and checks invariants I1 to I6 (see
// chaos_check_test.go). ZKLOCK_CHAOS_DURATION makes it run longer (make
// chaos).
func TestChaos(t *testing.T) {
	p := chaosParams{
		timeout: 3 * time.Second, daemons: 2, clients: 4, locks: 4, semaphores: 1, permits: 3, reenter: true,
		faults: everyFault, quiet: 2 * time.Second, allFaults: true,
		summaryTo: os.Getenv(chaosSummaryEnv),
	}
	if d := os.Getenv(chaosDurationEnv); d != "" {
		var err error
		if p.duration, err = time.ParseDuration(d); err != nil {
			t.Fatalf("%s=%q: %v", chaosDurationEnv, d, err)
		}
	}
	r := runChaos(t, p)
	if r.violations > 0 || r.orphans > 0 {
		t.Errorf("%s", r.line)
	}
}

// TestChaosNegativeControl shows that the checker catches the double grant
// that zklockd's own clock prevents. It runs a partition and a pause, each
// aimed at a client told to hold its lock through the fault while a client
// of the other zklockd waits for it, twice with one seed: against a zklockd
// built for tests only with its own-clock loss detection off, the holder
// cut off by the partition hears Lost only after the heal, long after the
// other zklockd's client was granted the lock, and the checker must report
// that overlap (I2); against the real zklockd, with the same seed, it must
// report nothing.
func TestChaosNegativeControl(t *testing.T) {
	netns.Require(t)
	p := chaosParams{
		timeout: 3 * time.Second, daemons: 2, clients: 3, locks: 1,
		faults: []string{"partition", "pause"}, quiet: time.Second,
		summaryTo: os.Getenv(chaosSummaryEnv), seed: chaosSeed(t),
	}
	t.Run("unsafe", func(t *testing.T) {
		p := p
		p.unsafe = true
		r := runChaos(t, p)
		var partition fault
		for _, f := range r.faults {
			if f.kind == "partition" {
				partition = f
			}
		}
		// An overlap of the holder the partition cut off with a client of
		// the other zklockd, granted while the partition lasted.
		n := 0
		for _, o := range r.verdict.overlaps {
			if partition.holder.op != "" && o.first.op == partition.holder.op &&
				o.second.daemon != partition.daemon && o.second.start.Before(partition.woke) {
				n++
			}
		}
		t.Logf("negative control: %d I2 violations by %s, the holder the partition cut off", n, partition.holder.op)
		if n == 0 {
			t.Errorf("no I2 violation by %s, the holder the partition hit (%s): the checker cannot catch a double grant", partition.holder.op, r.line)
		}
	})
	t.Run("safe", func(t *testing.T) {
		r := runChaos(t, p)
		if r.violations > 0 || r.orphans > 0 {
			t.Errorf("the real zklockd, with the unsafe run's seed: %s", r.line)
		}
	})
}

// chaosSeed returns the seed ZKLOCK_CHAOS_SEED sets, else a new one.
func chaosSeed(t *testing.T) uint64 {
	s := os.Getenv(chaosSeedEnv)
	if s == "" {
		return uint64(time.Now().UnixNano())
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", chaosSeedEnv, s, err)
	}
	return seed
}

// chaosResult is a run's outcome.
type chaosResult struct {
	violations, orphans int
	line                string
	verdict             verdict
	faults              []fault
}

// chaosRun is the live system of one run.
type chaosRun struct {
	t       *recapT
	p       chaosParams
	rng     *rand.Rand
	ens     *zktest.Cluster
	rec     *recorder
	dir     string
	daemons []*chaosDaemon
	procs   []*daemon // every zklockd process started, restarts included
	spans   []span    // when each of them served its slot
	clients []*chaosClientProc
	faults  []fault
	ndone   int // clients started so far, for their names
}

// chaosDaemon is one zklockd slot: a namespace, its proxies to ZooKeeper,
// and the current process.
type chaosDaemon struct {
	ns     *netns.Namespace
	zkAddr string
	socket string
	proc   *daemon
	health healthpb.HealthClient
}

// span is when a zklockd process served slot: from its start until the
// next process of the slot started (zero while it serves).
type span struct {
	slot     int
	proc     *daemon
	from, to time.Time
}

// chaosClientProc is one client process.
type chaosClientProc struct {
	id     string
	daemon int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *syncbuf.Buffer
	done   chan struct{}
}

func runChaos(tt *testing.T, p chaosParams) chaosResult {
	t := newRecapT(tt)
	netns.Require(t) // the partitions cut zklockd off in a network namespace
	if p.seed == 0 {
		p.seed = chaosSeed(tt)
	}
	t.Logf("chaos: seed %d (%s=%d repeats the faults' order and the clients' choices)", p.seed, chaosSeedEnv, p.seed)
	r := &chaosRun{t: t, p: p, rng: rand.New(rand.NewPCG(p.seed, 1)), dir: t.TempDir()}
	if p.unsafe {
		p.unsafeBuild = unsafeZklockd(t.T)
		r.p = p
	}

	r.ens = zktest.StartEnsemble(t, 3)
	r.rec = startRecorder(t.T, zktest.Client(t, r.ens.ConnectString()), "/zklock", r.permits())
	for i := range p.daemons {
		r.daemons = append(r.daemons, r.newDaemon(i))
	}
	for i := range p.daemons {
		for range p.clients {
			r.startClient(i)
		}
	}

	// Faults, one round after another, each followed by a quiet spell.
	start := time.Now()
	for round := 1; round == 1 || time.Since(start) < p.duration; round++ {
		order := append([]string(nil), p.faults...)
		r.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, kind := range order {
			time.Sleep(p.quiet)
			r.inject(kind)
		}
	}
	time.Sleep(p.quiet)

	// Settle: the clients finish their op and exit; then every node under
	// the root must go (I3).
	stopAt := time.Now()
	r.stopClients()
	orphans := r.orphans()
	for i, d := range r.daemons {
		if d.proc.hasExited() {
			t.Errorf("zklockd %d exited during the run: %v", i, d.proc.err)
		}
	}

	daemonOf := map[string]int{}
	for _, c := range r.clients {
		daemonOf[c.id] = c.daemon
	}
	r.rec.checks.Wait()
	r.rec.mu.Lock()
	h := history{events: r.rec.events, writes: r.rec.writes, faults: r.faults, daemonOf: daemonOf,
		timeout: p.timeout, end: stopAt, permits: r.permits()}
	i4, unproven, unjudged := r.rec.released, r.rec.unproven, r.rec.unjudged
	foreign, unseen, wiped := r.rec.foreign, r.rec.unseen, r.rec.wiped
	r.rec.mu.Unlock()
	v := h.check()
	r.checkBuild()

	counts := map[string]int{}
	for _, e := range h.events {
		counts[e.kind]++
		if e.kind == "not-granted" || e.kind == "error" || e.kind == "lost" || e.kind == "release-failed" || e.kind == "reenter-failed" {
			counts[e.kind+" "+e.detail]++
		}
	}
	for _, f := range r.faults {
		counts["fault "+f.kind]++
		hit := f.client
		if f.holder.op != "" {
			hit = f.holder.op + " holding " + f.holder.lock
		}
		t.Logf("fault %-13s daemon %2d at %s, recovered after %v; hit %s", f.kind, f.daemon, clock(f.start), f.end.Sub(f.start).Round(time.Millisecond), hit)
	}
	if p.allFaults {
		for _, k := range []string{"cancel-wait", "release", "fault leader-kill", "fault follower-kill", "fault partition", "fault pause", "fault zklockd-kill", "fault client-kill", "fault ensemble-stop", "fault handoff-cut", "fault ensemble-wipe"} {
			if counts[k] == 0 {
				t.Errorf("the run had no %q: every fault must happen at least once", k)
			}
		}
	}
	if p.semaphores > 0 && v.semGrants == 0 {
		t.Errorf("the run granted no semaphore's permit")
	}
	if p.reenter && v.reentries == 0 {
		t.Errorf("the run re-entered no hold")
	}
	t.Logf("records: %v", counts)
	for _, e := range h.events {
		if e.kind == "reenter-failed" || e.kind == "node-gone" {
			t.Logf("%s %s %s at %s: %s", e.kind, e.lock, e.op, clock(e.at), e.detail)
		}
	}
	for name, n := range h.permits {
		t.Logf("semaphore %s: %d holds at most at once, of %d permits", name, v.mostHeld[name], n)
	}
	refused := 0
	for _, w := range h.writes {
		if w.refused {
			refused++
		}
	}
	t.Logf("writes: %d, %d of them refused for a stale token; semaphore writes accepted without knowing whether N others held (ZooKeeper unreachable): %d; confirmed releases not checkable against ZooKeeper: %d; grants whose node was gone before it could be checked: %d; grants and releases not checkable because ZooKeeper's data was wiped: %d",
		len(h.writes), refused, unjudged, unproven, unseen, wiped)
	t.Logf("regrants measured: %d (max %v); after a release: %s; crash victims not measurable (no waiter on another zklockd): %d",
		v.regrants, v.maxRegrant.Round(time.Millisecond), quantiles(v.releaseRegrants), v.unmeasured)
	all := slices.Concat(v.violations(), foreign, i4)
	for i, s := range all {
		if i == 20 {
			t.Logf("... and %d more", len(all)-20)
			break
		}
		t.Log(s)
	}
	// The records of every hold a violation names, for the diagnosis.
	named := map[string]bool{}
	for _, s := range all {
		for _, m := range opName.FindAllString(s, -1) {
			named[holdOf(m)] = true
		}
	}
	for _, e := range h.events {
		if named[holdOf(e.op)] {
			t.Logf("  record of %s: %s %s token %d at %s %s", holdOf(e.op), e.kind, e.op, e.token, clock(e.at), e.detail)
		}
	}
	for _, o := range orphans {
		t.Logf("I3 orphan: %s", o)
	}
	t.Logf("violations: I1 %d, I2 %d (%d seen in ZooKeeper at a grant), I4 %d, I5 %d, I6 %d, Acquires refused %d, faults that cost no lease %d; I3 orphans %d",
		len(v.i1), len(v.i2)+len(foreign), len(foreign), len(i4), len(v.i5), len(v.i6), len(v.refusals), len(v.unfelt), len(orphans))
	r.checkTokensWentBack(&h)

	if dir := os.Getenv(chaosLogsEnv); dir != "" {
		r.saveLogs(dir)
	}

	res := chaosResult{violations: len(all), orphans: len(orphans), verdict: v, faults: r.faults}
	res.line = fmt.Sprintf("chaos: %d ops, %d faults, %d ensemble wipes, %d of %d partitions, pauses and handoff cuts cost a holder its lease, %d violations, %d orphans, max regrant %d ms, %d semaphore grants, %d re-entries",
		v.ops, len(r.faults), counts["fault ensemble-wipe"], v.lostToFaults, v.leaseFaults, res.violations, res.orphans, v.maxRegrant.Milliseconds(), v.semGrants, v.reentries)
	if p.unsafe {
		res.line += " (negative control)"
	}
	t.Log(res.line)
	if p.summaryTo != "" {
		f, err := os.OpenFile(p.summaryTo, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintln(f, res.line)
			err = f.Close()
		}
		if err != nil {
			t.Errorf("writing the summary: %v", err)
		}
	}
	return res
}

// checkBuild checks, from their logs, that every zklockd of the run was the
// build the run meant: the negative control's, with its own clock off,
// or the real one.
func (r *chaosRun) checkBuild() {
	const unsafeLine = "UNSAFE test build: the own clock is off"
	for _, d := range r.procs {
		if got := strings.Contains(d.out.String(), unsafeLine); got != r.p.unsafe {
			r.t.Errorf("%s: logged %q: %v, want %v", d.name, unsafeLine, got, r.p.unsafe)
		}
	}
}

// checkTokensWentBack checks each zklockd's log against the ensemble wipes:
// a process that served through a wipe and then granted a token lower than
// one it granted since the history before began must have logged
// "fencing tokens went back" (ERROR) for it; a process that served through
// no wipe must never log it (zxids only grow within one history). Grants
// count for the slot's process when they were reported (the clients of a
// slot do not know which process of it answered).
func (r *chaosRun) checkTokensWentBack(h *history) {
	const line = `level=ERROR msg="fencing tokens went back`
	var wipes []fault
	for _, f := range r.faults {
		if f.kind == "ensemble-wipe" {
			wipes = append(wipes, f)
		}
	}
	for j, s := range r.spans {
		want, lived := 0, 0
		from := s.from // the history before the wipe began then, for s
		for _, p := range r.spans[:j] {
			if p.slot == s.slot {
				// A client reports a grant after the recorder's looks in
				// ZooKeeper (up to 0.5 s): one reported in the first
				// second of a restarted process may be its predecessor's.
				from = from.Add(time.Second)
				break
			}
		}
		for k, f := range wipes {
			if f.start.Before(s.from) {
				continue
			}
			if !s.to.IsZero() && s.to.Before(f.woke) {
				break
			}
			lived++
			until := s.to // the new history's grants of s end then
			if k+1 < len(wipes) && (until.IsZero() || wipes[k+1].start.Before(until)) {
				until = wipes[k+1].start
			}
			var before int64
			fell := false
			for _, e := range h.events {
				if e.kind != "granted" || h.daemonOf[e.client] != s.slot {
					continue
				}
				switch {
				case !e.at.Before(from) && e.at.Before(f.start):
					before = max(before, e.token)
				case !e.at.Before(f.woke) && (until.IsZero() || e.at.Before(until)) && e.token < before:
					fell = true
				}
			}
			if fell {
				want++
			}
			from = f.woke
		}
		got := strings.Count(s.proc.out.String(), line)
		switch {
		case got < want:
			r.t.Errorf("%s: logged %q %d times, want at least %d: it granted lower tokens after %d of the ensemble wipes it served through", s.proc.name, line, got, want, want)
		case lived == 0 && got > 0:
			r.t.Errorf("%s: logged %q %d times, but served through no ensemble wipe", s.proc.name, line, got)
		default:
			r.t.Logf("%s: logged %q %d times; it served through %d ensemble wipes, and granted lower tokens after %d", s.proc.name, line, got, lived, want)
		}
	}
}

// quantiles summarizes latencies as their median, 99th percentile and
// maximum.
func quantiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1))].Round(time.Millisecond) }
	return fmt.Sprintf("%d, p50 %v, p99 %v, max %v", len(ds), at(0.5), at(0.99), ds[len(ds)-1].Round(time.Millisecond))
}

// saveLogs writes the output of every zklockd process of the run to dir,
// one file each, named after the process.
func (r *chaosRun) saveLogs(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.t.Errorf("saving logs: %v", err)
		return
	}
	for _, d := range r.procs {
		if err := os.WriteFile(filepath.Join(dir, d.name+".log"), []byte(d.out.String()), 0o644); err != nil {
			r.t.Errorf("saving logs: %v", err)
		}
	}
	r.t.Logf("zklockd logs written to %s", dir)
}

// newDaemon makes slot i: a namespace, a proxy on its host address to each
// ZooKeeper server, and a zklockd in the namespace on a unix socket.
func (r *chaosRun) newDaemon(i int) *chaosDaemon {
	ns := netns.New(r.t)
	var addrs []string
	for s := range r.ens.Size() {
		px, err := tcpproxy.NewOn(ns.HostIP+":0", r.ens.Server(s).Addr())
		if err != nil {
			r.t.Fatal(err)
		}
		r.t.Cleanup(px.Close)
		addrs = append(addrs, px.Addr())
	}
	d := &chaosDaemon{ns: ns, zkAddr: strings.Join(addrs, ","), socket: filepath.Join(r.dir, fmt.Sprintf("zklockd%d.sock", i))}
	r.startDaemon(i, d)
	return d
}

func (r *chaosRun) startDaemon(i int, d *chaosDaemon) {
	o := daemonOpts{
		sessionTimeout: r.p.timeout, unixSocket: d.socket,
		prefix: []string{"ip", "netns", "exec", d.ns.Name},
		args:   []string{"--log-level", "info"},
	}
	if r.p.unsafe {
		o.binary = r.p.unsafeBuild
		o.env = []string{"ZKLOCK_UNSAFE_NO_OWN_CLOCK=1"}
	}
	from := time.Now()
	for j := range r.spans {
		if r.spans[j].slot == i && r.spans[j].to.IsZero() {
			r.spans[j].to = from
		}
	}
	d.proc = startDaemon(r.t, fmt.Sprintf("zklockd%d.%d", i, len(r.procs)), d.zkAddr, o)
	r.procs = append(r.procs, d.proc)
	r.spans = append(r.spans, span{slot: i, proc: d.proc, from: from})
	d.health = healthpb.NewHealthClient(d.proc.conn)
}

// startClient starts a client process of zklockd i.
func (r *chaosRun) startClient(daemon int) {
	t := r.t
	r.ndone++
	cfg := chaosClientConfig{
		ID: fmt.Sprintf("c%d", r.ndone), Socket: r.daemons[daemon].socket, Recorder: r.rec.addr(), Seed: r.rng.Uint64(),
		Until: time.Now().Add(r.p.duration + 10*time.Minute),
	}
	r.rec.addClient(cfg.ID, daemon)
	for l := range r.p.locks {
		cfg.Locks = append(cfg.Locks, fmt.Sprintf("chaos/lock%d", l))
	}
	for s := range r.p.semaphores {
		cfg.Semaphores = append(cfg.Semaphores, fmt.Sprintf("chaos/sem%d", s))
	}
	cfg.Permits, cfg.Reenter = int32(r.p.permits), r.p.reenter
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &chaosClientProc{id: cfg.ID, daemon: daemon, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0])
	c.cmd.Env = append(os.Environ(), chaosClientEnv+"="+string(raw), "GORACE=atexit_sleep_ms=0")
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
		if out := c.out.String(); out != "" && (t.Failed() || strings.Contains(out, "DATA RACE")) {
			t.Logf("output of client %s:\n%s", c.id, out)
		}
		if strings.Contains(c.out.String(), "WARNING: DATA RACE") {
			t.Errorf("client %s: data race", c.id)
		}
	})
	r.clients = append(r.clients, c)
}

// stopClients asks every client to stop (its stdin closes), and kills the
// ones still running after 20 s.
func (r *chaosRun) stopClients() {
	for _, c := range r.clients {
		c.stdin.Close()
	}
	deadline := time.After(20 * time.Second)
	for _, c := range r.clients {
		select {
		case <-c.done:
			if c.cmd.ProcessState != nil && !c.cmd.ProcessState.Success() && c.cmd.ProcessState.ExitCode() != -1 {
				r.t.Errorf("client %s exited with %v:\n%s", c.id, c.cmd.ProcessState, c.out.String())
			}
		case <-deadline:
			r.t.Errorf("client %s still running 20 s after it was told to stop", c.id)
			c.cmd.Process.Kill()
			<-c.done
		}
	}
}

// permits maps each semaphore of the run to its permits.
func (r *chaosRun) permits() map[string]int {
	m := map[string]int{}
	for s := range r.p.semaphores {
		m[fmt.Sprintf("chaos/sem%d", s)] = r.p.permits
	}
	return m
}

// orphans waits, up to the session timeout and 3 s (the nodes of a killed
// zklockd go with its session), for no node to be left under the root, and
// returns the nodes left: orphans, since no lease is live any more. Those of
// a lock are its node's children; those of a semaphore, the children of
// its node's children (its mutex's nodes under locks, its lease nodes under
// leases), or any other child.
func (r *chaosRun) orphans() []string {
	c := zktest.Client(r.t, r.ens.ConnectString())
	sems := r.permits()
	var left []string
	deadline := time.Now().Add(r.p.timeout + 3*time.Second)
	for {
		left = left[:0]
		root := "/zklock/chaos"
		for _, lock := range zktest.Children(r.t, c, root) {
			for _, n := range zktest.Children(r.t, c, path.Join(root, lock)) {
				p := path.Join(root, lock, n)
				if _, ok := sems["chaos/"+lock]; !ok || (n != "locks" && n != "leases") {
					left = append(left, p)
					continue
				}
				for _, m := range zktest.Children(r.t, c, p) {
					left = append(left, path.Join(p, m))
				}
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// inject causes one fault, waits until every zklockd serves again, and
// records it.
func (r *chaosRun) inject(kind string) {
	t := r.t
	f := fault{kind: kind, daemon: -1, start: time.Now()}
	outage := r.p.timeout + 1500*time.Millisecond // longer than a session
	switch kind {
	case "leader-kill", "follower-kill":
		leader := r.ens.Leader()
		victim := leader
		if kind == "follower-kill" {
			victim = (leader + 1 + r.rng.IntN(r.ens.Size()-1)) % r.ens.Size()
		}
		f.start = time.Now()
		r.ens.Server(victim).Kill()
		time.Sleep(500 * time.Millisecond)
		r.ens.Server(victim).Start()
	case "ensemble-stop":
		f.start = time.Now()
		r.ens.StopAll()
		time.Sleep(outage)
		r.ens.StartAll()
	case "ensemble-wipe":
		// A disaster: every server crashes (kill -9: no clean shutdown, as
		// when machines or disks are lost) and comes back without its
		// snapshots and transaction logs, a new ZooKeeper history whose
		// tokens are lower. It stays down for longer than a session, so
		// that every zklockd's own clock has given up its session before
		// the fresh ensemble serves (as docs/operations.md asks of
		// operators): else a holder still vouched for could overlap a
		// holder of the new history. The recorder starts a new history
		// before the servers do.
		f.start = time.Now()
		r.rec.historyEnds()
		r.ens.KillAll()
		down := time.Now()
		for s := range r.ens.Size() {
			if err := r.ens.Server(s).WipeData(); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Until(down.Add(outage)))
		f.woke = r.rec.historyBegins(zktest.Client(t, r.ens.ConnectString()))
		r.ens.StartAll()
	case "partition":
		r.victim(&f, false)
		f.start = time.Now()
		if err := r.daemons[f.daemon].ns.Partition(); err != nil {
			t.Fatal(err)
		}
		r.cutOff(&f, outage)
		if err := r.daemons[f.daemon].ns.Heal(); err != nil {
			t.Fatal(err)
		}
		f.woke = time.Now()
	case "handoff-cut":
		// A holder whose node is followed by one of its own zklockd's
		// waiters is cut off, then releases: the local handoff grants that
		// waiter while the delete cannot reach ZooKeeper.
		r.victim(&f, true)
		f.start = time.Now()
		if err := r.daemons[f.daemon].ns.Partition(); err != nil {
			t.Fatal(err)
		}
		if f.holder.op != "" {
			r.rec.releaseNow(f.holder.op)
		}
		r.cutOff(&f, outage)
		if err := r.daemons[f.daemon].ns.Heal(); err != nil {
			t.Fatal(err)
		}
		f.woke = time.Now()
	case "pause":
		r.victim(&f, false)
		d := r.daemons[f.daemon]
		f.start = d.proc.signal(syscall.SIGSTOP)
		r.cutOff(&f, outage)
		f.woke = d.proc.signal(syscall.SIGCONT)
	case "zklockd-kill":
		r.victim(&f, false)
		d := r.daemons[f.daemon]
		f.start = d.proc.signal(syscall.SIGKILL)
		d.proc.waitExit(exitTimeout)
		r.startDaemon(f.daemon, d)
	case "client-kill":
		id, ok := "", false
		for wait := time.Now().Add(5 * time.Second); !ok && time.Now().Before(wait); {
			if id, ok = r.rec.holder(); !ok {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if !ok {
			t.Logf("client-kill: no client held a lock for 5 s; skipped")
			return
		}
		for _, c := range r.clients {
			if c.id == id {
				f.client, f.daemon = id, c.daemon
				f.start = time.Now()
				c.cmd.Process.Kill()
				r.rec.note("killed", id, f.start)
				<-c.done
				r.startClient(c.daemon)
			}
		}
	default:
		t.Fatalf("unknown fault %q", kind)
	}
	r.waitServing()
	f.end = time.Now()
	if f.woke.IsZero() {
		f.woke = f.start
	}
	r.faults = append(r.faults, f)
}

// cutOff lasts a partition or a pause of f: at least outage, and, if a
// client of the other zklockd waited for the lock of the holder it hit,
// until ZooKeeper granted it that lock (once it expired the session), up
// to maxOutage.
func (r *chaosRun) cutOff(f *fault, outage time.Duration) {
	const maxOutage = 20 * time.Second
	time.Sleep(time.Until(f.start.Add(outage)))
	for f.rival && !r.rec.regrantedElsewhere(f.holder) && time.Since(f.start) < maxOutage {
		time.Sleep(50 * time.Millisecond)
	}
}

// victim picks the zklockd f hits, and the holder it hits there: a client
// the recorder tells to hold its lock through the fault, preferably one
// whose lock a client of the other zklockd waits for. If no client is
// granted a lock for 15 s, it picks a zklockd at random, and the fault
// hits no holder (checkFaultsCost reports that).
//
// With successor, the holder must be followed in its lock's queue by a
// waiter of its own zklockd (see recorder.designate).
func (r *chaosRun) victim(f *fault, successor bool) {
	d, ok := r.rec.designate(successor, 5*time.Second, 15*time.Second)
	if !ok {
		r.t.Logf("no client was granted a lock for 15 s: the fault hits no holder")
		f.daemon = r.rng.IntN(len(r.daemons))
		return
	}
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	f.holder, f.rival, f.daemon = d.grant, d.rival, r.rec.daemonOf[d.grant.client]
}

// waitServing waits until every zklockd reports SERVING (it has a usable
// ZooKeeper session).
func (r *chaosRun) waitServing() {
	var wg sync.WaitGroup
	for i, d := range r.daemons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				res, err := d.health.Check(ctx, &healthpb.HealthCheckRequest{})
				cancel()
				if err == nil && res.GetStatus() == healthpb.HealthCheckResponse_SERVING {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			r.t.Errorf("zklockd %d not serving 30 s after a fault", i)
		}()
	}
	wg.Wait()
}

var unsafeOnce struct {
	sync.Once
	path string
	err  error
}

// unsafeZklockd builds, once per test binary, a zklockd with the test-only
// switch that turns its own clock off (build tag zklock_unsafe_testing).
func unsafeZklockd(t *testing.T) string {
	unsafeOnce.Do(func() {
		unsafeOnce.path = filepath.Join(filepath.Dir(zklockdPath), "zklockd-unsafe")
		unsafeOnce.err = buildZklockd(unsafeOnce.path, "-tags", "zklock_unsafe_testing")
	})
	if unsafeOnce.err != nil {
		t.Fatal(unsafeOnce.err)
	}
	return unsafeOnce.path
}
