package sidecar

import (
	"context"
	"fmt"
	"testing"

	"github.com/go-zookeeper/zk"
	"google.golang.org/grpc/codes"

	"github.com/zklock/zklock/zkrecipes"
)

// TestAcquireErrorCodes: what the recipes return maps to the status a
// client can act on; above all, what ZooKeeper refused for good is not
// UNAVAILABLE, which clients retry forever.
func TestAcquireErrorCodes(t *testing.T) {
	live := context.Background()
	tests := map[string]struct {
		err    error
		code   codes.Code
		reason string
	}{
		"refused by ZooKeeper":  {fmt.Errorf("%w: %w", zkrecipes.ErrRefused, zk.ErrBadArguments), codes.FailedPrecondition, "ZK_REFUSED"},
		"not authorized":        {zkrecipes.ErrNotAuthorized, codes.FailedPrecondition, "ZK_NOT_AUTHORIZED"},
		"no session":            {zkrecipes.ErrNoSession, codes.Unavailable, "NO_SESSION"},
		"suspended, tried once": {zkrecipes.ErrSuspended, codes.Unavailable, "SUSPENDED"},
		"closed":                {zkrecipes.ErrClosed, codes.Unavailable, "SHUTTING_DOWN"},
		"held, tried once":      {zkrecipes.ErrHeld, codes.DeadlineExceeded, "LOCK_HELD"},
		"connection trouble":    {fmt.Errorf("zkrecipes: %w", zk.ErrConnectionClosed), codes.Unavailable, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wantCode(t, acquireError("orders/42", 0, tc.err, live, live), tc.code, tc.reason)
		})
	}
}
