//go:build zklock_unsafe_testing

package zkrecipes

import "os"

// ownClockOff turns off the Session's own clock when the environment sets
// ZKLOCK_UNSAFE_NO_OWN_CLOCK=1: holders are then lost only when the client
// library reports the session expired, which it learns only after it
// reconnects. This is unsafe, and exists only so that the chaos suite's
// negative control can show that its checker catches the double grants that
// follow. Production builds have no such switch (ownclock.go).
var ownClockOff = os.Getenv("ZKLOCK_UNSAFE_NO_OWN_CLOCK") == "1"
