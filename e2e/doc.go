// Package e2e holds end-to-end tests of zklockd: they build the real
// binary, run it as separate processes against a real ZooKeeper started by
// internal/zktest, and drive it over gRPC the way an application would.
//
// Run them with: go test -race -count=1 ./e2e/
package e2e
