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

	zklockv1 "github.com/zklock/zklock/clients/go/zklock/v1"
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
	Seed     uint64
	Until    time.Time // stop by then even if stdin stays open
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

// op is one acquire: wait, perhaps give up waiting, hold and write, and
// release by Release or by closing the stream. An error means the recorder
// is gone.
func (c *chaosClient) op(op string) error {
	lock := c.cfg.Locks[c.rng.IntN(len(c.cfg.Locks))]
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
	byRPC := c.rng.IntN(10) < 6

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.report("acquire", op, lock, 0, ""); err != nil {
		return err
	}
	st, err := c.lock.Acquire(ctx, &zklockv1.AcquireRequest{Lock: lock, Owner: op, Wait: durationpb.New(10 * time.Second)})
	if err != nil {
		return c.failedAcquire(op, lock, err)
	}
	events := make(chan received, 16)
	go func() {
		defer close(events)
		for {
			r, err := st.Recv()
			events <- received{r, err}
			if err != nil {
				return
			}
		}
	}()
	// The stream is cancelled, then drained, on every way out: the
	// receiving goroutine ends before op returns.
	defer func() {
		cancel()
		for range events {
		}
	}()

	var timer <-chan time.Time
	if cancelWait > 0 {
		timer = time.After(cancelWait)
	}
	var granted *zklockv1.Granted
	queued := false
	for granted == nil {
		select {
		case <-c.stop:
			_, err := c.report("cancel-wait", op, lock, 0, "stopping")
			return err
		case <-timer:
			_, err := c.report("cancel-wait", op, lock, 0, "")
			return err
		case e := <-events:
			switch {
			case e.err != nil:
				return c.failedAcquire(op, lock, e.err)
			case e.r.GetQueued() != nil && !queued:
				queued = true
				if _, err := c.report("queued", op, lock, 0, ""); err != nil {
					return err
				}
			case e.r.GetGranted() != nil:
				granted = e.r.GetGranted()
			}
		}
	}
	token := granted.GetFencingToken()
	ans, err := c.report("granted", op, lock, token, "")
	if err != nil {
		return err
	}
	if ans == "hold" {
		hold = holdThrough // a fault is coming: hold until it costs the lease
	}

	// Hold: write to the fenced resource every few milliseconds. Writes go
	// on while suspended (they are fenced), and the hold lasts until
	// zklockd says whether the lease survived; they stop once the lease is
	// lost or the stream breaks.
	until := time.Now().Add(hold)
	suspended := false
	for suspended || time.Now().Before(until) {
		ans, err := c.report("write", op, lock, token, "")
		if err != nil {
			return err
		}
		if ans == "release" {
			break // the recorder asks for the release now: a fault is on
		}
		select {
		case <-c.stop:
			until, suspended = time.Time{}, false
		case <-time.After(time.Duration(2+c.rng.IntN(8)) * time.Millisecond):
		case e := <-events:
			switch {
			case e.err != nil:
				_, err := c.report("error", op, lock, token, status.Code(e.err).String())
				return err
			case e.r.GetSuspended() != nil:
				suspended = true
				if _, err := c.report("suspended", op, lock, token, ""); err != nil {
					return err
				}
			case e.r.GetResumed() != nil:
				suspended = false
				if _, err := c.report("resumed", op, lock, token, ""); err != nil {
					return err
				}
			case e.r.GetLost() != nil:
				_, err := c.report("lost", op, lock, token, e.r.GetLost().GetReason().String())
				return err
			}
		}
	}

	if !byRPC {
		_, err := c.report("release", op, lock, token, "close")
		return err // the deferred cancel closes the stream
	}
	if _, err := c.report("release", op, lock, token, "rpc"); err != nil {
		return err
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	if _, err := c.lock.Release(rctx, &zklockv1.ReleaseRequest{LeaseId: granted.GetLeaseId()}); err != nil {
		_, err := c.report("release-failed", op, lock, token, status.Code(err).String())
		return err
	}
	_, err = c.report("released", op, lock, token, "")
	return err
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
