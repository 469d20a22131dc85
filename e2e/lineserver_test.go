package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
)

// serveLines accepts connections on lis until lis is closed and, for each
// line a connection sends, writes back as a line what handle answers to
// its fields (handle may block: the connection waits). wg counts the
// goroutines it starts.
func serveLines(lis net.Listener, wg *sync.WaitGroup, handle func(fields []string) string) {
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
