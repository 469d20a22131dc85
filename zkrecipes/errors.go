package zkrecipes

import "errors"

// Errors returned by the recipes. They never carry gRPC codes: the sidecar
// maps them.
var (
	// ErrNoSession means the Session has no live ZooKeeper session now.
	ErrNoSession = errors.New("zkrecipes: no ZooKeeper session")
	// ErrLost means a hold's session ended (expired, or would have by the
	// local clock) before the operation finished: the lock may be held by
	// another.
	ErrLost = errors.New("zkrecipes: lock lost")
	// ErrClosed means the Session was closed.
	ErrClosed = errors.New("zkrecipes: session closed")
	// ErrHeld means a lock tried once (WaitNone) is held by another.
	ErrHeld = errors.New("zkrecipes: lock is held")
	// ErrSuspended means a lock tried once could not be tried: contact
	// with ZooKeeper is in doubt (State.Connected is false).
	ErrSuspended = errors.New("zkrecipes: contact with ZooKeeper in doubt")
	// ErrRefused means ZooKeeper answered a request with an error that
	// trying again will not change, such as an invalid path; the
	// ZooKeeper error is wrapped with it.
	ErrRefused = errors.New("zkrecipes: refused by ZooKeeper")
)
