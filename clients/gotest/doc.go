// Package gotest holds the Go client's tests that need a running sidecar
// (clients/go/zklock against an in-process zklockd and a real ZooKeeper).
// They live in the main module so that the client's own module requires
// nothing but gRPC and protobuf.
package gotest
