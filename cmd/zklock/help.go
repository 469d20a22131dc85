package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// flagDoc documents a flag: its name, what its value is called (none for
// a bool) and what it does, its default written as people write it.
type flagDoc struct{ name, arg, help string }

var (
	addrFlag    = flagDoc{"addr", "ADDR", "zklockd's address: host:port, or unix:///path for a socket (default $ZKLOCK_ADDR, else 127.0.0.1:7878)"}
	waitFlag    = flagDoc{"wait", "D", "longest wait in the queue, as 30s or 1m30s; 0s tries once (default: until interrupted)"}
	sharedFlag  = flagDoc{"shared", "", "a shared (read) hold"}
	permitsFlag = flagDoc{"permits", "N", "N > 1: a semaphore, held by N at once; every contender gives the same N"}
	reenterFlag = flagDoc{"reenter", "LEASE", "take the lock again through LEASE, a lease of this zklockd that holds it: granted at once, with its fencing token"}
	ownerFlag   = flagDoc{"owner", "S", "a label shown by describe and observe (default zklock@HOST pid PID)"}
)

// A command is one of zklock's commands.
type command struct {
	name  string
	args  string    // its arguments, after the flags
	flags []flagDoc // its own flags (every command also takes --addr)
	about string    // what it does
}

var commands = []*command{
	{name: "run", args: "LOCK -- COMMAND [ARG...]",
		flags: []flagDoc{waitFlag, sharedFlag, permitsFlag, reenterFlag, ownerFlag},
		about: `Holds LOCK while COMMAND runs, and exits with its exit code. COMMAND
gets ZKLOCK_FENCING_TOKEN, ZKLOCK_LEASE, ZKLOCK_LOCK and ZKLOCK_ADDR.
A zklock run of the same LOCK inside it (same ZKLOCK_ADDR) re-enters
that lease: granted at once, with the same token.`},
	{name: "acquire", args: "LOCK",
		flags: []flagDoc{waitFlag, {"ttl", "D", "the lease's ttl, as 60s (default: zklockd's --default-ttl)"}, sharedFlag, permitsFlag, reenterFlag, ownerFlag},
		about: `Takes a lease that outlives zklock (renew it within its ttl) and
prints "LEASE TOKEN".`},
	{name: "renew", args: "LEASE...",
		flags: []flagDoc{{"ttl", "D", "the new ttl, as 60s (default: each lease's own)"}},
		about: `Renews the leases and prints, for each, when it expires.`},
	{name: "release", args: "LEASE",
		about: `Releases the lease.`},
	{name: "describe", args: "LOCK",
		about: `Prints "permits N" for a semaphore, then a line per holder and per
waiter, tab-separated: holder|waiter, mode, token, time joined,
owner, and reentered=N for a holder re-entered N times.`},
	{name: "observe", args: "LOCK",
		about: `Prints the lock's holders ("holders: OWNER (token N), ..." or
"holders: none"), then again each time they change, until interrupted.`},
}

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// synopsis is the command's usage line.
func (c *command) synopsis() string {
	var b strings.Builder
	b.WriteString("zklock " + c.name)
	for _, f := range c.flags {
		fmt.Fprintf(&b, " [--%s]", strings.TrimSpace(f.name+" "+f.arg))
	}
	return b.String() + " " + c.args
}

// help is the command's own usage text: zklock help COMMAND, or -h after
// its name.
func (c *command) help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n", c.synopsis())
	writeIndented(&b, c.about, "  ")
	if c.name == "run" {
		b.WriteString("Flags (after the command's name, before or after LOCK; --addr also before the name; -- COMMAND ends them):\n")
	} else {
		fmt.Fprintf(&b, "Flags (after the command's name, before or after %s; --addr also before the name; -- ends them):\n", c.args)
	}
	for _, f := range append([]flagDoc{addrFlag}, c.flags...) {
		writeFlag(&b, f)
	}
	b.WriteString(exitCodes)
	return b.String()
}

// usage is zklock's usage text: zklock help, --help or -h.
func usage() string {
	var b strings.Builder
	b.WriteString("usage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %s\n", c.synopsis())
		writeIndented(&b, c.about, "      ")
	}
	b.WriteString("  zklock help [COMMAND] | --help | -h    this text, or COMMAND's\n")
	b.WriteString("  zklock version | --version             zklock's version\n")
	b.WriteString("Flags (after the command's name, before or after its arguments; --addr, the global flag, also before the name; -- ends them):\n")
	for _, f := range []flagDoc{addrFlag, waitFlag, sharedFlag, permitsFlag, reenterFlag, ownerFlag,
		{"ttl", "D", "acquire: the lease's ttl (default: zklockd's --default-ttl); renew: the new ttl (default: each lease's own)"}} {
		writeFlag(&b, f)
	}
	b.WriteString(exitCodes)
	return b.String()
}

// exitCodes ends the usage texts: each outcome's exit code and wording.
var exitCodes = fmt.Sprintf(`Exit codes of zklock itself (run: else its command's), each with one wording:
  %-3d   zklock: CODE: MESSAGE  (another error)
  %-3d   zklock: bad input: ...  (the command line, or zklockd's INVALID_ARGUMENT)
  %-3d   zklock: cannot reach zklockd at ADDR: ...
        zklock: zklockd at ADDR cannot serve now: ...  (retry)
  %-3d   zklock: lease lost: REASON
  %-3d   zklock: lock "LOCK" is held by another (--wait 0s: tried once)
  %-3d   zklock: lock "LOCK" still held by another after --wait D
  126   run: COMMAND cannot be run; 127: it cannot be found
  128+N signal N (130: Ctrl-C)
`, exitError, exitUsage, exitUnavailable, exitLost, exitHeld, exitWaitRanOut)

func writeFlag(b *strings.Builder, f flagDoc) {
	fmt.Fprintf(b, "  %-17s%s\n", strings.TrimSpace("--"+f.name+" "+f.arg), f.help)
}

func writeIndented(b *strings.Builder, text, indent string) {
	for _, line := range strings.Split(text, "\n") {
		fmt.Fprintf(b, "%s%s\n", indent, line)
	}
}

// durationFlag is a flag.Value for a duration that may be left unset; it
// refuses a negative one.
type durationFlag struct {
	d   time.Duration
	set bool
}

func (f *durationFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return f.d.String()
}

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("not a duration: write it as 30s, 1m30s or 500ms")
	}
	if d < 0 {
		return errors.New("negative")
	}
	f.d, f.set = d, true
	return nil
}

// get returns the duration, or nil if unset.
func (f *durationFlag) get() *time.Duration {
	if !f.set {
		return nil
	}
	return &f.d
}

// flags are the values of a command's flags.
type flags struct {
	addr      string
	wait, ttl durationFlag
	shared    bool
	permits   int
	reenter   string
	owner     string
	ownerSet  bool
}

// flagSet returns a FlagSet for c's flags (and --addr, default addr) that
// sets f. It prints nothing: what went wrong is reported as bad input.
func (c *command) flagSet(f *flags, addr string) *flag.FlagSet {
	fs := flag.NewFlagSet("zklock "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&f.addr, addrFlag.name, addr, addrFlag.help)
	for _, d := range c.flags {
		switch d.name {
		case "wait":
			fs.Var(&f.wait, d.name, d.help)
		case "ttl":
			fs.Var(&f.ttl, d.name, d.help)
		case "shared":
			fs.BoolVar(&f.shared, d.name, false, d.help)
		case "permits":
			fs.IntVar(&f.permits, d.name, 0, d.help)
		case "reenter":
			fs.StringVar(&f.reenter, d.name, "", d.help)
		case "owner":
			fs.Func(d.name, d.help, func(s string) error {
				f.owner, f.ownerSet = s, true
				return nil
			})
		default:
			panic("zklock: no flag " + d.name)
		}
	}
	return fs
}

// parseArgs parses fs's flags wherever they are among args and returns the
// other arguments. "--" ends the flags. For run (command), the first
// argument after LOCK that is not a flag also ends them: it is COMMAND,
// given without "--".
func parseArgs(fs *flag.FlagSet, args []string, command bool) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		n := len(args) - len(fs.Args())
		ended := n > 0 && args[n-1] == "--" // Parse took the "--"
		args = fs.Args()
		if ended || len(args) == 0 || (command && len(rest) == 1) {
			return append(rest, args...), nil
		}
		rest, args = append(rest, args[0]), args[1:]
	}
}

// flagError rewrites an error of the flag package with flags written as
// in the usage (--wait, not -wait).
func flagError(err error) string {
	msg := err.Error()
	for _, from := range []string{"flag: -", "flag -", "defined: -", "argument: -"} {
		msg = strings.ReplaceAll(msg, from, strings.TrimSuffix(from, "-")+"--")
	}
	return msg
}
