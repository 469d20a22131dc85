package main

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestHTTPListenerDropsUnacknowledgedConnections: the connections the HTTP
// listener accepts carry TCP_USER_TIMEOUT (httpUnacked); those of the gRPC
// listener do not (gRPC's own pings time out).
func TestHTTPListenerDropsUnacknowledgedConnections(t *testing.T) {
	for _, tc := range []struct {
		flag string
		lost time.Duration
	}{{"--http-listen", httpUnacked}, {"--listen", 0}} {
		lis, err := listen(tc.flag, "127.0.0.1:0", 0o660, tc.lost)
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close()
		c, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		a, err := lis.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		raw, err := a.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var gerr error
		if err := raw.Control(func(fd uintptr) {
			got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
		}); err != nil {
			t.Fatal(err)
		}
		if gerr != nil || got != int(tc.lost.Milliseconds()) {
			t.Errorf("%s: an accepted connection's TCP_USER_TIMEOUT = %d ms (%v), want %d", tc.flag, got, gerr, tc.lost.Milliseconds())
		}
	}
}
