// Package netns gives a test a host of its own: a Linux network namespace
// joined to the test's namespace by a veth pair, which the test can cut off
// (an nftables drop inside the namespace) and reconnect.
//
// It drives Debian's iproute2 (ip) and nftables (nft) and needs root, or
// CAP_NET_ADMIN and CAP_SYS_ADMIN. Available says whether they are there.
// Addresses come from 10.231.0.0/16, one /30 per namespace; nothing is
// routed beyond the pair.
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// Namespace is one network namespace with a veth pair to the test's
// namespace.
type Namespace struct {
	// Name is the namespace's name, as ip netns knows it.
	Name string
	// HostIP is the test's end of the pair; processes in the namespace
	// reach the test's listeners bound to it.
	HostIP string
	// IP is the namespace's end of the pair.
	IP string

	hostLink, nsLink string
}

// Available reports why namespaces cannot be made here, or nil if they can.
func Available() error {
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("netns: %s not found (Debian packages iproute2 and nftables): %w", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("netns: network namespaces need root (running as uid %d)", os.Geteuid())
	}
	return nil
}

// Require skips the test if network namespaces are not available here,
// saying why; under CI=true it fails it instead, so that a CI run that
// cannot run a suite does not pass by skipping it.
func Require(t testing.TB) {
	t.Helper()
	err := Available()
	switch {
	case err == nil:
	case os.Getenv("CI") == "true":
		t.Fatalf("%v (CI=true: a suite that needs root fails instead of skipping)", err)
	default:
		t.Skip(err)
	}
}

var made atomic.Int32

// New makes a namespace with its veth pair, both ends up, and removes it
// when the test ends. Processes in it must have exited by then.
func New(t testing.TB) *Namespace {
	t.Helper()
	if err := Available(); err != nil {
		t.Fatal(err)
	}
	removeStale()
	pid := os.Getpid()
	n := int(made.Add(1))
	// One /30 of 10.231.0.0/16 per namespace, chosen by process and
	// count so that test binaries running at once rarely collide.
	slot := (pid*16 + n) % (1 << 14)
	base := fmt.Sprintf("10.231.%d.", slot/64)
	ns := &Namespace{
		Name:     fmt.Sprintf("zklock-%d-%d", pid, n),
		HostIP:   base + fmt.Sprint(slot%64*4+1),
		IP:       base + fmt.Sprint(slot%64*4+2),
		hostLink: fmt.Sprintf("zkv%dh%d", pid%100000, n),
		nsLink:   fmt.Sprintf("zkv%dn%d", pid%100000, n),
	}
	t.Cleanup(ns.remove)
	steps := [][]string{
		{"ip", "netns", "add", ns.Name},
		{"ip", "link", "add", ns.hostLink, "type", "veth", "peer", "name", ns.nsLink, "netns", ns.Name},
		{"ip", "addr", "add", ns.HostIP + "/30", "dev", ns.hostLink},
		{"ip", "link", "set", ns.hostLink, "up"},
		{"ip", "-n", ns.Name, "addr", "add", ns.IP + "/30", "dev", ns.nsLink},
		{"ip", "-n", ns.Name, "link", "set", ns.nsLink, "up"},
		{"ip", "-n", ns.Name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := run(nil, s...); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// Command returns a command that runs name with args inside the namespace
// (through ip netns exec, which execs it: the process keeps the pid).
func (ns *Namespace) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Partition drops every packet into or out of the namespace's veth end,
// without a reset: connections across it stall as in a network partition.
// Loopback inside the namespace and unix sockets are untouched.
func (ns *Namespace) Partition() error {
	rules := fmt.Sprintf(`table inet zklock_partition {
	chain in { type filter hook input priority 0; policy accept; iifname %q drop; }
	chain out { type filter hook output priority 0; policy accept; oifname %q drop; }
}
`, ns.nsLink, ns.nsLink)
	return run(strings.NewReader(rules), "ip", "netns", "exec", ns.Name, "nft", "-f", "-")
}

// Heal removes the drop that Partition set.
func (ns *Namespace) Heal() error {
	return run(nil, "ip", "netns", "exec", ns.Name, "nft", "delete", "table", "inet", "zklock_partition")
}

// remove deletes the namespace, which deletes the veth pair with it.
func (ns *Namespace) remove() {
	run(nil, "ip", "netns", "delete", ns.Name)
	run(nil, "ip", "link", "delete", ns.hostLink) // gone already unless the namespace was not made
}

// removeStale deletes the namespaces, and so their veth pairs, left by test
// processes that were killed before their cleanup ran.
func removeStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		var pid, n int
		if _, err := fmt.Sscanf(name, "zklock-%d-%d", &pid, &n); err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			run(nil, "ip", "netns", "delete", name)
		}
	}
}

// run runs a command, giving it stdin if not nil, and returns an error
// with its output if it fails.
func run(stdin io.Reader, args ...string) error {
	cmd := exec.Command(args[0], args[1:]...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("netns: %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
