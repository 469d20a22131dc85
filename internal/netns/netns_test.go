package netns

import (
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPartitionAndHeal checks that a process in the namespace reaches a
// listener on HostIP, not while partitioned, and again once healed.
func TestPartitionAndHeal(t *testing.T) {
	Require(t)
	ns := New(t)
	lis, err := net.Listen("tcp", ns.HostIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	// bash's /dev/tcp connects without needing any other tool in the
	// namespace; timeout bounds a stalled connect.
	connect := func() error {
		return ns.Command("timeout", "1", "bash", "-c", "exec 3<>/dev/tcp/"+ns.HostIP+"/"+port).Run()
	}
	if err := connect(); err != nil {
		t.Fatalf("connect before partition: %v", err)
	}
	if err := ns.Partition(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := connect(); err == nil {
		t.Fatalf("connect during partition succeeded")
	}
	if time.Since(start) < 900*time.Millisecond {
		t.Errorf("connect during partition failed after %v: want a stall, not a refusal", time.Since(start))
	}
	if err := ns.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := connect(); err != nil {
		t.Fatalf("connect after heal: %v", err)
	}
}
