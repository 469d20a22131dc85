package zkrecipes

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/zktest"
)

// describeString says what Describe read, as "data:holds:token" per
// contender.
func describeString(d Description) []string {
	var out []string
	for _, c := range d.Contenders {
		out = append(out, fmt.Sprintf("%s:%v:%d", c.Data, c.Holds, c.Token))
	}
	return out
}

// TestDescribeSemaphore: Describe of a lock node with a leases child and
// no lock contenders reads a semaphore: its lease nodes hold (every one
// while no permits record says how many may, the first N by sequence once
// one does) and the others wait, then the nodes of its mutex wait, in
// order, but its head, whose contender is counted by its lease node. A
// lock's queue reads as before, also beside an empty leases child.
func TestDescribeSemaphore(t *testing.T) {
	zkc := startZK(t)
	servers := zkc.ConnectString()
	ctx := ctxFor(t, time.Minute)
	c := zktest.Client(t, servers)
	const semPath = "/zklock/describe-sem"
	mustCreate(t, c, "/zklock", "")
	mustCreate(t, c, semPath, "")
	mustCreate(t, c, semPath+"/leases", "")
	mustCreate(t, c, semPath+"/locks", "")
	token := func(p string) int64 {
		t.Helper()
		_, stat, err := c.Get(p)
		if err != nil {
			t.Fatal(err)
		}
		return stat.Czxid
	}
	l1 := token(semPath + "/leases/" + createSeq(t, c, semPath+"/leases", "_c_00000000-0000-4000-8000-000000000001-lease-", "l1"))
	createSeq(t, c, semPath+"/locks", "_c_00000000-0000-4000-8000-000000000002-lock-", "m2")
	l2 := token(semPath + "/leases/" + createSeq(t, c, semPath+"/leases", "_c_00000000-0000-4000-8000-000000000002-lease-", "l2"))
	m3 := token(semPath + "/locks/" + createSeq(t, c, semPath+"/locks", "_c_00000000-0000-4000-8000-000000000003-lock-", "m3"))

	s := newSession(t, servers, 10*time.Second)
	d, err := s.Describe(ctx, semPath)
	if err != nil {
		t.Fatal(err)
	}
	// m2 is the mutex's head, whose contender made l2: counted by l2.
	want := []string{fmt.Sprintf("l1:true:%d", l1), fmt.Sprintf("l2:true:%d", l2), fmt.Sprintf("m3:false:%d", m3)}
	if got := describeString(d); !slices.Equal(got, want) || !d.Semaphore || d.Permits != 0 {
		t.Errorf("no permits record: %v semaphore %v permits %d, want %v, a semaphore of unknown permits", got, d.Semaphore, d.Permits, want)
	}

	if _, err := c.Set(semPath+"/leases", []byte("permits=1"), -1); err != nil {
		t.Fatal(err)
	}
	d, err = s.Describe(ctx, semPath)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{fmt.Sprintf("l1:true:%d", l1), fmt.Sprintf("l2:false:%d", l2), fmt.Sprintf("m3:false:%d", m3)}
	if got := describeString(d); !slices.Equal(got, want) || !d.Semaphore || d.Permits != 1 {
		t.Errorf("1 permit: %v semaphore %v permits %d, want %v, a semaphore of 1 permit", got, d.Semaphore, d.Permits, want)
	}

	const lockPath = "/zklock/describe-lock"
	mustCreate(t, c, lockPath, "")
	mustCreate(t, c, lockPath+"/leased", "") // no sequence number: not a contender
	mustCreate(t, c, lockPath+"/leases", "") // an empty one a semaphore left: lock contenders make it a lock
	r1 := token(lockPath + "/" + createSeq(t, c, lockPath, "_c_00000000-0000-4000-8000-000000000001-__READ__", "r1"))
	r2 := token(lockPath + "/" + createSeq(t, c, lockPath, "00000000000040008000000000000002__rlock__", "r2"))
	w := token(lockPath + "/" + createSeq(t, c, lockPath, "_c_00000000-0000-4000-8000-000000000003-lock-", "w"))
	d, err = s.Describe(ctx, lockPath)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{fmt.Sprintf("r1:true:%d", r1), fmt.Sprintf("r2:true:%d", r2), fmt.Sprintf("w:false:%d", w)}
	if got := describeString(d); !slices.Equal(got, want) || d.Semaphore || d.Permits != 0 {
		t.Errorf("a lock: %v semaphore %v permits %d, want %v, a lock", got, d.Semaphore, d.Permits, want)
	}
	cs, err := s.Contenders(ctx, lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(describeString(Description{Contenders: cs}), want) || !cs[0].Shared || cs[2].Shared {
		t.Errorf("Contenders: %+v, want %v, two shared then one exclusive", cs, want)
	}
}
