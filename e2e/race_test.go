//go:build race

package e2e

// raceEnabled reports whether the test binary was built with -race; zklockd
// is then built with -race too, and a data race it reports fails the test.
const raceEnabled = true
