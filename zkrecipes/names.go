package zkrecipes

import (
	"sort"
	"strings"
)

// Layout says how the recipe names its contender nodes, so that other
// ZooKeeper lock clients on the same path count them as contenders.
type Layout int

const (
	// LayoutCurator names nodes as Apache Curator's InterProcessMutex does:
	// _c_<uuid>-lock-<seq>, so that an InterProcessMutex on the same path
	// and zklock exclude each other. Shared contenders are named
	// _c_<uuid>-__READ__<seq>; InterProcessMutex does not see them. This is
	// the default.
	LayoutCurator Layout = iota
	// LayoutKazoo names nodes as Kazoo does: <uuid>__lock__<seq> and
	// <uuid>__rlock__<seq>. Kazoo's Lock, ReadLock and WriteLock see these
	// nodes; Curator does not.
	LayoutKazoo
	// LayoutCuratorRW names nodes as Curator's InterProcessReadWriteLock
	// does: _c_<uuid>-__WRIT__<seq> exclusive, _c_<uuid>-__READ__<seq>
	// shared, for paths shared with that lock.
	LayoutCuratorRW
)

// seqDigits is the width of the sequence suffix ZooKeeper appends.
const seqDigits = 10

// String returns the layout's flag value.
func (l Layout) String() string {
	switch l {
	case LayoutCurator:
		return "curator"
	case LayoutKazoo:
		return "kazoo"
	case LayoutCuratorRW:
		return "curator-rw"
	}
	return "unknown"
}

// ParseLayout parses a layout flag value: "curator", "curator-rw" or
// "kazoo".
func ParseLayout(s string) (Layout, bool) {
	switch s {
	case "curator":
		return LayoutCurator, true
	case "curator-rw":
		return LayoutCuratorRW, true
	case "kazoo":
		return LayoutKazoo, true
	}
	return 0, false
}

// nodePrefix returns the name, before ZooKeeper's sequence suffix, of a
// contender node carrying the unique id.
func (l Layout) nodePrefix(id string, shared bool) string {
	if l == LayoutKazoo {
		if shared {
			return strings.ReplaceAll(id, "-", "") + "__rlock__"
		}
		return strings.ReplaceAll(id, "-", "") + "__lock__"
	}
	if shared {
		return "_c_" + id + "-__READ__"
	}
	if l == LayoutCuratorRW {
		return "_c_" + id + "-__WRIT__"
	}
	return "_c_" + id + "-lock-"
}

// sharedMarkers are the name parts by which Curator and Kazoo mark a read
// (shared) contender. Every other contender is exclusive.
var sharedMarkers = []string{"__READ__", "__rlock__"}

// contender is one child of a lock node that takes part in the queue.
type contender struct {
	name   string
	seq    int64
	shared bool
}

// parseSeq returns the sequence number a node name ends with, and whether
// it ends with one. Any child ending in ten digits is a contender, whoever
// created it.
func parseSeq(name string) (int64, bool) {
	if len(name) < seqDigits {
		return 0, false
	}
	var n int64
	for _, c := range name[len(name)-seqDigits:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// isShared reports whether a contender's name marks a shared hold.
func isShared(name string) bool {
	for _, m := range sharedMarkers {
		if strings.Contains(name, m) {
			return true
		}
	}
	return false
}

// queue returns the contenders among a lock node's children in queue order:
// by sequence number, then by name.
func queue(children []string) []contender {
	q := make([]contender, 0, len(children))
	for _, c := range children {
		seq, ok := parseSeq(c)
		if !ok {
			continue
		}
		q = append(q, contender{name: c, seq: seq, shared: isShared(c)})
	}
	sort.Slice(q, func(i, j int) bool {
		if q[i].seq != q[j].seq {
			return q[i].seq < q[j].seq
		}
		return q[i].name < q[j].name
	})
	return q
}

// indexOf returns the position of the named contender in q, a queue in
// queue order, or -1.
func indexOf(q []contender, name string) int {
	seq, ok := parseSeq(name)
	if !ok {
		return -1
	}
	i := sort.Search(len(q), func(i int) bool {
		return q[i].seq > seq || (q[i].seq == seq && q[i].name >= name)
	})
	if i < len(q) && q[i].name == name {
		return i
	}
	return -1
}

// decide says whether the contender at q[i] holds the lock and, if not,
// which node it must watch: its immediate predecessor if exclusive, the
// nearest preceding exclusive contender if shared. wakeHolds says whether
// the contender will hold once that watched node is gone: nodes before it
// only ever leave, since sequence numbers only grow.
func decide(q []contender, i int) (holds bool, watch string, wakeHolds bool) {
	if !q[i].shared {
		if i == 0 {
			return true, "", false
		}
		return false, q[i-1].name, i == 1
	}
	w := -1
	for j := i - 1; j >= 0; j-- {
		if !q[j].shared {
			w = j
			break
		}
	}
	if w < 0 {
		return true, "", false
	}
	wakeHolds = true
	for j := 0; j < w; j++ {
		if !q[j].shared {
			wakeHolds = false
			break
		}
	}
	return false, q[w].name, wakeHolds
}

// holders returns how many contenders at the head of q hold the lock.
func holders(q []contender) int {
	if len(q) == 0 {
		return 0
	}
	if !q[0].shared {
		return 1
	}
	n := 0
	for n < len(q) && q[n].shared {
		n++
	}
	return n
}
