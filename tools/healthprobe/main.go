// Command healthprobe asks a gRPC server's grpc.health.v1 service whether it
// is SERVING, for Kubernetes exec probes. The zklockd image ships it as
// /usr/local/bin/healthprobe: the kubelet's own gRPC probe dials the pod IP
// in plaintext, and so cannot reach a zklockd that listens on loopback, on a
// unix socket, or with TLS. (The Helm chart's default probes are the
// kubelet's, pointed at zklockd's --health-listen port instead; its exec
// probes run this.)
//
//	healthprobe -addr 127.0.0.1:7878
//	healthprobe -addr unix:///var/run/zklock/zklockd.sock
//	healthprobe -addr 127.0.0.1:7878 -tls -tls-no-verify -tls-client-cert c.pem -tls-client-key k.pem
//
// Its flags and exit codes follow grpc_health_probe's: 0 SERVING, 1 bad
// arguments, 2 no connection, 3 the call failed, 4 not SERVING.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Exit codes, as grpc_health_probe's.
const (
	exitServing    = 0
	exitArgs       = 1
	exitConnection = 2
	exitRPC        = 3
	exitNotServing = 4
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	addr, service                 string
	timeout                       time.Duration
	tls, noVerify                 bool
	caCert, clientCert, clientKey string
	serverName                    string
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("healthprobe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "", "(required) host:port, or unix:///path/to/socket")
	fs.StringVar(&o.service, "service", "", "service name to check (\"\": the server as a whole)")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Second, "bound on the whole check, connection included")
	fs.BoolVar(&o.tls, "tls", false, "use TLS")
	fs.BoolVar(&o.noVerify, "tls-no-verify", false, "(with -tls) do not verify the server's certificate")
	fs.StringVar(&o.caCert, "tls-ca-cert", "", "(with -tls) PEM file of the CAs that verify the server")
	fs.StringVar(&o.clientCert, "tls-client-cert", "", "(with -tls) PEM client certificate, for servers that require one")
	fs.StringVar(&o.clientKey, "tls-client-key", "", "(with -tls) PEM key of -tls-client-cert")
	fs.StringVar(&o.serverName, "tls-server-name", "", "(with -tls) name to verify the server's certificate against")
	if err := fs.Parse(args); err != nil {
		return exitArgs
	}
	creds, err := o.credentials()
	if err != nil {
		fmt.Fprintln(stderr, "healthprobe:", err)
		return exitArgs
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	conn, err := grpc.NewClient(o.addr, grpc.WithTransportCredentials(creds), grpc.WithUserAgent("zklock-healthprobe"))
	if err != nil {
		fmt.Fprintf(stderr, "healthprobe: %s: %v\n", o.addr, err)
		return exitArgs
	}
	defer conn.Close()
	// WaitForReady: a connection that fails is retried until the timeout,
	// and the error then says why it failed.
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: o.service}, grpc.WaitForReady(true))
	if err != nil {
		switch status.Code(err) {
		case codes.DeadlineExceeded, codes.Unavailable:
			fmt.Fprintf(stderr, "healthprobe: no connection to %s within %v: %v\n", o.addr, o.timeout, err)
			return exitConnection
		}
		fmt.Fprintf(stderr, "healthprobe: health check of %s failed: %v\n", o.addr, err)
		return exitRPC
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		fmt.Fprintf(stderr, "healthprobe: %s: service %q is %v\n", o.addr, o.service, resp.GetStatus())
		return exitNotServing
	}
	fmt.Fprintf(stdout, "status: %v\n", resp.GetStatus())
	return exitServing
}

func (o *options) credentials() (credentials.TransportCredentials, error) {
	if o.addr == "" {
		return nil, errors.New("-addr is required")
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("-timeout must be positive, not %v", o.timeout)
	}
	if !o.tls {
		if o.noVerify || o.caCert != "" || o.clientCert != "" || o.clientKey != "" || o.serverName != "" {
			return nil, errors.New("-tls-* flags need -tls")
		}
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.noVerify, ServerName: o.serverName}
	if o.caCert != "" {
		pem, err := os.ReadFile(o.caCert)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls-ca-cert %s: no PEM certificate in it", o.caCert)
		}
	}
	if (o.clientCert == "") != (o.clientKey == "") {
		return nil, errors.New("-tls-client-cert and -tls-client-key go together")
	}
	if o.clientCert != "" {
		cert, err := tls.LoadX509KeyPair(o.clientCert, o.clientKey)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}
