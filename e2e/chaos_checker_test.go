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
	said := func(kind string, ms int, op, detail string) record {
		r := ev(kind, ms, op, "l", 0)
		r.detail = detail
		return r
	}
	write := func(ms int, op string, token int64, refused bool) record {
		w := ev("write", ms, op, "l", token)
		w.refused = refused
		return w
	}
	// inHistory marks a write as taken by the resource after n ensemble
	// wipes had reset its high-water marks.
	inHistory := func(n int, w record) record {
		w.history = n
		return w
	}
	// Two clients on zklockds 0 and 1 hand the lock "l" back and forth.
	clean := []record{
		ev("acquire", 0, "a.1", "l", 0), ev("granted", 10, "a.1", "l", 100),
		ev("acquire", 20, "b.1", "l", 0),
		ev("release", 50, "a.1", "l", 100), ev("granted", 60, "b.1", "l", 200),
		ev("release", 90, "b.1", "l", 200),
	}
	base := history{daemonOf: map[string]int{"a": 0, "b": 1}, timeout: 3 * time.Second, end: at(10_000),
		writes: []record{write(20, "a.1", 100, false), write(70, "b.1", 200, false)}}

	// paused: a's zklockd is paused at 30 while a holds, and continued at
	// 4530; ZooKeeper expires its session and b is granted at 3000, after
	// the paused zklockd's own deadline (30 + 2250). On waking, a's
	// zklockd says lost at 4540.
	paused := func(h *history) {
		h.events[3] = said("lost", 4540, "a.1", "LOST_REASON_SESSION_EXPIRED")
		h.events[4].at, h.events[5].at = at(3000), at(3100)
		h.writes = []record{write(20, "a.1", 100, false), write(2500, "a.1", 100, false),
			write(3010, "b.1", 200, false), write(3020, "a.1", 100, true), write(4535, "a.1", 100, true)}
		h.faults = []fault{{kind: "pause", daemon: 0, holder: h.events[1], start: at(30), woke: at(4530), end: at(5000)}}
	}
	// partitioned: the same with a's zklockd cut off from ZooKeeper from
	// 30 to 4530: its own clock says lost at 2280, before b's grant.
	partitioned := func(h *history) {
		h.events[3] = said("lost", 2280, "a.1", "LOST_REASON_SESSION_EXPIRED")
		h.events[4].at, h.events[5].at = at(3000), at(3100)
		h.faults = []fault{{kind: "partition", daemon: 0, holder: h.events[1], start: at(30), woke: at(4530), end: at(5000)}}
	}

	// wiped: the ensemble is killed at 30, wiped, and starts again as a new
	// ZooKeeper history at 4530 (the resource's high-water marks are reset
	// then); every zklockd serves again at 6000. a.1 hears Lost by its own
	// clock at 2280; b.1 is granted token 5 of the new history at 6100.
	wiped := func(h *history) {
		h.events[3] = said("lost", 2280, "a.1", "LOST_REASON_SESSION_EXPIRED")
		h.events[4].at, h.events[4].token = at(6100), 5
		h.events[5].at, h.events[5].token = at(6200), 5
		h.writes = []record{write(20, "a.1", 100, false), write(2000, "a.1", 100, false), inHistory(1, write(6110, "b.1", 5, false))}
		h.faults = []fault{{kind: "ensemble-wipe", daemon: -1, start: at(30), woke: at(4530), end: at(6000)}}
	}

	// semaphore: a, b (zklockd 0), c and d (zklockd 1) take permits of the
	// semaphore "s" of 3: a, b and c at once (c's grant, of token 102,
	// received before b's, of 101: they did not wait for each other), d
	// once a released.
	semaphore := func(h *history) {
		h.daemonOf["c"], h.daemonOf["d"] = 1, 1
		h.permits = map[string]int{"s": 3}
		h.events = []record{
			ev("acquire", 0, "a.1", "s", 0), ev("acquire", 1, "b.1", "s", 0), ev("acquire", 2, "c.1", "s", 0),
			ev("granted", 10, "a.1", "s", 100), ev("granted", 11, "c.1", "s", 102), ev("granted", 12, "b.1", "s", 101),
			ev("acquire", 20, "d.1", "s", 0), ev("release", 50, "a.1", "s", 100), ev("granted", 60, "d.1", "s", 103),
			ev("release", 80, "b.1", "s", 101), ev("release", 90, "c.1", "s", 102), ev("release", 100, "d.1", "s", 103),
		}
		h.writes = nil
		for _, w := range []record{write(15, "a.1", 100, false), write(16, "c.1", 102, false), write(17, "b.1", 101, false),
			write(30, "a.1", 100, false), write(65, "d.1", 103, false), write(70, "b.1", 101, false)} {
			w.lock = "s"
			h.writes = append(h.writes, w)
		}
	}
	semWrite := func(ms int, op string, token int64, refused string) record {
		w := write(ms, op, token, refused != "")
		w.lock, w.detail = "s", refused
		return w
	}
	// reentered: a.1 re-enters its hold of "l" at 20 (a.1.r1, the same
	// token), and releases the re-entered lease at 30, before the first
	// at 50.
	reentered := func(h *history) {
		enter := ev("reenter", 20, "a.1.r1", "l", 100)
		entered := ev("reentered", 21, "a.1.r1", "l", 100)
		enter.detail, entered.detail = "a.1", "a.1"
		h.events = append(h.events, enter, entered, ev("release", 30, "a.1.r1", "l", 100), said("released", 31, "a.1.r1", ""))
		h.writes = []record{write(20, "a.1", 100, false), write(25, "a.1", 100, false), write(35, "a.1", 100, false), write(70, "b.1", 200, false)}
	}
	// outerFirst: the same, releasing the first lease at 30 and the
	// re-entered one at 50.
	outerFirst := func(h *history) {
		reentered(h)
		h.events[3] = ev("release", 50, "a.1.r1", "l", 100)
		h.events[len(h.events)-2] = ev("release", 30, "a.1", "l", 100)
		h.events[len(h.events)-1] = said("released", 31, "a.1", "")
	}
	// reenteredLost: a.1's hold is lost at 40: both leases hear it.
	reenteredLost := func(h *history) {
		reentered(h)
		h.events = h.events[:len(h.events)-2]
		h.events[3] = said("lost", 40, "a.1", "LOST_REASON_SESSION_EXPIRED")
		h.events = append(h.events, said("lost", 41, "a.1.r1", "LOST_REASON_SESSION_EXPIRED"))
	}

	tests := []struct {
		name                   string
		edit                   func(h *history)
		i1, i2, i5, i6, unfelt int
		refusals               int
		lostToFaults, overlaps int
	}{
		{name: "clean", edit: func(*history) {}},
		{name: "a resource without token check accepted a token going back", i1: 1, edit: func(h *history) {
			h.writes = append(h.writes, write(80, "a.1", 100, false))
		}},
		{name: "the resource refused a token going back", i1: 1, edit: func(h *history) {
			h.writes = append(h.writes, write(80, "a.1", 100, true))
		}},
		{name: "grant tokens go back", i1: 1, edit: func(h *history) {
			h.events[4].token = 50
		}},
		{name: "granted before the holder released", i2: 1, overlaps: 1, edit: func(h *history) {
			h.events[4].at = at(40) // b granted at 40, a released at 50
		}},
		{name: "never released", i2: 1, overlaps: 1, edit: func(h *history) {
			h.events = append(h.events[:3], h.events[4:]...) // a's release is gone
		}},
		{name: "slow regrant after release", i5: 1, edit: func(h *history) {
			h.events[4].at = at(50 + 2100)
			h.events[5].at = at(50 + 2200)
		}},
		{name: "pause: said lost on waking, so vouched until its own deadline; stale writes before that word are fenced", lostToFaults: 1, edit: paused},
		{name: "pause: stale writes after the word on waking", i1: 2, i2: 2, overlaps: 1, lostToFaults: 1, edit: func(h *history) {
			paused(h)
			h.events = append(h.events, said("resumed", 4532, "a.1", ""))
			h.writes = append(h.writes, write(4533, "a.1", 100, true))
		}},
		{name: "pause: said suspended on waking", i2: 2, overlaps: 1, lostToFaults: 1, edit: func(h *history) {
			paused(h)
			h.events = append(h.events, said("suspended", 4535, "a.1", ""))
		}},
		{name: "pause: said resumed on waking", i2: 2, overlaps: 1, unfelt: 1, edit: func(h *history) {
			paused(h)
			h.events[3] = said("resumed", 4535, "a.1", "")
			h.events = append(h.events, ev("release", 6000, "a.1", "l", 100))
		}},
		{name: "pause: a Release sent during the pause, past the deadline, answered OK", i2: 1, unfelt: 1, edit: func(h *history) {
			paused(h)
			h.events[3] = ev("release", 2900, "a.1", "l", 100) // a's client chose to release at 2900
			h.events = append(h.events, said("released", 4540, "a.1", ""))
		}},
		{name: "pause: a Release sent during the pause, past the deadline, answered ABORTED", unfelt: 1, edit: func(h *history) {
			paused(h)
			h.events[3] = ev("release", 2900, "a.1", "l", 100)
			h.events = append(h.events, said("release-failed", 4540, "a.1", "Aborted"))
		}},
		{name: "pause: a grant sent before the pause received on waking, then lost", edit: func(h *history) {
			paused(h)
			h.faults[0].holder = record{}
			h.events[1].at = at(4531) // a's Granted was still in zklockd's buffer
			h.writes = []record{write(3010, "b.1", 200, false), write(4532, "a.1", 100, true)}
		}, unfelt: 1},
		{name: "pause: the woken zklockd grants its waiter a stale token on the lock it held", i1: 3, lostToFaults: 1, edit: func(h *history) {
			// w.1, a waiter of a's zklockd, is granted on the old epoch
			// after b held and released: its grant and writes go back.
			paused(h)
			h.daemonOf["w"] = 0
			h.events = append(h.events, ev("acquire", 20, "w.1", "l", 0), ev("granted", 4600, "w.1", "l", 150),
				said("lost", 4700, "w.1", "LOST_REASON_SESSION_EXPIRED"))
			h.writes = append(h.writes, write(4610, "w.1", 150, true), write(4620, "w.1", 150, true))
		}},
		{name: "pause: a lease of the paused zklockd that hears nothing on waking", i1: 2, i2: 2, overlaps: 1, lostToFaults: 1, edit: func(h *history) {
			// c.1 holds lock m on a's zklockd through the pause; b.2 gets
			// m; after waking, c.1 hears nothing, writes on and closes.
			paused(h)
			h.daemonOf["c"] = 0
			h.events = append(h.events, ev("acquire", 0, "c.1", "m", 0), ev("granted", 5, "c.1", "m", 110),
				ev("acquire", 100, "b.2", "m", 0), ev("granted", 3100, "b.2", "m", 210), ev("release", 3150, "b.2", "m", 210),
				ev("release", 7000, "c.1", "m", 110))
			for _, w := range []record{write(3120, "b.2", 210, false), write(4600, "c.1", 110, true),
				write(6600, "c.1", 110, true), write(6990, "c.1", 110, true)} {
				w.lock = "m"
				h.writes = append(h.writes, w)
			}
		}},
		{name: "pause: a Release whose client deadline ran out in the pause says nothing", lostToFaults: 1, edit: func(h *history) {
			paused(h)
			h.events[3] = ev("release", 1000, "a.1", "l", 100) // released by RPC before the deadline
			h.events = append(h.events, said("release-failed", 4531, "a.1", "DeadlineExceeded"),
				said("lost", 4540, "a.1", "LOST_REASON_SESSION_EXPIRED"))
		}},
		{name: "partition: lost by the own clock before the other grant", lostToFaults: 1, edit: partitioned},
		{name: "partition: the holder heard only Suspended, and lost after the heal", i2: 1, overlaps: 1, lostToFaults: 1, edit: func(h *history) {
			partitioned(h)
			h.events[3] = said("lost", 4600, "a.1", "LOST_REASON_SESSION_EXPIRED")
			h.events = append(h.events, said("suspended", 1030, "a.1", ""))
		}},
		{name: "partition: the holder released before its lease was lost", unfelt: 1, edit: func(h *history) {
			partitioned(h)
			h.events[3] = ev("release", 500, "a.1", "l", 100)
		}},
		{name: "handoff cut: the holder released while cut off, its zklockd's waiter was handed the lock and lost it", lostToFaults: 1, edit: func(h *history) {
			// a.1 holds; w.1 of a's zklockd waits right behind; the cut
			// runs 30-4530; a.1 releases at 40, w.1 is granted at 45 and
			// hears Lost by the own clock at 2280; b.1 is granted at 3000.
			h.daemonOf["w"] = 0
			h.events[3] = ev("release", 40, "a.1", "l", 100)
			h.events[4].at, h.events[5].at = at(3000), at(3100)
			h.events = append(h.events, ev("acquire", 15, "w.1", "l", 0), ev("granted", 45, "w.1", "l", 150),
				said("lost", 2280, "w.1", "LOST_REASON_SESSION_EXPIRED"))
			h.faults = []fault{{kind: "handoff-cut", daemon: 0, holder: h.events[1], start: at(30), woke: at(4530), end: at(5000)}}
		}},
		{name: "handoff cut: the waiter handed the lock kept it past the other grant", i2: 1, overlaps: 1, unfelt: 1, edit: func(h *history) {
			h.daemonOf["w"] = 0
			h.events[3] = ev("release", 40, "a.1", "l", 100)
			h.events[4].at, h.events[5].at = at(3000), at(3100)
			h.events = append(h.events, ev("acquire", 15, "w.1", "l", 0), ev("granted", 45, "w.1", "l", 150),
				ev("release", 4000, "w.1", "l", 150))
			h.faults = []fault{{kind: "handoff-cut", daemon: 0, holder: h.events[1], start: at(30), woke: at(4530), end: at(5000)}}
		}},
		{name: "handoff cut that handed nothing on", unfelt: 1, edit: func(h *history) {
			h.events[3] = ev("release", 40, "a.1", "l", 100)
			h.events[4].at, h.events[5].at = at(3000), at(3100)
			h.faults = []fault{{kind: "handoff-cut", daemon: 0, holder: h.events[1], start: at(30), woke: at(4530), end: at(5000)}}
		}},
		{name: "partition that hit no holder", unfelt: 1, edit: func(h *history) {
			partitioned(h)
			h.faults[0].holder = record{}
		}},
		{name: "wipe: tokens go back in the new ZooKeeper history", edit: wiped},
		{name: "ensemble stop: tokens going back are a violation, the history goes on", i1: 2, edit: func(h *history) {
			wiped(h)
			h.faults[0].kind = "ensemble-stop"
			h.writes[2].history = 0
		}},
		{name: "wipe: a grant, and its writes, going back within the new history", i1: 2, edit: func(h *history) {
			wiped(h)
			h.daemonOf["c"] = 1
			h.events = append(h.events, ev("acquire", 6150, "c.1", "l", 0), ev("granted", 6300, "c.1", "l", 3),
				ev("release", 6400, "c.1", "l", 3))
			h.writes = append(h.writes, inHistory(1, write(6310, "c.1", 3, true)))
		}},
		{name: "wipe: the old history's holder writes once the new one began", i1: 2, edit: func(h *history) {
			// Accepted, since the resource was reset: then b.1's next
			// write, of the new history, is refused.
			wiped(h)
			h.writes = append(h.writes, inHistory(1, write(6150, "a.1", 100, false)), inHistory(1, write(6160, "b.1", 5, true)))
		}},
		{name: "wipe: the old history's holder never heard Lost, and the new history's grant overlaps it", i2: 1, overlaps: 1, edit: func(h *history) {
			wiped(h)
			h.events[3] = ev("release", 7000, "a.1", "l", 100)
		}},
		{name: "wipe: a grant received in the outage (a local handoff) is of the history before", edit: func(h *history) {
			wiped(h)
			h.daemonOf["w"] = 0
			h.events[3] = ev("release", 400, "a.1", "l", 100)
			h.events = append(h.events, ev("acquire", 15, "w.1", "l", 0), ev("granted", 450, "w.1", "l", 150),
				said("lost", 2280, "w.1", "LOST_REASON_SESSION_EXPIRED"))
			h.writes = append(h.writes, write(460, "w.1", 150, false))
		}},
		{name: "wipe: a grant received in the outage with a token going back in the history before", i1: 1, edit: func(h *history) {
			wiped(h)
			h.daemonOf["w"] = 0
			h.events[3] = ev("release", 400, "a.1", "l", 100)
			h.events = append(h.events, ev("acquire", 15, "w.1", "l", 0), ev("granted", 450, "w.1", "l", 50),
				said("lost", 2280, "w.1", "LOST_REASON_SESSION_EXPIRED"))
		}},
		{name: "released while a killed zklockd's waiter may still be queued", edit: func(h *history) {
			// zklockd 2 was killed at 0 and back at 20; its session, and
			// any waiter of it ahead in the queue, lives until 3000.
			h.events[4].at = at(50 + 2600)
			h.events[5].at = at(50 + 2700)
			h.faults = []fault{{kind: "zklockd-kill", daemon: 2, start: at(0), end: at(20)}}
		}},
		{name: "semaphore: 3 holders of 3 permits, granted out of order", edit: semaphore},
		{name: "semaphore: 4 holders of 3 permits", i2: 1, edit: func(h *history) {
			semaphore(h)
			h.events[8].at = at(40) // d granted at 40, a released at 50
		}},
		{name: "semaphore: a grant's token lower than one granted before it asked", i1: 1, edit: func(h *history) {
			semaphore(h)
			h.events[8].token = 99 // d asked at 20, after c's 102 was granted at 11
		}},
		{name: "semaphore: the resource refused a write of 4 holders", i2: 1, edit: func(h *history) {
			semaphore(h)
			h.writes = append(h.writes, semWrite(66, "d.1", 103, semFull))
		}},
		{name: "semaphore: the resource refused a write of a lease it knew ended", i1: 1, edit: func(h *history) {
			semaphore(h)
			h.writes = append(h.writes, semWrite(66, "d.1", 103, "node gone"))
		}},
		{name: "semaphore: a write of an earlier ZooKeeper history", i1: 1, edit: func(h *history) {
			semaphore(h)
			h.faults = []fault{{kind: "ensemble-wipe", daemon: -1, start: at(62), woke: at(63), end: at(64)}}
			h.writes = append(h.writes, inHistory(1, semWrite(66, "b.1", 101, "")))
		}},
		{name: "re-entry: re-entered lease released first", edit: reentered},
		{name: "re-entry: first lease released first", edit: outerFirst},
		{name: "re-entry: the re-entered lease has another token", i6: 1, edit: func(h *history) {
			reentered(h)
			h.events[len(h.events)-3].token = 101
		}},
		{name: "re-entry: granted to another while the re-entered lease lived", i2: 1, overlaps: 1, edit: func(h *history) {
			outerFirst(h)
			h.events[4].at = at(40) // b granted at 40, a.1.r1 released at 50
		}},
		{name: "re-entry: a loss heard by both leases", edit: reenteredLost},
		{name: "re-entry: a loss heard by one lease, the other released", i6: 1, edit: func(h *history) {
			reenteredLost(h)
			h.events = append(h.events[:len(h.events)-1], ev("release", 5040, "a.1.r1", "l", 100), said("released", 5041, "a.1.r1", ""))
		}},
		{name: "re-entry: a loss heard by one lease, the other heard nothing", i6: 1, edit: func(h *history) {
			reenteredLost(h)
			h.events = h.events[:len(h.events)-1]
		}},
		{name: "re-entry: the lock's node gone at the first lease's release", i6: 1, edit: func(h *history) {
			outerFirst(h)
			gone := ev("node-gone", 32, "a.1", "l", 100)
			h.events = append(h.events, gone)
		}},
		{name: "re-entry: queued", i6: 1, edit: func(h *history) {
			reentered(h)
			h.events = append(h.events, ev("queued", 20, "a.1.r1", "l", 0))
		}},
		{name: "re-entry: granted after the loss came, and lost", edit: func(h *history) {
			reenteredLost(h)
			h.events[len(h.events)-2].at = at(45) // a.1.r1's grant, received after a.1's loss
			h.events[len(h.events)-1].at = at(46)
		}},
		{name: "re-entry: refused for an unknown lease", refusals: 1, edit: func(h *history) {
			enter := ev("reenter", 20, "a.1.r1", "l", 100)
			failed := said("reenter-failed", 21, "a.1.r1", "NotFound")
			h.events = append(h.events, enter, failed)
		}},
		{name: "re-entry: refused ABORTED, and the hold heard lost", edit: func(h *history) {
			h.events[3] = said("lost", 22, "a.1", "LOST_REASON_SESSION_EXPIRED")
			h.events = append(h.events, ev("reenter", 20, "a.1.r1", "l", 100), said("reenter-failed", 21, "a.1.r1", "Aborted"))
		}},
		{name: "re-entry: refused ABORTED, and the hold heard nothing", i6: 1, edit: func(h *history) {
			h.events = append(h.events, ev("reenter", 20, "a.1.r1", "l", 100), said("reenter-failed", 21, "a.1.r1", "Aborted"))
		}},
		{name: "crashed holder granted too late", i5: 1, edit: func(h *history) {
			h.events[3] = ev("error", 31, "a.1", "l", 100)
			h.events[4].at, h.events[5].at = at(30+5100), at(30+5200)
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
			if len(v.i1) != tc.i1 || len(v.i2) != tc.i2 || len(v.i5) != tc.i5 || len(v.i6) != tc.i6 || len(v.refusals) != tc.refusals ||
				len(v.unfelt) != tc.unfelt || v.lostToFaults != tc.lostToFaults || len(v.overlaps) != tc.overlaps {
				t.Errorf("I1 %d, I2 %d (%d overlaps), I5 %d, I6 %d, refusals %d, faults that cost no lease %d (%d that did); want %d, %d (%d), %d, %d, %d, %d (%d):\n%s",
					len(v.i1), len(v.i2), len(v.overlaps), len(v.i5), len(v.i6), len(v.refusals), len(v.unfelt), v.lostToFaults,
					tc.i1, tc.i2, tc.overlaps, tc.i5, tc.i6, tc.refusals, tc.unfelt, tc.lostToFaults, strings.Join(v.violations(), "\n"))
			}
		})
	}
}
