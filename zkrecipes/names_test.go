package zkrecipes

import (
	"strings"
	"testing"
)

func TestParseSeq(t *testing.T) {
	tests := map[string]struct {
		name    string
		wantSeq int64
		wantOK  bool
	}{
		"curator":       {"_c_0b1e-lock-0000000042", 42, true},
		"kazoo":         {"abc__lock__0000000007", 7, true},
		"bare":          {"0000000001", 1, true},
		"short":         {"lock-000001", 0, false},
		"not digits":    {"lock-00000000x1", 0, false},
		"empty":         {"", 0, false},
		"other child":   {"config", 0, false},
		"max int32 seq": {"x-2147483647", 2147483647, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			seq, ok := parseSeq(tc.name)
			if seq != tc.wantSeq || ok != tc.wantOK {
				t.Errorf("parseSeq(%q) = %d, %v; want %d, %v", tc.name, seq, ok, tc.wantSeq, tc.wantOK)
			}
		})
	}
}

func TestQueueOrder(t *testing.T) {
	got := queue([]string{
		"_c_b-lock-0000000003",
		"stray",
		"k__lock__0000000001",
		"_c_a-__READ__0000000002",
	})
	want := []contender{
		{"k__lock__0000000001", 1, false},
		{"_c_a-__READ__0000000002", 2, true},
		{"_c_b-lock-0000000003", 3, false},
	}
	if len(got) != len(want) {
		t.Fatalf("queue() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("queue()[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// q builds a queue from a pattern: 'w' exclusive, 'r' shared.
func q(pattern string) []contender {
	out := make([]contender, len(pattern))
	for i, c := range pattern {
		out[i] = contender{name: string('a' + rune(i)), seq: int64(i), shared: c == 'r'}
	}
	return out
}

func TestDecide(t *testing.T) {
	tests := map[string]struct {
		queue     string
		me        int
		holds     bool
		watch     string
		wakeHolds bool
	}{
		"exclusive head":            {"w", 0, true, "", false},
		"exclusive second":          {"ww", 1, false, "a", true},
		"exclusive third":           {"www", 2, false, "b", false},
		"exclusive behind readers":  {"rrw", 2, false, "b", false},
		"exclusive behind 1 reader": {"rw", 1, false, "a", true},
		"shared head":               {"r", 0, true, "", false},
		"shared after shared":       {"rrr", 2, true, "", false},
		"shared after writer":       {"wr", 1, false, "a", true},
		"shared watches nearest w":  {"wrwr", 3, false, "c", false},
		"shared after r then w":     {"rwr", 2, false, "b", true},
		"shared after w w":          {"wwr", 2, false, "b", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			holds, watch, wake := decide(q(tc.queue), tc.me)
			if holds != tc.holds || watch != tc.watch || wake != tc.wakeHolds {
				t.Errorf("decide(%s, %d) = %v, %q, %v; want %v, %q, %v",
					tc.queue, tc.me, holds, watch, wake, tc.holds, tc.watch, tc.wakeHolds)
			}
		})
	}
}

func TestHolders(t *testing.T) {
	for pattern, want := range map[string]int{"": 0, "w": 1, "wr": 1, "rrw": 2, "rrr": 3, "ww": 1} {
		if got := holders(q(pattern)); got != want {
			t.Errorf("holders(%q) = %d, want %d", pattern, got, want)
		}
	}
}

func TestNodePrefix(t *testing.T) {
	id := "0b1e2c3d-0000-4000-8000-000000000000"
	tests := map[string]struct {
		layout Layout
		shared bool
		want   string
	}{
		"curator exclusive": {LayoutCurator, false, "_c_" + id + "-lock-"},
		"curator shared":    {LayoutCurator, true, "_c_" + id + "-__READ__"},
		"curator-rw excl":   {LayoutCuratorRW, false, "_c_" + id + "-__WRIT__"},
		"curator-rw shared": {LayoutCuratorRW, true, "_c_" + id + "-__READ__"},
		"kazoo exclusive":   {LayoutKazoo, false, strings.ReplaceAll(id, "-", "") + "__lock__"},
		"kazoo shared":      {LayoutKazoo, true, strings.ReplaceAll(id, "-", "") + "__rlock__"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.layout.nodePrefix(id, tc.shared)
			if got != tc.want {
				t.Errorf("nodePrefix = %q, want %q", got, tc.want)
			}
			if isShared(got+"0000000001") != tc.shared {
				t.Errorf("isShared(%q) = %v, want %v", got, !tc.shared, tc.shared)
			}
		})
	}
}
