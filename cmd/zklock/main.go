// Command zklock takes zklock locks from a shell.
//
//	zklock run [--wait D] [--shared] [--permits N] [--reenter LEASE] [--owner S] LOCK -- COMMAND [ARG...]
//	zklock acquire [--wait D] [--ttl D] [--shared] [--permits N] [--reenter LEASE] [--owner S] LOCK
//	zklock renew [--ttl D] LEASE...
//	zklock release LEASE
//	zklock describe LOCK
//	zklock observe LOCK
//
// The sidecar's address comes from --addr or ZKLOCK_ADDR (default
// 127.0.0.1:7878; unix:///path for a socket). The usage text (zklock
// without arguments) says what each command does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"golang.org/x/term"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/clients/go/zklock"
)

// Exit codes of zklock itself; `run` passes its command's code through.
const (
	exitUsage = 2  // bad command line
	exitError = 1  // the lock could not be taken, or a call failed
	exitLost  = 75 // run: the lock was lost while the command ran; renew, release: the lease was lost
	// exitUnavailable means the sidecar could not answer now (no ZooKeeper
	// session, contact in doubt, shutting down): retry.
	exitUnavailable = 69
)

const usage = `usage:
  zklock run [--wait D] [--shared] [--permits N] [--reenter LEASE] [--owner S] LOCK -- COMMAND [ARG...]
      Holds LOCK while COMMAND runs, and exits with its exit code. COMMAND
      gets ZKLOCK_FENCING_TOKEN, ZKLOCK_LEASE, ZKLOCK_LOCK and ZKLOCK_ADDR.
      A zklock run of the same LOCK inside it (same ZKLOCK_ADDR) re-enters
      that lease: granted at once, with the same token.
  zklock acquire [--wait D] [--ttl D] [--shared] [--permits N] [--reenter LEASE] [--owner S] LOCK
      Takes a lease that outlives zklock (renew it within its ttl) and
      prints "LEASE TOKEN".
  zklock renew [--ttl D] LEASE...
  zklock release LEASE
  zklock describe LOCK
      Prints "permits N" for a semaphore, then a line per holder and per
      waiter, tab-separated: holder|waiter, mode, token, time joined,
      owner, and reentered=N for a holder re-entered N times.
  zklock observe LOCK
      Prints the lock's holders ("holders: OWNER (token N), ..." or
      "holders: none"), then again each time they change, until interrupted.
Flags:
  --wait D         longest wait in the queue (0s: try once; default: until interrupted)
  --shared         a shared (read) hold
  --permits N      N > 1: a semaphore, held by N at once; every contender gives the same N
  --reenter LEASE  take the lock again through LEASE, a lease of this sidecar that holds it
  --owner S        a label shown by describe and observe
  --ttl D          acquire: the lease's ttl; renew: the new ttl
  zklock help | --help | -h      this text
  zklock version | --version    zklock's version
Every command takes --addr ADDR (default $ZKLOCK_ADDR, else 127.0.0.1:7878;
unix:///path for a socket), before or after the command's name.
Exit codes of zklock itself: 1 an error, 2 a bad command line, 69 the
sidecar cannot answer now (retry), 75 the lease was lost, 128+N signal N.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// Before the command: --addr, help and version.
	defaultAddr := envOr("ZKLOCK_ADDR", "127.0.0.1:7878")
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch a := args[0]; {
		case a == "-h" || a == "-help" || a == "--help":
			fmt.Fprint(stdout, usage)
			return 0
		case a == "-version" || a == "--version":
			fmt.Fprintf(stdout, "zklock %s\n", version)
			return 0
		case (a == "-addr" || a == "--addr") && len(args) > 1:
			defaultAddr, args = args[1], args[2:]
		case strings.HasPrefix(a, "-addr=") || strings.HasPrefix(a, "--addr="):
			_, defaultAddr, _ = strings.Cut(a, "=")
			args = args[1:]
		default:
			fmt.Fprintf(stderr, "zklock: %s before the command: only --addr, --help and --version go there\n%s", a, usage)
			return exitUsage
		}
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "version":
		fmt.Fprintf(stdout, "zklock %s\n", version)
		return 0
	}
	fs := flag.NewFlagSet("zklock "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // the usage text below, not the flag package's
	addr := fs.String("addr", defaultAddr, "zklockd address: host:port or unix:///path")
	var (
		wait    *time.Duration
		ttl     *time.Duration
		shared  *bool
		owner   *string
		permits *int
		reenter *string
	)
	switch cmd {
	case "run", "acquire":
		wait = fs.Duration("wait", -1, "longest wait in the queue (default: until interrupted; 0: try once)")
		shared = fs.Bool("shared", false, "take a shared (read) hold")
		owner = fs.String("owner", defaultOwner(), "label shown by describe and observe")
		permits = fs.Int("permits", 0, "N > 1: a semaphore of N holders at once; every contender must give the same N")
		reenter = fs.String("reenter", "", "take the lock again through this lease, a lease of the same sidecar that holds it: granted at once, with its fencing token")
		if cmd == "acquire" {
			ttl = fs.Duration("ttl", 0, "lease ttl, kept by renew (default: the sidecar's)")
		}
	case "renew":
		ttl = fs.Duration("ttl", 0, "new ttl (default: each lease's own)")
	case "release", "describe", "observe":
	default:
		fmt.Fprintf(stderr, "zklock: unknown command %q\n%s", cmd, usage)
		return exitUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprint(stderr, usage) // after the flag package's line saying what is wrong
		return exitUsage
	}
	conn, err := zklock.Dial(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "zklock: %v\n", err)
		return exitUsage
	}
	defer conn.Close()
	ctx, stop := onSignal()
	defer stop()

	rest := fs.Args()
	switch cmd {
	case "run":
		if len(rest) > 1 && rest[1] == "--" {
			rest = append(rest[:1:1], rest[2:]...)
		} else if len(rest) > 1 && strings.HasPrefix(rest[1], "-") {
			fmt.Fprintf(stderr, "zklock run: flags go before LOCK; the command after --\n%s", usage)
			return exitUsage
		}
		if len(rest) < 2 {
			fmt.Fprintf(stderr, "zklock run: want LOCK -- COMMAND\n%s", usage)
			return exitUsage
		}
		var opts []zklock.Option
		if *wait >= 0 {
			opts = append(opts, zklock.Wait(*wait))
		}
		if *shared {
			opts = append(opts, zklock.Shared())
		}
		if *permits != 0 {
			opts = append(opts, zklock.Permits(*permits))
		}
		opts = append(opts, zklock.Owner(*owner))
		r := runner{c: zklock.New(conn), addr: *addr, lock: rest[0], command: rest[1:], opts: opts, reenter: *reenter, stderr: stderr}
		if r.reenter == "" && os.Getenv("ZKLOCK_LEASE") != "" && os.Getenv("ZKLOCK_LOCK") == r.lock && os.Getenv("ZKLOCK_ADDR") == r.addr {
			// Inside a zklock run of the same lock at the same sidecar.
			r.reenter, r.inherited = os.Getenv("ZKLOCK_LEASE"), true
		}
		return r.run(ctx)
	case "acquire":
		if len(rest) != 1 {
			fmt.Fprintf(stderr, "zklock acquire: want one LOCK\n%s", usage)
			return exitUsage
		}
		req := &zklockv1.AcquireRequest{Lock: rest[0], Detach: true, Owner: *owner}
		if *wait >= 0 {
			req.Wait = durationpb.New(*wait)
		}
		if *ttl > 0 {
			req.Ttl = durationpb.New(*ttl)
		}
		if *shared {
			req.Mode = zklockv1.Mode_MODE_SHARED
		}
		req.Permits = int32(min(max(*permits, math.MinInt32), math.MaxInt32))
		req.Reenter = *reenter
		return acquire(ctx, zklockv1.NewLockServiceClient(conn), *addr, req, stdout, stderr)
	case "renew":
		if len(rest) == 0 {
			fmt.Fprintf(stderr, "zklock renew: want LEASE...\n%s", usage)
			return exitUsage
		}
		req := &zklockv1.RenewRequest{LeaseIds: rest}
		if *ttl > 0 {
			req.Ttl = durationpb.New(*ttl)
		}
		resp, err := zklockv1.NewLockServiceClient(conn).Renew(ctx, req)
		if err != nil {
			return fail(stderr, *addr, err)
		}
		for _, l := range resp.GetLeases() {
			fmt.Fprintln(stdout, l.GetExpiresAt().AsTime().Format(time.RFC3339Nano))
		}
		return 0
	case "release":
		if len(rest) != 1 {
			fmt.Fprintf(stderr, "zklock release: want one LEASE\n%s", usage)
			return exitUsage
		}
		if _, err := zklockv1.NewLockServiceClient(conn).Release(ctx, &zklockv1.ReleaseRequest{LeaseId: rest[0]}); err != nil {
			return fail(stderr, *addr, err)
		}
		return 0
	case "observe":
		if len(rest) != 1 {
			fmt.Fprintf(stderr, "zklock observe: want one LOCK\n%s", usage)
			return exitUsage
		}
		err := zklock.New(conn).Observe(ctx, rest[0], func(s zklock.State) error {
			_, err := fmt.Fprintln(stdout, holdersLine(s))
			return err
		})
		if ctx.Err() != nil {
			return interrupted(ctx)
		}
		return fail(stderr, *addr, err)
	default: // describe
		if len(rest) != 1 {
			fmt.Fprintf(stderr, "zklock describe: want one LOCK\n%s", usage)
			return exitUsage
		}
		resp, err := zklockv1.NewLockServiceClient(conn).Describe(ctx, &zklockv1.DescribeRequest{Lock: rest[0]})
		if err != nil {
			return fail(stderr, *addr, err)
		}
		if p := resp.GetPermits(); p > 0 {
			fmt.Fprintf(stdout, "permits\t%d\n", p)
		}
		for _, c := range resp.GetHolders() {
			fmt.Fprintf(stdout, "holder\t%s\n", contenderLine(c))
		}
		for _, c := range resp.GetWaiters() {
			fmt.Fprintf(stdout, "waiter\t%s\n", contenderLine(c))
		}
		return 0
	}
}

// contenderLine is describe's line for c, after "holder" or "waiter".
func contenderLine(c *zklockv1.Contender) string {
	line := fmt.Sprintf("%s\t%d\t%s\t%s", c.GetMode(), c.GetFencingToken(), c.GetCreateTime().AsTime().Format(time.RFC3339), c.GetOwner())
	if n := c.GetReentered(); n > 0 {
		line += fmt.Sprintf("\treentered=%d", n)
	}
	return line
}

// holdersLine is observe's line for s: "holders: none", or
// "holders: OWNER (token N), ..." in queue order, with ", shared" in the
// parentheses of a shared holder, and "; permits N" after them for a
// semaphore.
func holdersLine(s zklock.State) string {
	var b strings.Builder
	b.WriteString("holders: ")
	if len(s.Holders) == 0 {
		b.WriteString("none")
	}
	for i, h := range s.Holders {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (token %d", ownerLabel(h), h.Token)
		if h.Shared {
			b.WriteString(", shared")
		}
		b.WriteString(")")
	}
	if s.Permits > 0 {
		fmt.Fprintf(&b, "; permits %d", s.Permits)
	}
	return b.String()
}

// ownerLabel names h in a line of observe: its owner label, quoted if it
// could be misread there (it may be any client's node data), or its node's
// name if it has none.
func ownerLabel(h zklock.Holder) string {
	if h.Owner == "" {
		return h.Node
	}
	for _, r := range h.Owner {
		if !unicode.IsPrint(r) || strings.ContainsRune(`,()"`, r) {
			return strconv.Quote(h.Owner)
		}
	}
	return h.Owner
}

// killGrace is how long a command has to stop after SIGTERM (the lock was
// lost, or zklock was told to stop) before its process group gets SIGKILL.
const killGrace = 10 * time.Second

// runner is a zklock run.
type runner struct {
	c       *zklock.Client
	addr    string // the sidecar's, as given
	lock    string
	command []string
	opts    []zklock.Option
	reenter string // the lease to re-enter, if any
	// inherited: reenter is the ZKLOCK_LEASE of a zklock run this one
	// runs in. If the sidecar does not know it (that run has ended, and
	// left it in the environment of a process that outlived it), the lock
	// is taken as if there were none.
	inherited bool
	stderr    io.Writer
}

// run holds the lock while the command runs. The command runs in a process
// group of its own (in the terminal's foreground if stdin is a terminal)
// and gets ZKLOCK_FENCING_TOKEN, ZKLOCK_LEASE, ZKLOCK_LOCK and ZKLOCK_ADDR.
// If the lock is lost, the group gets SIGTERM, then SIGKILL after
// killGrace, and zklock exits with exitLost. Signals zklock gets are passed
// on to the group; a second one kills it.
func (r *runner) run(ctx context.Context) int {
	lock, command, stderr := r.lock, r.command, r.stderr
	opts := r.opts
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opts = append(opts, zklock.OnQueued(func(pos, n int) {
			if pos > 0 {
				fmt.Fprintf(stderr, "waiting for %s: position %d of %d\n", lock, pos, n)
			}
		}))
	}
	var (
		lease *zklock.Lease
		err   error
	)
	if r.reenter != "" {
		lease, err = r.c.Lock(ctx, lock, append(opts, zklock.Reenter(r.reenter))...)
	}
	if r.reenter == "" || (r.inherited && status.Code(err) == codes.NotFound) {
		lease, err = r.c.Lock(ctx, lock, opts...)
	}
	if err != nil {
		if ctx.Err() != nil {
			return interrupted(ctx) // while queued
		}
		return fail(stderr, r.addr, err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if ctx.Err() != nil { // a signal came as the lock was granted
		releaseLease(lease)
		return interrupted(ctx)
	}

	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = commandAttr()
	cmd.Env = append(os.Environ(),
		"ZKLOCK_FENCING_TOKEN="+strconv.FormatInt(lease.Token(), 10),
		"ZKLOCK_LEASE="+lease.ID(),
		"ZKLOCK_LOCK="+lock,
		"ZKLOCK_ADDR="+r.addr) // a zklock inside talks to the same sidecar
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		// The thread that starts the command is its parent for Pdeathsig:
		// it must live as long as the command, so it is never unlocked and
		// ends with this goroutine.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		releaseLease(lease)
		fmt.Fprintf(stderr, "zklock: %v\n", err)
		if errors.Is(err, os.ErrPermission) {
			return 126
		}
		return 127
	}
	group := func(sig syscall.Signal) { syscall.Kill(-cmd.Process.Pid, sig) }
	var (
		lost     bool
		stopping bool
		kill     <-chan time.Time
	)
	for {
		select {
		case err := <-exited:
			code := exitCode(err, stderr)
			if err := releaseLease(lease); errors.Is(err, zklock.ErrLost) && !lost {
				lost = true
				fmt.Fprintf(stderr, "%v (before %s exited)\n", err, command[0])
			}
			if lost {
				return exitLost
			}
			return code
		case <-lease.Lost():
			if !lost {
				lost = true
				fmt.Fprintf(stderr, "%v; stopping %s\n", lease.Err(), command[0])
				group(syscall.SIGTERM)
				kill = time.After(killGrace)
			}
		case sig := <-sigs:
			if stopping {
				group(syscall.SIGKILL)
				continue
			}
			stopping = true
			group(sig.(syscall.Signal))
			kill = time.After(killGrace)
		case <-kill:
			group(syscall.SIGKILL)
			kill = nil
		}
	}
}

// releaseLease releases lease, waiting at most 10 s: past that, closing the
// stream releases it anyway.
func releaseLease(lease *zklock.Lease) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return lease.Release(ctx)
}

// exitCode returns the exit code to pass on for a command's Wait error:
// its own, or 128+N if signal N killed it.
func exitCode(err error, stderr io.Writer) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(stderr, "zklock: %v\n", err)
		return exitError
	}
	return 0
}

// acquire takes a detached lease and prints its id and fencing token.
func acquire(ctx context.Context, api zklockv1.LockServiceClient, addr string, req *zklockv1.AcquireRequest, stdout, stderr io.Writer) int {
	stream, err := api.Acquire(ctx, req)
	if err != nil {
		return fail(stderr, addr, err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return interrupted(ctx) // while queued
			}
			return fail(stderr, addr, err)
		}
		if g := ev.GetGranted(); g != nil {
			fmt.Fprintf(stdout, "%s %d\n", g.GetLeaseId(), g.GetFencingToken())
			return 0
		}
	}
}

// signalled is why the context of a command ends when zklock gets SIGINT or
// SIGTERM.
type signalled struct{ sig syscall.Signal }

func (s signalled) Error() string { return "zklock: interrupted by " + s.sig.String() }

// onSignal returns a context that ends, with cause signalled, at the first
// SIGINT or SIGTERM, and a function that stops it.
func onSignal() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			cancel(signalled{sig.(syscall.Signal)})
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

// interrupted returns the exit code of a command whose context ctx ended:
// 128+N for signal N, as a shell reports a process killed by it (130 for
// Ctrl-C).
func interrupted(ctx context.Context) int {
	var s signalled
	if errors.As(context.Cause(ctx), &s) {
		return 128 + int(s.sig)
	}
	return 128 + int(syscall.SIGINT)
}

// fail reports err and returns the exit code for it: exitLost for a lease
// that was lost (ABORTED), exitUnavailable for a call to retry
// (UNAVAILABLE), else exitError.
func fail(stderr io.Writer, addr string, err error) int {
	if st, ok := status.FromError(err); ok {
		if st.Code() == codes.Unavailable && unreachable(st.Message()) {
			why := st.Message()
			if i := strings.LastIndex(why, ": "); i >= 0 {
				why = strings.TrimRight(why[i+2:], `"`)
			}
			fmt.Fprintf(stderr, "zklock: cannot reach zklockd at %s: %s (is it running? --addr, $ZKLOCK_ADDR)\n", addr, why)
			return exitUnavailable
		}
		fmt.Fprintf(stderr, "zklock: %s: %s\n", st.Code(), st.Message())
		switch st.Code() {
		case codes.Aborted:
			return exitLost
		case codes.Unavailable:
			return exitUnavailable
		}
	} else if errors.Is(err, zklock.ErrLost) {
		fmt.Fprintln(stderr, err)
		return exitLost
	} else if strings.HasPrefix(err.Error(), "zklock: ") {
		fmt.Fprintln(stderr, err)
	} else {
		fmt.Fprintf(stderr, "zklock: %v\n", err)
	}
	return exitError
}

// unreachable reports whether an UNAVAILABLE status's message is gRPC's
// own, for a connection to zklockd that could not be made, rather than
// zklockd's answer.
func unreachable(msg string) bool {
	for _, m := range []string{"connection error", "Error while dialing", "connection refused", "no such file or directory", "connection reset"} {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func defaultOwner() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("zklock@%s pid %d", h, os.Getpid())
}
