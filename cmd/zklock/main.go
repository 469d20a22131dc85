// Command zklock takes zklock locks from a shell.
//
//	zklock run [--wait D] [--shared] [--owner S] LOCK -- COMMAND [ARG...]
//	zklock acquire [--wait D] [--ttl D] [--shared] [--owner S] LOCK
//	zklock renew [--ttl D] LEASE...
//	zklock release LEASE
//	zklock describe LOCK
//
// The sidecar's address comes from --addr or ZKLOCK_ADDR (default
// 127.0.0.1:7878; unix:///path for a socket).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/zklock/zklock/clients/go/zklock"
	zklockv1 "github.com/zklock/zklock/clients/go/zklock/v1"
)

// Exit codes of zklock itself; `run` passes its command's code through.
const (
	exitUsage = 2  // bad command line
	exitError = 1  // the lock could not be taken, or a call failed
	exitLost  = 75 // run: the lock was lost while the command ran
)

const usage = `usage:
  zklock run [--wait D] [--shared] [--owner S] LOCK -- COMMAND [ARG...]
  zklock acquire [--wait D] [--ttl D] [--shared] [--owner S] LOCK
  zklock renew [--ttl D] LEASE...
  zklock release LEASE
  zklock describe LOCK
Every command takes --addr (default $ZKLOCK_ADDR, else 127.0.0.1:7878).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("zklock "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("ZKLOCK_ADDR", "127.0.0.1:7878"), "zklockd address: host:port or unix:///path")
	var (
		wait   *time.Duration
		ttl    *time.Duration
		shared *bool
		owner  *string
	)
	switch cmd {
	case "run", "acquire":
		wait = fs.Duration("wait", -1, "longest wait in the queue (default: until interrupted; 0: try once)")
		shared = fs.Bool("shared", false, "take a shared (read) hold")
		owner = fs.String("owner", defaultOwner(), "label shown by describe")
		if cmd == "acquire" {
			ttl = fs.Duration("ttl", 0, "lease ttl, kept by renew (default: the sidecar's)")
		}
	case "renew":
		ttl = fs.Duration("ttl", 0, "new ttl (default: each lease's own)")
	case "release", "describe":
	default:
		fmt.Fprintf(stderr, "zklock: unknown command %q\n%s", cmd, usage)
		return exitUsage
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "zklock: %v\n", err)
		return exitUsage
	}
	defer conn.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	rest := fs.Args()
	switch cmd {
	case "run":
		if len(rest) > 1 && rest[1] == "--" {
			rest = append(rest[:1:1], rest[2:]...)
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
		opts = append(opts, zklock.Owner(*owner))
		return runLocked(ctx, zklock.New(conn), rest[0], rest[1:], opts, stderr)
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
		return acquire(ctx, zklockv1.NewLockServiceClient(conn), req, stdout, stderr)
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
			return fail(stderr, err)
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
			return fail(stderr, err)
		}
		return 0
	default: // describe
		if len(rest) != 1 {
			fmt.Fprintf(stderr, "zklock describe: want one LOCK\n%s", usage)
			return exitUsage
		}
		resp, err := zklockv1.NewLockServiceClient(conn).Describe(ctx, &zklockv1.DescribeRequest{Lock: rest[0]})
		if err != nil {
			return fail(stderr, err)
		}
		for _, c := range resp.GetHolders() {
			fmt.Fprintf(stdout, "holder\t%s\t%d\t%s\t%s\n", c.GetMode(), c.GetFencingToken(), c.GetCreateTime().AsTime().Format(time.RFC3339), c.GetOwner())
		}
		for _, c := range resp.GetWaiters() {
			fmt.Fprintf(stdout, "waiter\t%s\t%d\t%s\t%s\n", c.GetMode(), c.GetFencingToken(), c.GetCreateTime().AsTime().Format(time.RFC3339), c.GetOwner())
		}
		return 0
	}
}

// runLocked holds lock while command runs. The command gets
// ZKLOCK_FENCING_TOKEN and ZKLOCK_LEASE; if the lock is lost it gets
// SIGTERM and zklock exits with exitLost.
func runLocked(ctx context.Context, c *zklock.Client, lock string, command []string, opts []zklock.Option, stderr io.Writer) int {
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opts = append(opts, zklock.OnQueued(func(pos, n int) {
			if pos > 0 {
				fmt.Fprintf(stderr, "waiting for %s: position %d of %d\n", lock, pos, n)
			}
		}))
	}
	lease, err := c.Lock(ctx, lock, opts...)
	if err != nil {
		return fail(stderr, err)
	}
	defer lease.Release(context.Background())

	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// If the command exits leaving children that hold its output open, do
	// not wait for them.
	cmd.WaitDelay = 2 * time.Second
	cmd.Env = append(os.Environ(),
		"ZKLOCK_FENCING_TOKEN="+strconv.FormatInt(lease.Token(), 10),
		"ZKLOCK_LEASE="+lease.ID())
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "zklock: %v\n", err)
		return 127
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	lost := false
	for {
		select {
		case err := <-exited:
			if lost {
				return exitLost
			}
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
		case <-lease.Lost():
			if !lost {
				lost = true
				fmt.Fprintf(stderr, "%v; stopping %s\n", lease.Err(), command[0])
				cmd.Process.Signal(syscall.SIGTERM)
			}
		case <-ctx.Done():
			// Interrupted: pass it on and wait for the command.
			cmd.Process.Signal(syscall.SIGTERM)
			ctx = context.Background()
		}
	}
}

// acquire takes a detached lease and prints its id and fencing token.
func acquire(ctx context.Context, api zklockv1.LockServiceClient, req *zklockv1.AcquireRequest, stdout, stderr io.Writer) int {
	stream, err := api.Acquire(ctx, req)
	if err != nil {
		return fail(stderr, err)
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			return fail(stderr, err)
		}
		if g := ev.GetGranted(); g != nil {
			fmt.Fprintf(stdout, "%s %d\n", g.GetLeaseId(), g.GetFencingToken())
			return 0
		}
	}
}

func fail(stderr io.Writer, err error) int {
	if st, ok := status.FromError(err); ok {
		fmt.Fprintf(stderr, "zklock: %s: %s\n", st.Code(), st.Message())
	} else if strings.HasPrefix(err.Error(), "zklock: ") {
		fmt.Fprintln(stderr, err)
	} else {
		fmt.Fprintf(stderr, "zklock: %v\n", err)
	}
	return exitError
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
