package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// semWait bounds each wait of a semaphore test for a contender: a JVM that
// starts slowly on a busy machine, a grant.
const semWait = 2 * time.Minute

// semChecker is the resource the contenders of a semaphore test hold: it
// refuses a holder beyond the permits, and a fencing token not above every
// earlier holder's (a semaphore's holders get theirs, the czxids of their
// lease nodes, in the order they are granted). It keeps each holder in its
// section until the test lets it go, so the test decides when permits come
// free. Contenders speak lines over TCP: "ENTER <who> <token>", answered
// "OK" once the test lets who go (or "VIOLATION" at once), then
// "EXIT <who>", answered "OK".
type semChecker struct {
	permits int
	lis     net.Listener
	done    chan struct{} // closed when the test ends: held sections are answered
	entered chan semGrant // each section the checker accepted, in order

	mu         sync.Mutex
	holders    map[string]int64         // the open sections: who -> token
	leave      map[string]chan struct{} // closed to let who go
	maxToken   int64
	maxHolders int        // the most sections open at once
	grants     []semGrant // every accepted ENTER, in order
	violations []string
}

// semGrant is a section a contender entered, with its fencing token.
type semGrant struct {
	who   string
	token int64
}

func startSemChecker(t *testing.T, permits int) *semChecker {
	t.Helper()
	c := &semChecker{permits: permits, done: make(chan struct{}), entered: make(chan semGrant, 100),
		holders: map[string]int64{}, leave: map[string]chan struct{}{}}
	c.lis = listenLines(t, c.serve, func() { close(c.done) })
	return c
}

func (c *semChecker) addr() string { return c.lis.Addr().String() }

// serve answers one line, once its holder may leave if it asks to.
func (c *semChecker) serve(fields []string) string {
	reply, leave := c.handle(fields)
	if leave != nil {
		select {
		case <-leave:
		case <-c.done:
			reply = "CLOSED"
		}
	}
	return reply
}

// handle answers one line; the answer waits for leave if it is not nil.
func (c *semChecker) handle(f []string) (reply string, leave chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(f) == 3 && f[0] == "ENTER":
		who := f[1]
		token, err := strconv.ParseInt(f[2], 10, 64)
		switch {
		case err != nil || token <= 0:
			c.violations = append(c.violations, fmt.Sprintf("%s entered with token %q", who, f[2]))
		case c.holders[who] != 0:
			c.violations = append(c.violations, fmt.Sprintf("%s entered twice", who))
		case len(c.holders) >= c.permits:
			c.violations = append(c.violations, fmt.Sprintf("%s entered while %d held: %v", who, len(c.holders), c.holders))
		case token <= c.maxToken:
			c.violations = append(c.violations, fmt.Sprintf("%s: token %d not above %d", who, token, c.maxToken))
		default:
			c.holders[who] = token
			c.maxToken = token
			c.maxHolders = max(c.maxHolders, len(c.holders))
			c.grants = append(c.grants, semGrant{who, token})
			c.leave[who] = make(chan struct{})
			c.entered <- semGrant{who, token}
			return "OK", c.leave[who]
		}
		return "VIOLATION", nil
	case len(f) == 2 && f[0] == "EXIT" && c.holders[f[1]] != 0:
		delete(c.holders, f[1])
		return "OK", nil
	}
	c.violations = append(c.violations, fmt.Sprintf("bad line %q (holding: %v)", f, c.holders))
	return "VIOLATION", nil
}

// next returns the next section entered. It fails the test if none comes
// within semWait, or at once if a contender of cs failed.
func (c *semChecker) next(t *testing.T, cs []*contenders) semGrant {
	t.Helper()
	deadline := time.After(semWait)
	for {
		select {
		case g := <-c.entered:
			return g
		case <-deadline:
			t.Fatalf("no contender entered within %v (holding: %v)", semWait, c.holding())
		case <-time.After(100 * time.Millisecond):
			if f := contenderFailures(cs); len(f) > 0 {
				t.Fatalf("a contender failed:\n%s", strings.Join(f, "\n"))
			}
		}
	}
}

// let lets who leave its section.
func (c *semChecker) let(t *testing.T, who string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.leave[who]
	if ch == nil {
		t.Fatalf("%s never entered", who)
	}
	close(ch)
	delete(c.leave, who)
}

func (c *semChecker) holding() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := map[string]int64{}
	for w, tok := range c.holders {
		h[w] = tok
	}
	return h
}

// report checks that there was no violation, that want entered in this
// order, and that all permits were held at once at some point.
func (c *semChecker) report(t *testing.T, want []string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.violations {
		t.Errorf("violation: %s", v)
	}
	var got []string
	for _, g := range c.grants {
		got = append(got, g.who)
	}
	t.Logf("grants: %v", c.grants)
	if !slices.Equal(got, want) {
		t.Errorf("entered in the order %v, want %v (arrival order)", got, want)
	}
	if c.maxHolders != c.permits {
		t.Errorf("at most %d sections open at once, want %d: the permits were not all used", c.maxHolders, c.permits)
	}
}

// contenderFailures returns the failures of contenders so far.
func contenderFailures(cs []*contenders) []string {
	var f []string
	for _, c := range cs {
		f = append(f, c.failed()...)
	}
	return f
}

// semContender takes one permit of the semaphore lock (of permits) at d
// with a raw Acquire stream, reports its section to the checker, and
// releases the permit by Release, or, if byCancel, by ending its stream.
func semContender(ctx context.Context, d *daemon, lock string, permits int32, checker, who string, byCancel bool) error {
	ch, err := net.Dial("tcp", checker)
	if err != nil {
		return err
	}
	defer ch.Close()
	stop := context.AfterFunc(ctx, func() { ch.Close() }) // no wait for the checker past the test
	defer stop()
	r := bufio.NewReader(ch)
	say := func(line string) error {
		fmt.Fprintln(ch, line)
		if reply, err := r.ReadString('\n'); err != nil || reply != "OK\n" {
			return fmt.Errorf("%s: checker answered %q to %q (%v)", who, reply, line, err)
		}
		return nil
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := d.client.Acquire(sctx, &zklockv1.AcquireRequest{Lock: lock, Permits: permits, Owner: who})
	if err != nil {
		return err
	}
	g, err := awaitGranted(s, who)
	if err != nil {
		return err
	}
	if err := say(fmt.Sprintf("ENTER %s %d", who, g.GetFencingToken())); err != nil {
		return err
	}
	if err := say("EXIT " + who); err != nil {
		return err
	}
	if byCancel {
		return nil // the deferred cancel ends the stream, and the lease
	}
	if _, err := d.client.Release(ctx, &zklockv1.ReleaseRequest{LeaseId: g.GetLeaseId()}); err != nil {
		return fmt.Errorf("%s: Release: %w", who, err)
	}
	if e, err := s.Recv(); err != nil || e.GetReleased() == nil {
		return fmt.Errorf("%s: %v (%v) after Release, want Released", who, e, err)
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: stream ended with %v after Released, want OK", who, err)
	}
	return nil
}

// semArrival is a contender of a semaphore test and how to start it.
type semArrival struct {
	who   string
	start func() *contenders
}

func goArrival(ctx context.Context, d *daemon, lock, checker, who string, byCancel bool) semArrival {
	return semArrival{who, func() *contenders {
		return startContenders(map[string]func() error{who: func() error {
			return semContender(ctx, d, lock, semPermits, checker, who, byCancel)
		}}, nil)
	}}
}

func curatorArrival(ctx context.Context, cp, zkAddr, lock, checker, who string) semArrival {
	return semArrival{who, func() *contenders {
		return startContenders(nil, map[string]*exec.Cmd{who: exec.CommandContext(ctx, "java", "-cp", cp,
			"io.zklock.SemaphoreContender", zkAddr, "/zklock/"+lock, strconv.Itoa(semPermits), checker, who)})
	}}
}

// semPermits is the size of the semaphores of the tests.
const semPermits = 3

// leaseNodeName is how a semaphore's lease nodes are named, by Curator and
// zklock alike.
var leaseNodeName = regexp.MustCompile(`^_c_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-lease-[0-9]{10}$`)

// runSemaphore has the contenders arrive one after the other at the
// semaphore lock (of semPermits permits) and checks that they are served
// first come first served, never more than semPermits at once, each with a
// token of its own: the czxid of its lease node.
//
// The first semPermits are granted as they arrive; each later one arrives
// once the one before waits in the semaphore's queue (its node under
// <lock>/locks), all permits being held. The test then lets one holder go
// at a time, alternately the oldest and the newest, and the next contender
// in arrival order, and no other, must enter. If full is not nil, it runs
// while all the permits are held and the later contenders wait.
func runSemaphore(t *testing.T, ins *zk.Conn, d *daemon, chk *semChecker, lock string, arrivals []semArrival, full func()) {
	t.Helper()
	semPath := "/zklock/" + lock
	locksPath, leasesPath := semPath+"/locks", semPath+"/leases"
	var cs []*contenders
	t.Cleanup(func() {
		for _, c := range cs {
			c.wg.Wait() // after the contexts and the checker ended
		}
	})
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(semWait)
		for !cond() {
			if f := contenderFailures(cs); len(f) > 0 {
				t.Fatalf("a contender failed while waiting until %s:\n%s", what, strings.Join(f, "\n"))
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v: %s", semWait, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// entered checks that the next section is want's, with the token of
	// one of the lease nodes.
	entered := func(want string) semGrant {
		t.Helper()
		g := chk.next(t, cs)
		if g.who != want {
			t.Fatalf("%s entered, want %s (holding: %v)", g.who, want, chk.holding())
		}
		var tokens []int64
		for _, n := range zktest.Children(t, ins, leasesPath) {
			if !leaseNodeName.MatchString(n) {
				t.Errorf("lease node %s/%s not named as %v", leasesPath, n, leaseNodeName)
			}
			if ok, st := exists(t, ins, path.Join(leasesPath, n)); ok {
				tokens = append(tokens, st.Czxid)
			}
		}
		if !slices.Contains(tokens, g.token) {
			t.Errorf("%s's token %d is the czxid of none of the lease nodes (%v)", g.who, g.token, tokens)
		}
		return g
	}

	var holding []string
	for i, a := range arrivals {
		cs = append(cs, a.start())
		if i < semPermits {
			holding = append(holding, entered(a.who).who)
			// Its node in the queue goes once it holds a permit.
			waitFor(a.who+"'s node under "+locksPath+" is gone", func() bool { return len(zktest.Children(t, ins, locksPath)) == 0 })
			continue
		}
		n := i - semPermits + 1
		waitFor(fmt.Sprintf("%s waits: %d nodes under %s", a.who, n, locksPath), func() bool {
			return len(zktest.Children(t, ins, locksPath)) == n
		})
	}

	// All the permits are held, the others wait: Describe shows the holders.
	r, err := d.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
	if err != nil {
		t.Fatalf("Describe(%s): %v", lock, err)
	}
	var owners []string
	for _, h := range r.GetHolders() {
		owners = append(owners, h.GetOwner())
	}
	slices.Sort(owners)
	if want := slices.Sorted(slices.Values(holding)); !slices.Equal(owners, want) {
		t.Errorf("Describe(%s) holders %v, want %v", lock, owners, want)
	}
	if full != nil {
		full()
	}

	for next := semPermits; next < len(arrivals); next++ {
		i := 0
		if next%2 == 1 {
			i = len(holding) - 1
		}
		chk.let(t, holding[i])
		holding = slices.Delete(holding, i, i+1)
		holding = append(holding, entered(arrivals[next].who).who)
	}
	for _, w := range holding {
		chk.let(t, w)
	}
	for _, c := range cs {
		c.wait(t)
	}
	var want []string
	for _, a := range arrivals {
		want = append(want, a.who)
	}
	chk.report(t, want)
	zktest.Eventually(t, wait, "every lease node and queue node of "+semPath+" is gone", func() bool {
		return len(zktest.Children(t, ins, leasesPath)) == 0 && len(zktest.Children(t, ins, locksPath)) == 0
	})
}

// TestSemaphoreAcrossSidecars: a semaphore of 3 permits, 8 contenders that
// arrive one after the other at two zklockds: at most 3 hold at once, every
// one is served, in the order they arrived, each with a fencing token of
// its own that rises with each grant. Its zklock contenders record the
// permits in the data of its leases node, and Describe shows them.
func TestSemaphoreAcrossSidecars(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{})
	ins := zktest.Client(t, zkc.ConnectString())
	chk := startSemChecker(t, semPermits)
	const lock = "pool"

	var arrivals []semArrival
	for i := range 8 {
		d := []*daemon{a, b}[i%2]
		// Released by Release or by the stream's end, alternately per daemon.
		arrivals = append(arrivals, goArrival(ctx, d, lock, chk.addr(), fmt.Sprintf("%s-%d", d.name, i/2+1), i/2%2 == 1))
	}
	runSemaphore(t, ins, a, chk, lock, arrivals, func() {
		// The semaphore's node records the permits; Describe reports them
		// and the holders, at either sidecar.
		r, err := b.client.Describe(ctxT(t), &zklockv1.DescribeRequest{Lock: lock})
		if err != nil || r.GetPermits() != semPermits || len(r.GetHolders()) != semPermits {
			t.Errorf("Describe(%s) on b = %v, %v; want %d permits and %d holders", lock, r, err, semPermits, semPermits)
		}
		if data, _, err := ins.Get("/zklock/" + lock + "/leases"); err != nil || string(data) != "permits=3" {
			t.Errorf("data of /zklock/%s/leases = %q (%v), want %q", lock, data, err, "permits=3")
		}
	})
}

// TestSemaphoreWithCurator: zklock contenders at two zklockds and Curator's
// InterProcessSemaphoreV2 (straight on ZooKeeper, reporting the czxid of
// its lease node as its token) share the 3 permits of one path: at most 3
// hold at once, every one is served, in the order they arrived.
func TestSemaphoreWithCurator(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cp := javaClassPath(t)
	zkc := zktest.StartStandalone(t)
	a := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	b := startDaemon(t, "b", zkc.ConnectString(), daemonOpts{})
	ins := zktest.Client(t, zkc.ConnectString())
	chk := startSemChecker(t, semPermits)
	const lock = "pool"
	curator := func(who string) semArrival {
		return curatorArrival(ctx, cp, zkc.ConnectString(), lock, chk.addr(), who)
	}
	// Curator first: the zklock contenders join a semaphore Curator made.
	runSemaphore(t, ins, a, chk, lock, []semArrival{
		curator("curator-1"),
		goArrival(ctx, a, lock, chk.addr(), "a-1", false),
		curator("curator-2"),
		goArrival(ctx, b, lock, chk.addr(), "b-1", true),
		goArrival(ctx, a, lock, chk.addr(), "a-2", true),
		curator("curator-3"),
		goArrival(ctx, b, lock, chk.addr(), "b-2", false),
		goArrival(ctx, a, lock, chk.addr(), "a-3", false),
	}, nil)
}
