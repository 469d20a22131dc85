package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestChaosChecker feeds the chaos run's checks histories with known
// faults in them, so that a checker that cannot fail is caught without a
// chaos run.
func TestChaosChecker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(kind string, ms int, op, lock string, token int64) record {
		client, _, _ := strings.Cut(op, ".")
		return record{kind: kind, at: at(ms), op: op, client: client, lock: lock, token: token}
	}
	// Two clients on zklockds 0 and 1 hand the lock "l" back and forth.
	clean := []record{
		ev("acquire", 0, "a.1", "l", 0), ev("granted", 10, "a.1", "l", 100),
		ev("acquire", 20, "b.1", "l", 0),
		ev("release", 50, "a.1", "l", 100), ev("granted", 60, "b.1", "l", 200),
		ev("release", 90, "b.1", "l", 200),
	}
	base := history{daemonOf: map[string]int{"a": 0, "b": 1}, timeout: 3 * time.Second, ownClock: true, end: at(10_000),
		writes: []record{ev("write", 20, "a.1", "l", 100), ev("write", 70, "b.1", "l", 200)}}

	tests := []struct {
		name   string
		edit   func(h *history)
		i1, i2 int
		i5     int
	}{
		{name: "clean", edit: func(*history) {}},
		{name: "token goes back", i1: 1, edit: func(h *history) {
			h.writes = append(h.writes, ev("write", 80, "a.1", "l", 100))
		}},
		{name: "granted before the holder released", i2: 1, edit: func(h *history) {
			h.events[4].at = at(40) // b granted at 40, a released at 50
		}},
		{name: "never released", i2: 1, edit: func(h *history) {
			h.events = append(h.events[:3], h.events[4:]...) // a's release is gone
		}},
		{name: "slow regrant after release", i5: 1, edit: func(h *history) {
			h.events[4].at = at(50 + 600)
			h.events[5].at = at(50 + 700)
		}},
		{name: "pause: vouched until the own clock's deadline", edit: func(h *history) {
			// a's zklockd paused at 30 while a held; b granted at 3000,
			// after the deadline (30 + 2250); a learns it lost at 5000.
			h.events[3] = ev("lost", 5000, "a.1", "l", 100)
			h.events[4].at, h.events[5].at = at(3000), at(3100)
			h.faults = []fault{{kind: "pause", daemon: 0, start: at(30), end: at(5000)}}
		}},
		{name: "pause without the own clock", i2: 1, edit: func(h *history) {
			h.ownClock = false
			h.events[3] = ev("lost", 5000, "a.1", "l", 100)
			h.events[4].at, h.events[5].at = at(3000), at(3100)
			h.faults = []fault{{kind: "pause", daemon: 0, start: at(30), end: at(5000)}}
		}},
		{name: "released while a killed zklockd's waiter may still be queued", edit: func(h *history) {
			// zklockd 2 was killed at 0 and back at 20; its session, and
			// any waiter of it ahead in the queue, lives until 3000.
			h.events[4].at = at(50 + 1600)
			h.events[5].at = at(50 + 1700)
			h.faults = []fault{{kind: "zklockd-kill", daemon: 2, start: at(0), end: at(20)}}
		}},
		{name: "crashed holder granted too late", i5: 1, edit: func(h *history) {
			h.events[3] = ev("error", 31, "a.1", "l", 100)
			h.events[4].at, h.events[5].at = at(30+4100), at(30+4200)
			h.faults = []fault{{kind: "zklockd-kill", daemon: 0, start: at(30), end: at(300)}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := base
			h.events = append([]record(nil), clean...)
			h.writes = append([]record(nil), base.writes...)
			tc.edit(&h)
			v := h.check()
			if len(v.i1) != tc.i1 || len(v.i2) != tc.i2 || len(v.i5) != tc.i5 {
				t.Errorf("I1 %d, I2 %d, I5 %d violations, want %d, %d, %d:\n%s", len(v.i1), len(v.i2), len(v.i5), tc.i1, tc.i2, tc.i5,
					strings.Join(append(append(v.i1, v.i2...), v.i5...), "\n"))
			}
		})
	}
}
