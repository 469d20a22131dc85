// Package zkrecipes implements fair, fenced distributed locks on ZooKeeper.
//
// It holds no gRPC: the sidecar builds on it, and any Go program may use it on
// its own.
//
// # Session
//
// A [Session] owns one ZooKeeper connection and judges the session's life by
// its own clock rather than by the client library's state. It counts an
// epoch: an epoch begins when a write (or sync) is confirmed by ZooKeeper on a
// session, and ends when that session expires, when the library moves to a
// new session, or when no write has been confirmed for the session timeout
// less a margin, whichever comes first. Every lock held in an epoch is lost
// when it ends; its nodes are then deleted by the Session, so that a session
// that survives an epoch (after a long pause, or an ensemble restart) leaves
// no orphans. If, with no epoch live, the servers keep refusing the client's
// handshakes (they lost their data, or were restored from an older backup,
// and refuse a client that saw later transactions), the Session starts over
// with a new client.
//
// Contact is counted from the moment a request was sent, and only for
// requests that pass through the ZooKeeper leader (writes and sync), so a
// follower that has not yet applied the session's expiry cannot vouch for it.
//
// # Locks
//
// [Session.Lock] implements the classic queue: each contender creates an
// EPHEMERAL_SEQUENTIAL child of the lock node (itself a CONTAINER node,
// removed by ZooKeeper once empty) and holds the lock when no contender
// before it conflicts. A waiter watches only the node it waits for, so a
// release wakes one waiter, whatever the queue's length. Node names carry a
// unique id, so that a create whose reply was lost finds its node instead of
// making a second one. Any child whose name ends in ten digits is a
// contender, so a Curator or Kazoo holder on the same path is respected; see
// [Layout].
//
// The fencing token of a hold is the czxid of its node: it strictly
// increases across successive holders of a lock, even when the lock node is
// deleted and created again, within one ZooKeeper history. A Session that
// sees tokens go back (the ensemble's data was lost or restored) logs it
// and tells its [Observer].
//
// A [Hold] is not proof that no one else holds the lock: a paused process
// may resume after its session has expired. Send the fencing token with
// every write to the protected resource.
package zkrecipes
