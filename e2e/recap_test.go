package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// recapT is a *testing.T that repeats its failures at the end of the
// test's output. A long test (the chaos run) logs thousands of lines after
// a failure (every zklockd's log); a reader of the output's tail, such as
// CI's, then still sees what failed.
type recapT struct {
	*testing.T
	mu    sync.Mutex
	fails []string
}

// newRecapT wraps t; the recap is logged when t's cleanups run, after those
// registered later.
func newRecapT(t *testing.T) *recapT {
	r := &recapT{T: t}
	t.Cleanup(r.recap)
	return r
}

func (r *recapT) note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fails = append(r.fails, msg)
}

func (r *recapT) Errorf(format string, args ...any) {
	r.T.Helper()
	r.note(fmt.Sprintf(format, args...))
	r.T.Errorf(format, args...)
}

func (r *recapT) Error(args ...any) {
	r.T.Helper()
	r.note(fmt.Sprint(args...))
	r.T.Error(args...)
}

func (r *recapT) Fatalf(format string, args ...any) {
	r.T.Helper()
	r.note(fmt.Sprintf(format, args...))
	r.T.Fatalf(format, args...)
}

func (r *recapT) Fatal(args ...any) {
	r.T.Helper()
	r.note(fmt.Sprint(args...))
	r.T.Fatal(args...)
}

func (r *recapT) recap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fails) == 0 {
		return
	}
	var b strings.Builder
	for i, f := range r.fails {
		if i == 20 {
			fmt.Fprintf(&b, "\n... and %d more", len(r.fails)-20)
			break
		}
		if len(f) > 2000 {
			f = f[:2000] + " [...]"
		}
		fmt.Fprintf(&b, "\n%d. %s", i+1, f)
	}
	r.T.Logf("%s failed, for these reasons (repeated from above):%s", r.T.Name(), b.String())
}
