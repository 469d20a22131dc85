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
