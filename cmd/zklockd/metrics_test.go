package main

import (
	"io"
	"net"
	"strings"
	"testing"
)

// TestMetricsListenErrorIsAStartupError: a --metrics-listen address that
// cannot be bound stops zklockd before it connects to ZooKeeper, with a
// message naming the flag (set here through its environment variable).
func TestMetricsListenErrorIsAStartupError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	t.Setenv("ZKLOCK_METRICS_LISTEN", busy.Addr().String())
	err = run([]string{"--listen", "127.0.0.1:0", "--zk", "127.0.0.1:1"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--metrics-listen") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("run with a busy metrics port = %v, want an error naming --metrics-listen and the address in use", err)
	}
	t.Log(err)
}
