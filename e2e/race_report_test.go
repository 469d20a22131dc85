package e2e

import "testing"

// The race detector's report of go-zookeeper's lastZxid race, as a chaos
// run's zklockd printed it.
const libraryRaceReport = `
==================
WARNING: DATA RACE
Write at 0x00c0000de300 by goroutine 368:
  github.com/go-zookeeper/zk.(*Conn).recvLoop()
      /root/go/pkg/mod/github.com/go-zookeeper/zk@v1.0.4/conn.go:849 +0x68c
  github.com/go-zookeeper/zk.(*Conn).loop.func2()
      /root/go/pkg/mod/github.com/go-zookeeper/zk@v1.0.4/conn.go:474 +0x1c4

Previous read at 0x00c0000de300 by goroutine 9:
  github.com/go-zookeeper/zk.(*Conn).sendSetWatches()
      /root/go/pkg/mod/github.com/go-zookeeper/zk@v1.0.4/conn.go:614 +0x49d
  github.com/go-zookeeper/zk.(*Conn).loop()
      /root/go/pkg/mod/github.com/go-zookeeper/zk@v1.0.4/conn.go:484 +0x54b

Goroutine 9 (running) created at:
  github.com/go-zookeeper/zk.Connect()
      /root/go/pkg/mod/github.com/go-zookeeper/zk@v1.0.4/conn.go:223 +0x8e6
  github.com/zklock/zklock/zkrecipes.Connect()
      /work/main/zkrecipes/session.go:142 +0x924
==================
`

// TestKnownLibraryRace checks that only that race is let through.
func TestKnownLibraryRace(t *testing.T) {
	races := dataRaces("log line\n" + libraryRaceReport + "another line\n")
	if len(races) != 1 || !knownLibraryRace(races[0]) {
		t.Fatalf("the library's race is not recognised: %q", races)
	}
	other := `
WARNING: DATA RACE
Write at 0x00c0000de300 by goroutine 368:
  github.com/zklock/zklock/zkrecipes.(*Session).touch()
      /work/main/zkrecipes/session.go:230 +0x68c

Previous read at 0x00c0000de300 by goroutine 9:
  github.com/go-zookeeper/zk.(*Conn).sendSetWatches()
      /root/go/pkg/mod/github.com/go-zookeeper/zk@v1.0.4/conn.go:614 +0x49d
`
	if knownLibraryRace(other) {
		t.Errorf("a race in zklock's own code passed as the library's")
	}
}
