package zktest

import (
	"net"
	"strconv"
	"testing"
)

// TestPortCollisionRetry occupies a reserved port behind zktest's back, as a
// process that ignores the lock files might, and checks that the cluster is
// started again on other ports.
func TestPortCollisionRetry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		servers int // 0: standalone
		port    int // index of the port to steal
	}{
		{"standalone-client-port", 0, 0},
		{"ensemble-election-port", 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stolen net.Listener
			attempts := 0
			testHookReserved = func(ports []*portReservation) {
				attempts++
				if stolen == nil {
					l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(ports[tc.port].port))
					if err != nil {
						t.Errorf("steal port: %v", err)
						return
					}
					stolen = l
				}
			}
			t.Cleanup(func() {
				testHookReserved = nil
				if stolen != nil {
					stolen.Close()
				}
			})
			var c *Cluster
			if tc.servers == 0 {
				c = StartStandalone(t)
			} else {
				c = StartEnsemble(t, tc.servers)
			}
			if attempts != 2 {
				t.Fatalf("%d start attempts, want 2", attempts)
			}
			if l := c.Leader(); l < 0 {
				t.Fatalf("no leader")
			}
		})
	}
}
