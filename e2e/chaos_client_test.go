package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
)

// chaosClientEnv, when set, makes the test binary run as a chaos client
// (chaosClientMain) instead of running tests; its value is the client's
// configuration as JSON.
const chaosClientEnv = "ZKLOCK_CHAOS_CLIENT"

// chaosClientConfig is what the chaos run tells each client process.
type chaosClientConfig struct {
	ID       string   // names the client in the record
	Socket   string   // its zklockd's unix socket
	Recorder string   // the recorder's (and fenced resource's) address
	Locks    []string // the locks it takes, one at a time
	// Semaphores are taken in one op in three, with Permits permits.
	Semaphores []string
	Permits    int32
	Reenter    bool // re-enter one hold in four, once or twice
	Seed       uint64
	Until      time.Time // stop by then even if stdin stays open
}

// holdThrough bounds a hold the recorder asked to last until the lease is
// lost (it answers "hold" to the grant): longer than any fault lasts.
const holdThrough = 30 * time.Second

// chaosClientMain is a client process of the chaos run. Until its stdin
// closes (or cfg.Until passes), it takes the locks one after another, at random, and with each
// lease it holds writes to the fenced resource. It reports every step to
// the recorder with its time, and waits for the recorder's answer before
// going on, so that the record is complete up to the moment the process is
// killed. It returns the process's exit code.
func chaosClientMain(raw string) int {
	var cfg chaosClientConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "chaos client:", err)
		return 2
	}
	rec, err := net.Dial("tcp", cfg.Recorder)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos client:", err)
		return 2
	}
	defer rec.Close()
	conn, err := grpc.NewClient("unix://"+cfg.Socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Reconnect soon after a zklockd restarts, not after up to 2 min.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		}))
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos client:", err)
		return 2
	}
	defer conn.Close()

	stop := make(chan struct{})
	var once sync.Once
	go func() { // lives until the process exits
		io.Copy(io.Discard, os.Stdin)
		once.Do(func() { close(stop) })
	}()
	deadline := time.AfterFunc(time.Until(cfg.Until), func() { once.Do(func() { close(stop) }) })
	defer deadline.Stop()
	c := &chaosClient{
		cfg:  cfg,
		lock: zklockv1.NewLockServiceClient(conn),
		rec:  bufio.NewReader(rec),
		recW: rec,
		rng:  rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		stop: stop,
	}
	for n := 1; ; n++ {
		select {
		case <-stop:
			return 0
		default:
		}
		if err := c.op(fmt.Sprintf("%s.%d", cfg.ID, n)); err != nil {
			fmt.Fprintln(os.Stderr, "chaos client:", err)
			return 1
		}
	}
}

type chaosClient struct {
	cfg  chaosClientConfig
	lock zklockv1.LockServiceClient
	rec  *bufio.Reader
	recW net.Conn
	rng  *rand.Rand
	stop <-chan struct{}
}

// report sends one record line, "kind unixnano op lock token detail", and
// returns the recorder's answer ("ok", or "stale" for a write it refused).
func (c *chaosClient) report(kind, op, lock string, token int64, detail string) (string, error) {
	if detail == "" {
		detail = "-"
	}
	detail = strings.ReplaceAll(detail, " ", "_")
	line := fmt.Sprintf("%s %d %s %s %d %s\n", kind, time.Now().UnixNano(), op, lock, token, detail)
	if _, err := io.WriteString(c.recW, line); err != nil {
		return "", fmt.Errorf("recorder: %w", err)
	}
	ans, err := c.rec.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("recorder: %w", err)
	}
	return strings.TrimSpace(ans), nil
}

// received is one Recv of an Acquire stream.
type received struct {
	r   *zklockv1.AcquireResponse
	err error
}

// hold is what one op holds: the lease it was granted, and the leases
// that re-entered it. Every lease's stream sends its events, with the
// lease, to events.
type hold struct {
	op, lock string
	permits  int32
	token    int64
	leases   []*lease
	events   chan leaseEvent
}

// lease is one lease of a hold, or a re-entry waiting for its grant.
type lease struct {
	op        string // the hold's op, or the hold's op and ".r<n>" for a re-entry
	via       string // the op of the lease a re-entry re-entered
	id        string
	granted   bool
	done      bool // released, or lost: its events no longer count
	suspended bool
	cancel    context.CancelFunc
}

// leaseEvent is one Recv of a lease's stream.
type leaseEvent struct {
	l *lease
	received
}

// live returns the leases of h granted and not done.
func (h *hold) live() []*lease {
	var ls []*lease
	for _, l := range h.leases {
		if l.granted && !l.done {
			ls = append(ls, l)
		}
	}
	return ls
}

// suspended reports whether a live lease of h heard Suspended last.
func (h *hold) suspended() bool {
	for _, l := range h.live() {
		if l.suspended {
			return true
		}
	}
	return false
}

// op is one acquire: wait, perhaps give up waiting, hold (perhaps
// re-entering the hold once or twice) and write, and release each lease,
// in a random order, by Release or by closing its stream. An error means
// the recorder is gone.
func (c *chaosClient) op(op string) error {
	h := &hold{op: op, lock: c.cfg.Locks[c.rng.IntN(len(c.cfg.Locks))], events: make(chan leaseEvent, 16)}
	if len(c.cfg.Semaphores) > 0 && c.rng.IntN(3) == 0 {
		h.lock, h.permits = c.cfg.Semaphores[c.rng.IntN(len(c.cfg.Semaphores))], c.cfg.Permits
	}
	var cancelWait time.Duration // give up waiting after this long, if not 0
	if c.rng.IntN(10) == 0 {
		cancelWait = time.Duration(5+c.rng.IntN(150)) * time.Millisecond
	}
	// Mostly short holds; the few long ones keep locks held while other
	// faults happen.
	var hold time.Duration
	switch n := c.rng.IntN(100); {
	case n < 85:
		hold = time.Duration(5+c.rng.IntN(35)) * time.Millisecond
	case n < 95:
		hold = time.Duration(200+c.rng.IntN(400)) * time.Millisecond
	default:
		hold = time.Duration(1500+c.rng.IntN(2500)) * time.Millisecond
	}
	reenters := 0
	if c.cfg.Reenter && c.rng.IntN(4) == 0 {
		reenters = 1 + c.rng.IntN(2)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// Every stream is cancelled, then drained, on every way out: the
	// receiving goroutines end before op returns.
	defer func() {
		cancel()
		go func() {
			wg.Wait()
			close(h.events)
		}()
		for range h.events {
		}
	}()
	start := func(l *lease, req *zklockv1.AcquireRequest) error {
		lctx, lcancel := context.WithCancel(ctx)
		st, err := c.lock.Acquire(lctx, req)
		if err != nil {
			lcancel()
			return err
		}
		l.cancel = lcancel
		h.leases = append(h.leases, l)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := st.Recv()
				h.events <- leaseEvent{l, received{r, err}}
				if err != nil {
					return
				}
			}
		}()
		return nil
	}

	if _, err := c.report("acquire", op, h.lock, 0, ""); err != nil {
		return err
	}
	first := &lease{op: op}
	if err := start(first, &zklockv1.AcquireRequest{Lock: h.lock, Owner: op, Wait: durationpb.New(10 * time.Second), Permits: h.permits}); err != nil {
		return c.failedAcquire(op, h.lock, err)
	}
	var timer <-chan time.Time
	if cancelWait > 0 {
		timer = time.After(cancelWait)
	}
	queued := false
	for !first.granted {
		select {
		case <-c.stop:
			_, err := c.report("cancel-wait", op, h.lock, 0, "stopping")
			return err
		case <-timer:
			_, err := c.report("cancel-wait", op, h.lock, 0, "")
			return err
		case e := <-h.events:
			switch {
			case e.err != nil:
				return c.failedAcquire(op, h.lock, e.err)
			case e.r.GetQueued() != nil && !queued:
				queued = true
				if _, err := c.report("queued", op, h.lock, 0, ""); err != nil {
					return err
				}
			case e.r.GetGranted() != nil:
				first.granted, first.id = true, e.r.GetGranted().GetLeaseId()
				h.token = e.r.GetGranted().GetFencingToken()
			}
		}
	}
	ans, err := c.report("granted", op, h.lock, h.token, "")
	if err != nil {
		return err
	}
	if ans == "hold" {
		hold = holdThrough // a fault is coming: hold until it costs the lease
	}

	// Hold: write to the fenced resource every few milliseconds. Writes go
	// on while suspended (they are fenced), and the hold lasts until
	// zklockd says whether the lease survived; they stop once a lease is
	// lost or its stream breaks. The re-entries come first, each once the
	// hold has written for a moment.
	until := time.Now().Add(hold)
	end := pumpDone
	for n := 1; n <= reenters && end == pumpDone; n++ {
		if end, err = c.pump(h, time.Now().Add(time.Duration(2+c.rng.IntN(10))*time.Millisecond), nil); err != nil || end != pumpDone {
			break
		}
		via := h.live()[c.rng.IntN(len(h.live()))]
		l := &lease{op: fmt.Sprintf("%s.r%d", op, n), via: via.op}
		if _, err := c.report("reenter", l.op, h.lock, h.token, via.op); err != nil {
			return err
		}
		permits := int32(0)
		if c.rng.IntN(2) == 0 {
			permits = h.permits
		}
		if err := start(l, &zklockv1.AcquireRequest{Lock: h.lock, Owner: l.op, Reenter: via.id, Permits: permits, Wait: durationpb.New(10 * time.Second)}); err != nil {
			if _, err := c.report("reenter-failed", l.op, h.lock, h.token, status.Code(err).String()); err != nil {
				return err
			}
			continue
		}
		// The re-entry is granted at once; the hold writes on meanwhile.
		// (A paused zklockd answers once woken.) A re-entry still waiting
		// when the hold must end is given up, unless the hold is lost
		// (lostHold waits for it).
		end, err = c.pump(h, time.Now().Add(holdThrough), func() bool { return l.granted || l.done })
		if err != nil {
			return err
		}
		if end != pumpLost && !l.granted && !l.done {
			l.done = true
			l.cancel()
			if _, err := c.report("reenter-failed", l.op, h.lock, h.token, gaveUp); err != nil {
				return err
			}
		}
	}
	if err == nil && end == pumpDone {
		end, err = c.pump(h, until, nil)
	}
	if err != nil {
		return err
	}
	if end == pumpLost {
		return c.lostHold(h)
	}

	// Release each lease, in a random order, writing for a moment between
	// two, unless the recorder asked for the release now or the client
	// must stop.
	now := end == pumpRelease || end == pumpStop
	order := h.live()
	c.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for i, l := range order {
		if lost, err := c.drain(h); err != nil || lost {
			if err != nil {
				return err
			}
			return c.lostHold(h)
		}
		if l.done {
			continue
		}
		lost, err := c.release(h, l, c.rng.IntN(10) < 6)
		if err != nil {
			return err
		}
		if lost {
			return c.lostHold(h)
		}
		if i == len(order)-1 || now {
			continue
		}
		switch end, err := c.pump(h, time.Now().Add(time.Duration(2+c.rng.IntN(10))*time.Millisecond), nil); {
		case err != nil:
			return err
		case end == pumpLost:
			return c.lostHold(h)
		case end != pumpDone:
			now = true
		}
	}
	return nil
}

// gaveUp is the detail of a "reenter-failed" whose client gave up waiting
// and closed its stream: zklockd may have granted it meanwhile, and then
// ends it once it hears of the close.
const gaveUp = "GaveUp"

// Why pump returned.
const (
	pumpDone    = iota // its time ran out, or its condition held
	pumpRelease        // the recorder asked for the release now
	pumpLost           // a lease of the hold is lost
	pumpStop           // the client must stop
)

// pump writes to the resource with the hold's token every few milliseconds
// and handles its leases' events, until until (and on while a lease is
// suspended), or until done (if not nil) reports true.
func (c *chaosClient) pump(h *hold, until time.Time, done func() bool) (int, error) {
	for {
		// The events already received count first: a lease may be
		// suspended or lost.
		if lost, err := c.drain(h); err != nil || lost {
			return pumpLost, err
		}
		over := !time.Now().Before(until)
		if done != nil && (done() || over) || done == nil && over && !h.suspended() {
			return pumpDone, nil
		}
		ans, err := c.report("write", h.op, h.lock, h.token, "")
		if err != nil {
			return 0, err
		}
		if ans == "release" {
			return pumpRelease, nil // the recorder asks for the release now: a fault is on
		}
		select {
		case <-c.stop:
			return pumpStop, nil
		case <-time.After(time.Duration(2+c.rng.IntN(8)) * time.Millisecond):
		case e := <-h.events:
			lost, err := c.handle(h, e)
			if err != nil || lost {
				return pumpLost, err
			}
		}
	}
}

// drain handles the events of h's leases already received, and reports
// whether one says the hold is lost.
func (c *chaosClient) drain(h *hold) (bool, error) {
	for {
		select {
		case e := <-h.events:
			if lost, err := c.handle(h, e); err != nil || lost {
				return lost, err
			}
		default:
			return false, nil
		}
	}
}

// handle reports e, an event of a lease of h, and whether it means that the
// hold is lost. The events of a lease released or lost before are
// ignored.
func (c *chaosClient) handle(h *hold, e leaseEvent) (bool, error) {
	l := e.l
	if l.done {
		return false, nil
	}
	report := func(kind, detail string) error {
		_, err := c.report(kind, l.op, h.lock, h.token, detail)
		return err
	}
	if !l.granted { // a re-entry
		switch {
		case e.err != nil:
			l.done = true
			code := status.Code(e.err)
			return code == codes.Aborted, report("reenter-failed", code.String())
		case e.r.GetQueued() != nil:
			return false, report("queued", "")
		case e.r.GetGranted() != nil:
			l.granted, l.id = true, e.r.GetGranted().GetLeaseId()
			_, err := c.report("reentered", l.op, h.lock, e.r.GetGranted().GetFencingToken(), l.via)
			return false, err
		}
		return false, nil
	}
	switch {
	case e.err != nil:
		l.done = true
		return true, report("error", status.Code(e.err).String())
	case e.r.GetSuspended() != nil:
		l.suspended = true
		return false, report("suspended", "")
	case e.r.GetResumed() != nil:
		l.suspended = false
		return false, report("resumed", "")
	case e.r.GetLost() != nil:
		l.done = true
		return true, report("lost", e.r.GetLost().GetReason().String())
	}
	return false, nil
}

// release releases l, by Release or by closing its stream, and reports
// whether zklockd answered that the hold is lost.
func (c *chaosClient) release(h *hold, l *lease, byRPC bool) (bool, error) {
	l.done = true
	if !byRPC {
		_, err := c.report("release", l.op, h.lock, h.token, "close")
		l.cancel()
		return false, err
	}
	if _, err := c.report("release", l.op, h.lock, h.token, "rpc"); err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.lock.Release(ctx, &zklockv1.ReleaseRequest{LeaseId: l.id}); err != nil {
		code := status.Code(err)
		_, err := c.report("release-failed", l.op, h.lock, h.token, code.String())
		return code == codes.Aborted, err
	}
	_, err := c.report("released", l.op, h.lock, h.token, "")
	return false, err
}

// lostHold ends a hold that one of its leases said is lost: it waits up to
// lossWait for each other lease (a re-entry not granted yet included) to
// say so too, and releases those that said nothing by Release, for the
// record: zklockd must answer ABORTED.
func (c *chaosClient) lostHold(h *hold) error {
	const lossWait = 5 * time.Second
	deadline := time.After(lossWait)
	waiting := func() bool {
		for _, l := range h.leases {
			if !l.done {
				return true
			}
		}
		return false
	}
wait:
	for waiting() {
		select {
		case e := <-h.events:
			if _, err := c.handle(h, e); err != nil {
				return err
			}
		case <-deadline:
			break wait
		}
	}
	for _, l := range h.live() {
		if _, err := c.release(h, l, true); err != nil {
			return err
		}
	}
	return nil
}

// failedAcquire records an Acquire that ended before a grant, and backs
// off briefly if zklockd could not serve it.
func (c *chaosClient) failedAcquire(op, lock string, err error) error {
	code := status.Code(err)
	if _, rerr := c.report("not-granted", op, lock, 0, code.String()); rerr != nil {
		return rerr
	}
	if code != codes.DeadlineExceeded || errors.Is(err, context.Canceled) {
		time.Sleep(time.Duration(50+c.rng.IntN(200)) * time.Millisecond)
	}
	return nil
}
