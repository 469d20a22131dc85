package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
)

// listenLines listens on a free loopback port and, for each line a
// connection sends, writes back as a line what handle answers to its
// fields (handle may block: the connection waits). When the test ends it
// calls stop (if not nil: it must unblock handle), closes the listener and
// waits for its goroutines.
func listenLines(t *testing.T, handle func(fields []string) string, stop func()) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		if stop != nil {
			stop()
		}
		lis.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				sc := bufio.NewScanner(conn)
				for sc.Scan() {
					fmt.Fprintln(conn, handle(strings.Fields(sc.Text())))
				}
			}()
		}
	}()
	return lis
}

// awaitGranted reads an Acquire stream until Granted; who names the
// contender in errors. Any event but Queued before it is an error.
func awaitGranted(s zklockv1.LockService_AcquireClient, who string) (*zklockv1.Granted, error) {
	for {
		e, err := s.Recv()
		if err != nil {
			return nil, fmt.Errorf("%s: stream ended before Granted: %w", who, err)
		}
		switch {
		case e.GetGranted() != nil:
			return e.GetGranted(), nil
		case e.GetQueued() == nil:
			return nil, fmt.Errorf("%s: %v before Granted", who, e)
		}
	}
}
