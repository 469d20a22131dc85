package zkrecipes

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// TestSharedReadsShowEveryCallersNode: callers that create a node and then
// read the queue at once share reads, and each read shows the node its
// callers made before asking.
func TestSharedReadsShowEveryCallersNode(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 10*time.Second)
	const lockPath = "/reads"
	if _, err := s.conn().Create(lockPath, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	const callers = 64
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	ctx := ctxFor(t, time.Minute)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := s.conn().Create(fmt.Sprintf("%s/c%03d-", lockPath, i), nil, zk.FlagEphemeralSequential, zk.WorldACL(zk.PermAll))
			if err != nil {
				errs <- err
				return
			}
			q, err := s.reads.queue(ctx, lockPath)
			if err != nil {
				errs <- err
				return
			}
			if indexOf(q, p[len(lockPath)+1:]) < 0 {
				errs <- fmt.Errorf("caller %d: read without its node %s (%d nodes)", i, p, len(q))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSharedReadsHonourCancel(t *testing.T) {
	zkc := startZK(t)
	s := newSession(t, zkc.ConnectString(), 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.reads.queue(ctx, "/none"); err != context.Canceled {
		t.Errorf("queue with a cancelled context = %v, want context.Canceled", err)
	}
}
