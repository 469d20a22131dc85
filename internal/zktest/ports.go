package zktest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// portReservation is a loopback TCP port that no other zktest user (in this
// or another process) will hand out while it is held.
type portReservation struct {
	port int
	lock *os.File // flock(LOCK_EX) held on <tmp>/zktest-ports/<port>.lock
}

func (r *portReservation) release() {
	if r.lock != nil {
		r.lock.Close() // drops the flock
		r.lock = nil
	}
}

var (
	portMu      sync.Mutex
	portLo      int // inclusive
	portHi      int // inclusive
	portNext    int
	portLockDir string
)

// portRange returns the range zktest allocates from: the larger stretch of
// [10000, 65535] outside the kernel's ephemeral port range, so that the
// ports never collide with sockets bound by the kernel to port 0 (outgoing
// connections, listeners on :0) anywhere on the machine.
func portRange() (lo, hi int) {
	const minPort, maxPort = 10000, 65535
	elo, ehi := 32768, 60999 // Linux default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			a, err1 := strconv.Atoi(f[0])
			z, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && a <= z {
				elo, ehi = a, z
			}
		}
	}
	below := elo - minPort // [minPort, elo-1]
	above := maxPort - ehi // [ehi+1, maxPort]
	if below >= above && below >= 100 {
		return minPort, elo - 1
	}
	if above >= 100 {
		return ehi + 1, maxPort
	}
	// The ephemeral range covers (almost) everything: share it.
	return minPort, maxPort
}

// reservePorts reserves n distinct free loopback ports.
func reservePorts(n int) ([]*portReservation, error) {
	portMu.Lock()
	defer portMu.Unlock()
	if portLockDir == "" {
		portLo, portHi = portRange()
		portNext = portLo + rand.IntN(portHi-portLo+1)
		portLockDir = filepath.Join(os.TempDir(), "zktest-ports")
		if err := os.MkdirAll(portLockDir, 0o777); err != nil {
			portLockDir = ""
			return nil, fmt.Errorf("zktest: port lock dir: %w", err)
		}
		// Let other users share the directory despite the umask.
		_ = os.Chmod(portLockDir, 0o777|os.ModeSticky)
	}
	var res []*portReservation
	size := portHi - portLo + 1
	for tries := 0; len(res) < n; tries++ {
		if tries >= size {
			for _, r := range res {
				r.release()
			}
			return nil, errors.New("zktest: no free loopback port left in range")
		}
		p := portNext
		portNext++
		if portNext > portHi {
			portNext = portLo
		}
		if r := tryReserve(p); r != nil {
			res = append(res, r)
		}
	}
	return res, nil
}

// tryReserve takes the lock file of port p and checks that p can be bound on
// 127.0.0.1. It returns nil if either fails.
func tryReserve(p int) *portReservation {
	f, err := os.OpenFile(filepath.Join(portLockDir, strconv.Itoa(p)+".lock"), os.O_RDONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil
	}
	// flock locks belong to the open file description, so this also fails
	// for a port reserved earlier by this very process.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil
	}
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		f.Close()
		return nil
	}
	l.Close()
	return &portReservation{port: p, lock: f}
}
