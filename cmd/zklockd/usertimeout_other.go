//go:build !linux

package main

import (
	"syscall"
	"time"
)

// userTimeout sets nothing outside Linux (see usertimeout_linux.go): there
// only keepalive probes bound how long a dead HTTP client holds its leases.
func userTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
