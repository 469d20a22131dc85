package main

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// userTimeout is a net.ListenConfig.Control that sets TCP_USER_TIMEOUT to
// d on the listening socket, which its accepted connections inherit: the
// kernel drops a connection whose sent data stays unacknowledged for d.
// Keepalive probes do not cover that case (no probe is sent while data
// waits for its acknowledgement): without it, a client that died after
// zklockd sent it something would hold its stream-bound lease until TCP's
// retransmissions give up, about 15 minutes.
func userTimeout(d time.Duration) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
		}); cerr != nil {
			return cerr
		}
		return err
	}
}
