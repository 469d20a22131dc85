package sidecar

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// credsOption serves under c, or in plaintext if c is nil.
func credsOption(c credentials.TransportCredentials) grpc.ServerOption {
	if c == nil {
		return grpc.EmptyServerOption{}
	}
	return grpc.Creds(c)
}

// connWindow is the flow-control window of a connection to the lock
// server: what its client may send before the server acknowledges it.
const connWindow = 1 << 20

// streamWindow is the flow-control window of a stream to the lock server:
// a whole request of the largest size accepted, and at least HTTP/2's
// default. A larger request (when maxMessageBytes exceeds connWindow) is
// still received, over several window updates.
func streamWindow(maxMessageBytes int) int32 {
	return int32(min(max(64<<10, maxMessageBytes+5), connWindow)) // 5: gRPC's message header
}

// streamWorkers is how many goroutines of the lock server run calls'
// handlers, one call after the other. A handler grows its goroutine's stack
// while gRPC reads the request: a worker keeps the grown stack for its next
// call, where a goroutine of its own per call, which gRPC starts once every
// worker is busy (with held Acquire streams, for one), grows it anew. An
// idle worker costs a small stack.
const streamWorkers = 256
