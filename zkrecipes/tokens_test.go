package zkrecipes

import "testing"

func TestTokenFloor(t *testing.T) {
	var f tokenFloor
	steps := []struct {
		sent, now, czxid int64
		fell             bool
		high             int64
	}{
		{sent: 1, now: 2, czxid: 100},
		{sent: 3, now: 4, czxid: 101},
		// Sent before 101 was known: a smaller czxid is no regression (two
		// creates in flight together).
		{sent: 3, now: 5, czxid: 99},
		// Not known when it was sent (a create whose reply was lost).
		{sent: 0, now: 6, czxid: 5},
		// Sent after 101 was known: the history went back.
		{sent: 7, now: 8, czxid: 7, fell: true, high: 101},
		// The floor starts over from there: once, not for every token.
		{sent: 9, now: 10, czxid: 8},
		{sent: 11, now: 12, czxid: 6, fell: true, high: 8},
	}
	for i, st := range steps {
		high, fell := f.note(st.sent, st.now, st.czxid)
		if fell != st.fell || high != st.high {
			t.Errorf("step %d: note(%d, %d, %d) = %d, %v; want %d, %v", i, st.sent, st.now, st.czxid, high, fell, st.high, st.fell)
		}
	}
}
