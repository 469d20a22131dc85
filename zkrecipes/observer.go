package zkrecipes

import (
	"fmt"
	"time"
)

// Observer is told of a Session's events, for metrics. Its methods are
// called from the Session's own goroutines, from the client library's event
// callback and with the Session's lock held: they must return at once
// (update a counter, no I/O, no waiting) and must not call the Session.
type Observer interface {
	// Reconnected is called each time the client library has a session
	// again after its connection was lost: the same session on another
	// (or the same) server, or a new session after an expiry. Not called
	// for the first connect.
	Reconnected()
	// NewClient is called when the Session starts over with a new client
	// because the servers kept refusing the old one's handshakes after its
	// session was lost: they were not serving, or had seen fewer
	// transactions than it had (their data was lost, or restored from an
	// older backup).
	NewClient()
	// TokensFell is called when a lock node is created with a czxid (a
	// fencing token) lower than one this Session had before: ZooKeeper's
	// history went back. Not called again until it goes back again.
	TokensFell()
	// EpochLost is called when an epoch ends with its holders lost, with
	// why. Not called when the Session is closed.
	EpochLost(cause LossCause)
	// Handoff is called when a waiter of this Session is granted because
	// the exclusive hold it waited on, a hold of this Session too, was
	// released; d runs from the release (before the delete of that hold's
	// node is sent: the waiter does not wait for it) to the moment the
	// waiter's Lock call has the lock. Handoffs from another session's
	// holder are not seen.
	Handoff(d time.Duration)
}

// LossCause says why an epoch ended with its holders lost.
type LossCause int

const (
	// LossExpired: ZooKeeper reported the session expired, or the client
	// library moved to a new session.
	LossExpired LossCause = iota + 1
	// LossOwnClock: the Session's own clock ended the epoch: no request
	// was confirmed for the session timeout less a margin, so the session
	// may have expired.
	LossOwnClock
)

func (c LossCause) String() string {
	switch c {
	case LossExpired:
		return "expired"
	case LossOwnClock:
		return "own_clock"
	}
	return fmt.Sprintf("LossCause(%d)", int(c))
}

// nopObserver is the Observer of a Session configured without one.
type nopObserver struct{}

func (nopObserver) Reconnected()          {}
func (nopObserver) NewClient()            {}
func (nopObserver) TokensFell()           {}
func (nopObserver) EpochLost(LossCause)   {}
func (nopObserver) Handoff(time.Duration) {}

// epochLoss is the error an epoch ends with when its holders are lost. It
// wraps ErrLost.
type epochLoss struct {
	cause LossCause
	msg   string
}

func (e *epochLoss) Error() string { return ErrLost.Error() + ": " + e.msg }
func (e *epochLoss) Unwrap() error { return ErrLost }

// errExpired is why an epoch of the ZooKeeper session sid ended when the
// session expired.
func errExpired(sid int64) error {
	return &epochLoss{cause: LossExpired, msg: fmt.Sprintf("ZooKeeper session 0x%x expired", sid)}
}

// errNoContact is why an epoch ended when no request was confirmed for d.
func errNoContact(d time.Duration) error {
	return &epochLoss{cause: LossOwnClock, msg: fmt.Sprintf("no contact with ZooKeeper for %v", d)}
}
