package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zklock/zklock/clients/go/zklock"
)

// Exit codes of zklock itself; `run` passes its command's code through
// (126 and 127 when it cannot be run or found, 128+N when signal N ended
// it or zklock). The held and wait codes are high so that a command's own
// code is seldom taken for them; 124 is also GNU timeout's "timed out".
const (
	exitError       = 1   // another error: "zklock: CODE: MESSAGE"
	exitUsage       = 2   // bad input: a bad command line, or INVALID_ARGUMENT from zklockd
	exitUnavailable = 69  // zklockd cannot be reached, or cannot answer now: retry
	exitLost        = 75  // the lease was lost
	exitHeld        = 123 // --wait 0s: the lock is held by another
	exitWaitRanOut  = 124 // --wait D ran out, the lock still held by another
)

// An outcome is how a zklock command ended other than with success: its
// exit code and what it says on stderr. Each outcome has one wording,
// whatever the command; the functions below make them.
type outcome struct {
	code int
	line string // the message, on one line
	hint string // an optional second line
}

// report writes o to stderr and returns its exit code.
func (o outcome) report(stderr io.Writer) int {
	fmt.Fprintln(stderr, o.line)
	if o.hint != "" {
		fmt.Fprintln(stderr, o.hint)
	}
	return o.code
}

// held: a try-once (--wait 0s) found lock held by another.
func held(lock string) outcome {
	return outcome{code: exitHeld, line: fmt.Sprintf("zklock: lock %q is held by another (--wait 0s: tried once)", lock)}
}

// waitRanOut: lock was still held by another when the wait ran out.
func waitRanOut(lock string, wait time.Duration) outcome {
	return outcome{code: exitWaitRanOut, line: fmt.Sprintf("zklock: lock %q still held by another after --wait %v", lock, wait)}
}

// lost: the lease was lost, for reason (a LOST_REASON_ name, or what broke
// its stream).
func lost(reason string) outcome {
	return outcome{code: exitLost, line: "zklock: lease lost: " + reason}
}

// unreachable: no zklockd answers at addr; why is the system's word for it
// ("connection refused").
func unreachable(addr, why string) outcome {
	return outcome{code: exitUnavailable, line: fmt.Sprintf("zklock: cannot reach zklockd at %s: %s (is it running? --addr, $ZKLOCK_ADDR)", addr, why)}
}

// unavailable: zklockd at addr answered that it cannot serve now (no
// ZooKeeper session, contact in doubt, shutting down): retry.
func unavailable(addr, msg string) outcome {
	return outcome{code: exitUnavailable, line: fmt.Sprintf("zklock: zklockd at %s cannot serve now: %s", addr, msg)}
}

// badInput: the command line, or what zklockd was asked, is wrong. For a
// known command, the hint is its synopsis.
func badInput(cmd *command, msg string) outcome {
	o := outcome{code: exitUsage, line: "zklock: bad input: " + msg, hint: "usage: zklock help"}
	if cmd != nil {
		o.hint = fmt.Sprintf("usage: %s (more: zklock help %s)", cmd.synopsis(), cmd.name)
	}
	return o
}

// otherError: any other error.
func otherError(msg string) outcome {
	return outcome{code: exitError, line: "zklock: " + strings.TrimPrefix(msg, "zklock: ")}
}

// call is what the outcome of a call to zklockd depends on besides its
// error.
type call struct {
	addr string
	cmd  *command
	lock string         // acquire, run: the lock asked for
	wait *time.Duration // acquire, run: --wait, if given
}

// outcomeOf maps the error of a call to zklockd (a gRPC status, or an
// error of the Go client) to its outcome.
func outcomeOf(c call, err error) outcome {
	if errors.Is(err, zklock.ErrNotGranted) {
		// The Go client's error for a wait that ran out, whatever its length.
		if c.wait != nil && *c.wait > 0 {
			return waitRanOut(c.lock, *c.wait)
		}
		return held(c.lock)
	}
	if errors.Is(err, zklock.ErrLost) {
		return lost(strings.TrimPrefix(err.Error(), zklock.ErrLost.Error()+": "))
	}
	st, ok := status.FromError(err)
	if !ok {
		return otherError(err.Error())
	}
	reason, meta := errorInfo(st)
	switch st.Code() {
	case codes.DeadlineExceeded:
		// LOCK_HELD, WAIT_EXPIRED; a client's own deadline reads the same.
		switch {
		case reason == "LOCK_HELD" || (c.wait != nil && *c.wait == 0):
			return held(c.lock)
		case c.wait != nil:
			return waitRanOut(c.lock, *c.wait)
		}
	case codes.Aborted:
		if r := meta["lost_reason"]; r != "" {
			// As the stream's Lost event names it.
			return lost("LOST_REASON_" + r)
		}
		return lost(st.Message())
	case codes.Unavailable:
		if why, ok := dialFailure(st.Message()); ok {
			return unreachable(c.addr, why)
		}
		return unavailable(c.addr, st.Message())
	case codes.InvalidArgument:
		return badInput(c.cmd, st.Message())
	}
	return otherError(fmt.Sprintf("%s: %s", st.Code(), st.Message()))
}

// errorInfo returns the reason and metadata of st's ErrorInfo detail, if
// it has one.
func errorInfo(st *status.Status) (string, map[string]string) {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason(), info.GetMetadata()
		}
	}
	return "", nil
}

// dialFailure reports whether an UNAVAILABLE status's message is gRPC's
// own, for a connection to zklockd that could not be made, rather than
// zklockd's answer, and returns the system's reason ("connection refused").
func dialFailure(msg string) (string, bool) {
	for _, m := range []string{"connection error", "Error while dialing", "connection refused", "no such file or directory", "connection reset"} {
		if strings.Contains(msg, m) {
			why := msg
			if i := strings.LastIndex(why, ": "); i >= 0 {
				why = strings.TrimRight(why[i+2:], `"`)
			}
			return why, true
		}
	}
	return "", false
}
