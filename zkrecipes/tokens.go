package zkrecipes

import "sync"

// tokenFloor notices fencing tokens going back. In one ZooKeeper history
// zxids only grow, so a node whose create was sent after another node's
// create was answered has the larger czxid, whatever its lock. A smaller
// one means the servers' history went back: their data was lost, or
// restored from an older backup. Every token from then on may be lower
// than tokens granted before, on the same lock too, and a resource that
// rejects lower tokens refuses the new holders.
type tokenFloor struct {
	mu   sync.Mutex
	high int64 // the highest czxid of a node this Session created
	at   int64 // when high was learnt, on the Session's clock
}

// note records czxid, of a node whose create was sent at sent (0 if not
// known) and which is known now. If the history went back it returns the
// highest token before, and true; the floor then starts over from czxid.
func (f *tokenFloor) note(sent, now, czxid int64) (high int64, fell bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sent > f.at && czxid < f.high {
		high = f.high
		f.high, f.at = czxid, now
		return high, true
	}
	if czxid > f.high {
		f.high, f.at = czxid, now
	}
	return 0, false
}

// noteToken notes the token of a node of lock whose create was sent at
// sent (0 if not known), and says so in the log and to the Observer if
// tokens went back.
func (s *Session) noteToken(sent, token int64, lock string) {
	if high, fell := s.tokens.note(sent, s.now(), token); fell {
		s.log.Error("fencing tokens went back: ZooKeeper's history restarted (its data was lost, or restored from an older backup); "+
			"resources that reject lower tokens will refuse new holders until their high-water mark is reset",
			"token", token, "highest_before", high, "lock", lock)
		s.obs.TokensFell()
	}
}
