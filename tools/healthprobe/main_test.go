package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serve starts a gRPC server with only the health service on lis, its
// overall status st.
func serve(t *testing.T, lis net.Listener, st healthpb.HealthCheckResponse_ServingStatus, opts ...grpc.ServerOption) {
	t.Helper()
	g := grpc.NewServer(opts...)
	h := health.NewServer()
	h.SetServingStatus("", st)
	healthpb.RegisterHealthServer(g, h)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
}

// probe runs the command with args; a check expected to find no connection
// gets a short timeout (a later -timeout wins).
func probe(t *testing.T, want int, args ...string) (int, string) {
	t.Helper()
	timeout := "5s"
	if want == exitConnection {
		timeout = "300ms"
	}
	var out, errOut bytes.Buffer
	code := run(append(args, "-timeout", timeout), &out, &errOut)
	return code, out.String() + errOut.String()
}

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "serving.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, lis, healthpb.HealthCheckResponse_SERVING)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, tcp, healthpb.HealthCheckResponse_NOT_SERVING)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name string
		args []string
		want int
		says string
	}{
		{"unix socket, serving", []string{"-addr", "unix://" + sock}, exitServing, "SERVING"},
		{"tcp, not serving", []string{"-addr", tcp.Addr().String()}, exitNotServing, "NOT_SERVING"},
		{"unknown service", []string{"-addr", "unix://" + sock, "-service", "nope"}, exitRPC, "NotFound"},
		{"nobody listening", []string{"-addr", closedAddr}, exitConnection, "no connection"},
		{"no socket", []string{"-addr", "unix://" + filepath.Join(dir, "none.sock")}, exitConnection, "no connection"},
		{"no -addr", nil, exitArgs, "-addr is required"},
		{"tls flag without -tls", []string{"-addr", closedAddr, "-tls-no-verify"}, exitArgs, "need -tls"},
		{"unknown flag", []string{"-addr", closedAddr, "-bogus"}, exitArgs, "bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := probe(t, tc.want, tc.args...)
			if code != tc.want || !strings.Contains(out, tc.says) {
				t.Errorf("exit %d, output %q; want exit %d and output with %q", code, out, tc.want, tc.says)
			}
		})
	}
}

// TestProbeMutualTLS: the probe gets through a server that requires client
// certificates only with one.
func TestProbeMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "ca", true)
	srv, srvKey := newCert(t, ca, caKey, "server", false)
	cli, cliKey := newCert(t, ca, caKey, "client", false)
	write := func(name string, der []byte, typ string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	caFile := write("ca.crt", ca.Raw, "CERTIFICATE")
	cliCert := write("client.crt", cli.Raw, "CERTIFICATE")
	cliKeyFile := write("client.key", keyDER(cliKey), "EC PRIVATE KEY")

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Raw}, PrivateKey: srvKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, lis, healthpb.HealthCheckResponse_SERVING, grpc.Creds(credentials.NewTLS(cfg)))
	addr := lis.Addr().String()

	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"client certificate, server verified", []string{"-tls", "-tls-ca-cert", caFile, "-tls-client-cert", cliCert, "-tls-client-key", cliKeyFile}, exitServing},
		{"client certificate, no verify", []string{"-tls", "-tls-no-verify", "-tls-client-cert", cliCert, "-tls-client-key", cliKeyFile}, exitServing},
		{"no client certificate", []string{"-tls", "-tls-no-verify"}, exitConnection},
		{"plaintext", nil, exitConnection},
		{"server not trusted", []string{"-tls", "-tls-client-cert", cliCert, "-tls-client-key", cliKeyFile}, exitConnection},
		{"key without certificate", []string{"-tls", "-tls-client-key", cliKeyFile}, exitArgs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := probe(t, tc.want, append([]string{"-addr", addr}, tc.args...)...)
			if code != tc.want {
				t.Errorf("exit %d (%q), want %d", code, out, tc.want)
			}
		})
	}
}

// newCert makes a certificate for 127.0.0.1 signed by parent (self-signed
// when parent is nil), usable by servers and clients.
func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if parent == nil {
		parent, parentKey = tpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
