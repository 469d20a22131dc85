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
// 127.0.0.1:7878; unix:///path for a socket). zklock help says what each
// command does, and zklock help COMMAND its flags. Each way a command can
// fail has one exit code and one wording, whatever the command: outcome.go.
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
			fmt.Fprint(stdout, usage())
			return 0
		case a == "-version" || a == "--version":
			fmt.Fprintf(stdout, "zklock %s\n", version)
			return 0
		case a == "-addr" || a == "--addr":
			if len(args) < 2 {
				return badInput(nil, "--addr needs a value: --addr ADDR").report(stderr)
			}
			defaultAddr, args = args[1], args[2:]
		case strings.HasPrefix(a, "-addr=") || strings.HasPrefix(a, "--addr="):
			_, defaultAddr, _ = strings.Cut(a, "=")
			args = args[1:]
		default:
			return badInput(nil, a+" before the command: only --addr, --help and --version go there").report(stderr)
		}
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	name, args := args[0], args[1:]
	switch name {
	case "help":
		if len(args) == 0 {
			fmt.Fprint(stdout, usage())
			return 0
		}
		if c := lookup(args[0]); c != nil && len(args) == 1 {
			fmt.Fprint(stdout, c.help())
			return 0
		}
		return badInput(nil, fmt.Sprintf("zklock help %s: want no argument or a command's name", strings.Join(args, " "))).report(stderr)
	case "version":
		fmt.Fprintf(stdout, "zklock %s\n", version)
		return 0
	}
	cmd := lookup(name)
	if cmd == nil {
		return badInput(nil, fmt.Sprintf("unknown command %q", name)).report(stderr)
	}
	var f flags
	fs := cmd.flagSet(&f, defaultAddr)
	rest, err := parseArgs(fs, args, cmd.name == "run")
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, cmd.help())
		return 0
	}
	if err != nil {
		return badInput(cmd, flagError(err)).report(stderr)
	}
	if !f.ownerSet {
		f.owner = defaultOwner()
	}
	c := call{addr: f.addr, cmd: cmd, wait: f.wait.get()}
	switch want := cmd.args; {
	case cmd.name == "run" && len(rest) < 2:
		return badInput(cmd, "want LOCK -- COMMAND").report(stderr)
	case want == "LEASE..." && len(rest) == 0:
		return badInput(cmd, "want one LEASE or more").report(stderr)
	case (want == "LOCK" || want == "LEASE") && len(rest) != 1:
		return badInput(cmd, "want one "+want).report(stderr)
	}
	conn, err := zklock.Dial(f.addr)
	if err != nil {
		return badInput(cmd, err.Error()).report(stderr)
	}
	defer conn.Close()
	ctx, stop := onSignal()
	defer stop()

	api := zklockv1.NewLockServiceClient(conn)
	switch cmd.name {
	case "run":
		c.lock = rest[0]
		var opts []zklock.Option
		if f.wait.set {
			opts = append(opts, zklock.Wait(f.wait.d))
		}
		if f.shared {
			opts = append(opts, zklock.Shared())
		}
		if f.permits != 0 {
			opts = append(opts, zklock.Permits(f.permits))
		}
		opts = append(opts, zklock.Owner(f.owner))
		r := runner{c: zklock.New(conn), call: c, command: rest[1:], opts: opts, reenter: f.reenter, stderr: stderr}
		if r.reenter == "" && os.Getenv("ZKLOCK_LEASE") != "" && os.Getenv("ZKLOCK_LOCK") == c.lock && os.Getenv("ZKLOCK_ADDR") == c.addr {
			// Inside a zklock run of the same lock at the same sidecar.
			r.reenter, r.inherited = os.Getenv("ZKLOCK_LEASE"), true
		}
		return r.run(ctx)
	case "acquire":
		c.lock = rest[0]
		req := &zklockv1.AcquireRequest{Lock: c.lock, Detach: true, Owner: f.owner}
		if f.wait.set {
			req.Wait = durationpb.New(f.wait.d)
		}
		if f.ttl.d > 0 {
			req.Ttl = durationpb.New(f.ttl.d)
		}
		if f.shared {
			req.Mode = zklockv1.Mode_MODE_SHARED
		}
		req.Permits = int32(min(max(f.permits, math.MinInt32), math.MaxInt32))
		req.Reenter = f.reenter
		return acquire(ctx, api, c, req, stdout, stderr)
	case "renew":
		req := &zklockv1.RenewRequest{LeaseIds: rest}
		if f.ttl.d > 0 {
			req.Ttl = durationpb.New(f.ttl.d)
		}
		resp, err := api.Renew(ctx, req)
		if err != nil {
			return outcomeOf(c, err).report(stderr)
		}
		for _, l := range resp.GetLeases() {
			fmt.Fprintln(stdout, l.GetExpiresAt().AsTime().Format(time.RFC3339Nano))
		}
		return 0
	case "release":
		if _, err := api.Release(ctx, &zklockv1.ReleaseRequest{LeaseId: rest[0]}); err != nil {
			return outcomeOf(c, err).report(stderr)
		}
		return 0
	case "observe":
		err := zklock.New(conn).Observe(ctx, rest[0], func(s zklock.State) error {
			_, err := fmt.Fprintln(stdout, holdersLine(s))
			return err
		})
		if ctx.Err() != nil {
			return interrupted(ctx)
		}
		return outcomeOf(c, err).report(stderr)
	default: // describe
		resp, err := api.Describe(ctx, &zklockv1.DescribeRequest{Lock: rest[0]})
		if err != nil {
			return outcomeOf(c, err).report(stderr)
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
	call    call // the sidecar's address, as given, the lock and --wait
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
	lock, command, stderr := r.call.lock, r.command, r.stderr
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
		return outcomeOf(r.call, err).report(stderr)
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
		"ZKLOCK_ADDR="+r.call.addr) // a zklock inside talks to the same sidecar
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
				o := outcomeOf(r.call, err)
				o.line += fmt.Sprintf(" (before %s exited)", command[0])
				o.report(stderr)
			}
			if lost {
				return exitLost
			}
			return code
		case <-lease.Lost():
			if !lost {
				lost = true
				o := outcomeOf(r.call, lease.Err())
				o.line += "; stopping " + command[0]
				o.report(stderr)
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
		return otherError(err.Error()).report(stderr)
	}
	return 0
}

// acquire takes a detached lease and prints its id and fencing token.
func acquire(ctx context.Context, api zklockv1.LockServiceClient, c call, req *zklockv1.AcquireRequest, stdout, stderr io.Writer) int {
	stream, err := api.Acquire(ctx, req)
	if err != nil {
		return outcomeOf(c, err).report(stderr)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return otherError(fmt.Sprintf("stream of %s ended before the grant", c.lock)).report(stderr)
		}
		if err != nil {
			if ctx.Err() != nil {
				return interrupted(ctx) // while queued
			}
			return outcomeOf(c, err).report(stderr)
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
