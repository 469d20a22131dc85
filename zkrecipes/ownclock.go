//go:build !zklock_unsafe_testing

package zkrecipes

// ownClockOff is true only in a zklockd built for the chaos suite's negative
// control (build tag zklock_unsafe_testing); see ownclock_unsafe.go.
const ownClockOff = false
