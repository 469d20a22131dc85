package sidecar

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// TestNotFoundAfterTombstoneTTL: an ended lease is remembered for
// Config.TombstoneTTL: a released one answers Release OK, a lost one
// ABORTED. Past that time both answer NOT_FOUND, as a lease never issued
// does, even when no other lease ended meanwhile.
func TestNotFoundAfterTombstoneTTL(t *testing.T) {
	const tombTTL = 2 * time.Second
	zkc := startZK(t)
	a := startInstance(t, zkc.ConnectString(), instanceOpts{cfg: Config{TombstoneTTL: tombTTL}})
	b := startInstance(t, zkc.ConnectString(), instanceOpts{})
	a.waitUsable(t)
	b.waitUsable(t)

	released := detached(t, a, "tomb/released", time.Minute)
	lost := detached(t, a, "tomb/lost", time.Second)

	// The lost lease: its ttl runs out and another sidecar gets the lock.
	acquire(t, b.client, &zklockv1.AcquireRequest{Lock: "tomb/lost"}).granted(time.Second + wait)
	zkDeleted := time.Now() // the lost lease's node is gone by now
	_, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: lost.GetLeaseId()})
	wantCode(t, err, codes.Aborted, "LEASE_LOST")

	// The released lease: once the first Release answered, it is buried.
	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: released.GetLeaseId()}); err != nil {
		t.Fatalf("Release: %v", err)
	}
	buried := time.Now()
	if _, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: released.GetLeaseId()}); err != nil {
		t.Errorf("second Release within the tombstone time: %v, want OK", err)
	}
	_, err = a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{released.GetLeaseId()}})
	wantCode(t, err, codes.NotFound, "LEASE_NOT_FOUND")
	_, err = a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{lost.GetLeaseId()}})
	wantCode(t, err, codes.Aborted, "LEASE_LOST")

	// No lease ends from here on: the tombstones must expire by
	// themselves. The released one was buried before its first Release
	// answered, so it is past its time once tombTTL passed since.
	time.Sleep(time.Until(buried.Add(tombTTL)))
	_, err = a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: released.GetLeaseId()})
	wantCode(t, err, codes.NotFound, "LEASE_NOT_FOUND")
	_, err = a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{released.GetLeaseId()}})
	wantCode(t, err, codes.NotFound, "LEASE_NOT_FOUND")

	// The lost one was buried once its node was deleted, some time after
	// its expiry: it answers ABORTED until tombTTL after that, then
	// NOT_FOUND.
	earliest := lost.GetExpiresAt().AsTime().Add(tombTTL)
	zktest.Eventually(t, time.Until(zkDeleted.Add(tombTTL))+wait, "the lost lease's tombstone expires", func() bool {
		_, err := a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: lost.GetLeaseId()})
		if status.Code(err) == codes.Aborted {
			return false
		}
		if time.Now().Before(earliest) {
			t.Fatalf("lost lease's Release answered %v before its tombstone time was over", err)
		}
		wantCode(t, err, codes.NotFound, "LEASE_NOT_FOUND")
		return true
	})
	_, err = a.client.Renew(ctxT(t), &zklockv1.RenewRequest{LeaseIds: []string{lost.GetLeaseId()}})
	wantCode(t, err, codes.NotFound, "LEASE_NOT_FOUND")

	_, err = a.client.Release(ctxT(t), &zklockv1.ReleaseRequest{LeaseId: newLeaseID()})
	wantCode(t, err, codes.NotFound, "LEASE_NOT_FOUND")
}
