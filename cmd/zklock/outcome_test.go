package main

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/sidecartest"
	"github.com/zklock/zklock/internal/zktest"
)

// TestOutcomes: each way a command fails has one exit code and one
// wording, whatever the command, against a real zklockd.
func TestOutcomes(t *testing.T) {
	t.Parallel()
	sc := sidecartest.Start(t, zktest.StartStandalone(t).ConnectString())
	code, out, errOut := cli(t, sc.Addr, "acquire", "--ttl", "60s", "taken")
	if code != 0 {
		t.Fatalf("acquire: exit %d, %s", code, errOut)
	}
	holder := strings.Fields(out)[0]
	t.Cleanup(func() { cli(t, sc.Addr, "release", holder) })

	// A lease that expired: renew and release say it was lost.
	code, out, errOut = cli(t, sc.Addr, "acquire", "--ttl", "1s", "expiring")
	if code != 0 {
		t.Fatalf("acquire: exit %d, %s", code, errOut)
	}
	expired := strings.Fields(out)[0]
	zktest.Eventually(t, 30*time.Second, "the 1 s lease expires", func() bool {
		code, out, _ := cli(t, sc.Addr, "describe", "expiring")
		return code == 0 && out == ""
	})
	// A lease that was released: renew does not know it.
	code, out, errOut = cli(t, sc.Addr, "acquire", "--ttl", "60s", "released")
	if code != 0 {
		t.Fatalf("acquire: exit %d, %s", code, errOut)
	}
	released := strings.Fields(out)[0]
	if code, _, errOut := cli(t, sc.Addr, "release", released); code != 0 {
		t.Fatalf("release: exit %d, %s", code, errOut)
	}

	const (
		heldLine = `zklock: lock "taken" is held by another (--wait 0s: tried once)`
		waitLine = `zklock: lock "taken" still held by another after --wait 300ms`
		lostLine = `zklock: lease lost: LOST_REASON_LEASE_EXPIRED`
	)
	for _, c := range []struct {
		args []string
		code int
		line string // stderr's first line; with bad input, its start
	}{
		{[]string{"run", "--wait", "0s", "taken", "--", "true"}, exitHeld, heldLine},
		{[]string{"acquire", "--wait", "0s", "taken"}, exitHeld, heldLine},
		{[]string{"run", "--wait", "300ms", "taken", "--", "true"}, exitWaitRanOut, waitLine},
		{[]string{"acquire", "--wait", "300ms", "taken"}, exitWaitRanOut, waitLine},
		{[]string{"renew", expired}, exitLost, lostLine},
		{[]string{"release", expired}, exitLost, lostLine},
		{[]string{"renew", released}, exitError, "zklock: NotFound: lease_ids[0]: lease was released"},
		{[]string{"run", "--reenter", released, "taken", "--", "true"}, exitError, "zklock: NotFound: reenter: lease was released"},
		{[]string{"acquire", "--wait", "0s", "--permits", "2", "taken"}, exitError, "zklock: FailedPrecondition: "},
		// Bad input, refused by zklock or by zklockd.
		{[]string{"run", "", "--", "true"}, exitUsage, "zklock: bad input: lock name is empty"},
		{[]string{"acquire", ""}, exitUsage, "zklock: bad input: lock name is empty"},
		{[]string{"describe", ""}, exitUsage, "zklock: bad input: lock name is empty"},
		{[]string{"observe", ""}, exitUsage, "zklock: bad input: lock name is empty"},
		{[]string{"renew", "not-a-lease"}, exitUsage, "zklock: bad input: lease_ids[0] is not a lease id"},
		{[]string{"release", "not-a-lease"}, exitUsage, "zklock: bad input: lease_id is not a lease id"},
		{[]string{"acquire", "--permits", "-3", "x"}, exitUsage, "zklock: bad input: "},
		{[]string{"run", "--wait", "-1s", "x", "--", "true"}, exitUsage, `zklock: bad input: invalid value "-1s" for flag --wait: negative`},
		{[]string{"acquire", "--wait", "5", "x"}, exitUsage, `zklock: bad input: invalid value "5" for flag --wait: not a duration`},
		{[]string{"renew", "--ttl", "-1s", released}, exitUsage, `zklock: bad input: invalid value "-1s" for flag --ttl: negative`},
		{[]string{"run", "x"}, exitUsage, "zklock: bad input: want LOCK -- COMMAND"},
		{[]string{"acquire", "x", "y"}, exitUsage, "zklock: bad input: want one LOCK"},
		{[]string{"renew"}, exitUsage, "zklock: bad input: want one LEASE or more"},
		{[]string{"release"}, exitUsage, "zklock: bad input: want one LEASE"},
		{[]string{"describe"}, exitUsage, "zklock: bad input: want one LOCK"},
		{[]string{"observe", "a", "b"}, exitUsage, "zklock: bad input: want one LOCK"},
		{[]string{"describe", "--shared", "x"}, exitUsage, "zklock: bad input: flag provided but not defined: --shared"},
	} {
		code, _, errOut := cli(t, sc.Addr, c.args...)
		first, _, _ := strings.Cut(errOut, "\n")
		ok := first == c.line
		if c.code == exitUsage || c.code == exitError {
			ok = strings.HasPrefix(first, c.line)
		}
		if code != c.code || !ok {
			t.Errorf("zklock %q: exit %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.line)
		}
		if c.code == exitUsage && !strings.Contains(errOut, "\nusage: zklock "+c.args[0]) {
			t.Errorf("zklock %q: stderr %q; want the command's usage after the line", c.args, errOut)
		}
	}
}

// TestUnreachableEveryCommand: every command names a zklockd nobody
// answers at the same way, and exits 69, whether --addr comes before the
// command's name, after it, or after its arguments.
func TestUnreachableEveryCommand(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens there now
	// Not used: --addr wins.
	t.Setenv("ZKLOCK_ADDR", "127.0.0.1:1")
	const lease = "0123456789abcdef0123456789abcdef"
	want := "zklock: cannot reach zklockd at " + addr + ": connection refused (is it running? --addr, $ZKLOCK_ADDR)\n"
	for _, argv := range [][]string{
		{"run", "x", "--", "true"},
		{"acquire", "x"},
		{"renew", lease},
		{"release", lease},
		{"describe", "x"},
		{"observe", "x"},
	} {
		name, rest := argv[0], argv[1:]
		for _, args := range [][]string{
			append([]string{"--addr", addr, name}, rest...),
			append([]string{"--addr=" + addr, name}, rest...),
			append([]string{name, "--addr", addr}, rest...),
			append([]string{name, "--addr=" + addr}, rest...),
			append(append([]string{name}, rest[:1]...), append([]string{"--addr", addr}, rest[1:]...)...), // after LOCK or LEASE
		} {
			var out, errOut bytes.Buffer
			if code := run(args, &out, &errOut); code != exitUnavailable || errOut.String() != want {
				t.Errorf("zklock %q: exit %d, stderr %q; want %d and %q", args, code, errOut.String(), exitUnavailable, want)
			}
		}
	}
}

// TestFlagsAnywhere: a command's flags count after LOCK too (for run,
// before -- COMMAND), and what follows -- is left alone.
func TestFlagsAnywhere(t *testing.T) {
	t.Parallel()
	sc := sidecartest.Start(t, zktest.StartStandalone(t).ConnectString())
	code, out, errOut := cli(t, sc.Addr, "acquire", "anywhere", "--ttl", "60s", "--owner", "first")
	if code != 0 {
		t.Fatalf("acquire with flags after LOCK: exit %d, %s", code, errOut)
	}
	lease := strings.Fields(out)[0]
	if code, out, _ := cli(t, sc.Addr, "describe", "anywhere"); code != 0 || !strings.HasSuffix(out, "\tfirst\n") {
		t.Errorf("describe: exit %d, %q; want the holder's owner, first, given after LOCK", code, out)
	}
	// --wait 0s after LOCK: held at once (it would wait otherwise).
	want := `zklock: lock "anywhere" is held by another (--wait 0s: tried once)` + "\n"
	if code, _, errOut := cli(t, sc.Addr, "run", "anywhere", "--wait", "0s", "--", "true"); code != exitHeld || errOut != want {
		t.Errorf("run LOCK --wait 0s -- true: exit %d, stderr %q; want %d and %q", code, errOut, exitHeld, want)
	}
	if code, _, errOut := cli(t, sc.Addr, "acquire", "anywhere", "--wait=0s"); code != exitHeld || errOut != want {
		t.Errorf("acquire LOCK --wait=0s: exit %d, stderr %q; want %d and %q", code, errOut, exitHeld, want)
	}
	if code, _, errOut := cli(t, sc.Addr, "release", lease); code != 0 {
		t.Fatalf("release: exit %d, %s", code, errOut)
	}
	// The command's own flags, with or without --, are its own.
	for _, args := range [][]string{
		{"run", "anywhere", "--wait", "0s", "--", "sh", "-c", "exit 3", "--wait"},
		{"run", "anywhere", "sh", "-c", "exit 3", "--wait"},
	} {
		if code, _, errOut := cli(t, sc.Addr, args...); code != 3 {
			t.Errorf("zklock %q: exit %d, stderr %q; want the command's 3", args, code, errOut)
		}
	}
	// After --, a LOCK that looks like a flag.
	if code, _, errOut := cli(t, sc.Addr, "describe", "--", "-dash"); code != 0 {
		t.Errorf("describe -- -dash: exit %d, stderr %q; want 0", code, errOut)
	}
}

// TestCommandHelp: zklock help COMMAND and COMMAND -h print the command's
// usage and every flag it takes, with defaults as people write them, to
// stdout, and exit 0; zklock help lists each exit code with its wording.
func TestCommandHelp(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{"help", c.name}, {c.name, "-h"}, {c.name, "--help"}, {c.name, "x", "-h"}, {"--addr", "127.0.0.1:1", c.name, "-help"}} {
			var out, errOut bytes.Buffer
			code := run(args, &out, &errOut)
			help := out.String()
			if code != 0 || errOut.Len() != 0 || !strings.HasPrefix(help, "usage: zklock "+c.name+" ") {
				t.Errorf("zklock %q: exit %d, stdout %q, stderr %q; want 0 and the usage of %s on stdout", args, code, help, errOut.String(), c.name)
				continue
			}
			for _, f := range append([]flagDoc{addrFlag}, c.flags...) {
				if !strings.Contains(help, "\n  --"+f.name+" ") {
					t.Errorf("zklock %q does not list --%s:\n%s", args, f.name, help)
				}
			}
			for _, bad := range []string{"-1ns", `(default "")`, "(default 0s)", "(default 0)", "(default false)", "\n  -" + c.name} {
				if strings.Contains(help, bad) {
					t.Errorf("zklock %q shows %q:\n%s", args, bad, help)
				}
			}
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"help"}, &out, &errOut); code != 0 {
		t.Fatalf("zklock help: exit %d", code)
	}
	for _, o := range []outcome{otherError("CODE: MESSAGE"), badInput(nil, "..."), unreachable("ADDR", "..."),
		lost("REASON"), held("LOCK"), waitRanOut("LOCK", 0)} {
		line := strings.TrimSuffix(o.line, " (is it running? --addr, $ZKLOCK_ADDR)")
		if o.code == exitWaitRanOut {
			line = strings.Replace(line, "--wait 0s", "--wait D", 1)
		}
		if want := fmt.Sprintf("\n  %-3d   %s", o.code, line); !strings.Contains(out.String(), want) {
			t.Errorf("zklock help does not show %q:\n%s", want, out.String())
		}
	}
	if want := "\n        " + unavailable("ADDR", "...").line + "  (retry)"; !strings.Contains(out.String(), want) {
		t.Errorf("zklock help does not show %q:\n%s", want, out.String())
	}
	if code := run([]string{"help", "bogus"}, &out, &errOut); code != exitUsage {
		t.Errorf("zklock help bogus: exit %d, want %d", code, exitUsage)
	}
}
