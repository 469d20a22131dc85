package zkrecipes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A semaphore named by path lives in Apache Curator's InterProcessSemaphoreV2
// layout, so that Curator contenders on the same path share its permits:
//
//	<path>/locks   an exclusive lock (Curator's InterProcessMutex) that a
//	               contender holds while it joins, and while it waits for
//	               a permit to come free
//	<path>/leases  one EPHEMERAL_SEQUENTIAL node per holder,
//	               _c_<uuid>-lease-<seq>; its czxid is the fencing token
//
// Holding <path>/locks, a contender creates its lease node and reads the
// children of <path>/leases with a watch: with at most N of them it holds a
// permit and lets the lock go; otherwise it waits for the watch, still
// holding the lock. So contenders are served in the lock's order, and a
// release wakes only the one contender holding the lock.
//
// zklock contenders record the number of permits they agreed on as
// <path>'s data, "permits=N"; Curator ignores it.
const (
	semLocks  = "locks"
	semLeases = "leases"
)

// SemaphoreLeases returns the node under which the holders of the semaphore
// at path have their lease nodes.
func SemaphoreLeases(path string) string { return path + "/" + semLeases }

// permitsRecord is the data of a semaphore node whose zklock contenders
// agreed on n permits.
func permitsRecord(n int) []byte { return []byte("permits=" + strconv.Itoa(n)) }

// parsePermits returns the number of permits a semaphore node's data
// records, or 0 if it records none.
func parsePermits(data []byte) int {
	v, ok := strings.CutPrefix(string(data), "permits=")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0
	}
	return n
}

// PermitsError means a contender asked for a number of permits other than
// the one the present contenders of the same name agreed on. A lock counts
// as 1 permit.
type PermitsError struct {
	Path string
	Want int // asked for
	Have int // agreed on by the present contenders
}

func (e *PermitsError) Error() string {
	kind := func(n int) string {
		if n <= 1 {
			return "a lock (1 permit)"
		}
		return fmt.Sprintf("a semaphore of %d permits", n)
	}
	return fmt.Sprintf("zkrecipes: %s is %s, not %s", e.Path, kind(e.Have), kind(e.Want))
}

// Semaphore waits until it holds one of the permits of the semaphore at
// semPath, a number its contenders must agree on (a *PermitsError
// otherwise; also if semPath has lock contenders). opts.Shared must be
// false. The Hold's token is its lease node's czxid.
//
// Like Lock, it returns ErrNoSession at once without a live epoch, joins
// again in the next epoch if the epoch ends while it waits, and deletes
// its nodes if ctx ends first.
func (s *Session) Semaphore(ctx context.Context, semPath string, permits int, opts LockOptions) (*Hold, error) {
	return nil, errors.New("zkrecipes: semaphores: not yet")
}
