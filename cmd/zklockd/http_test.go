package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/testpki"
)

// TestHTTPListenFlag: --http-listen is off by default and takes its value
// from ZKLOCK_HTTP_LISTEN, the command line winning.
func TestHTTPListenFlag(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.httpListen != "" {
		t.Fatalf("default --http-listen %q, %v; want off (empty)", o.httpListen, err)
	}
	t.Setenv("ZKLOCK_HTTP_LISTEN", "unix:///run/zklock-http.sock")
	if o, err = parseFlags(nil, io.Discard); err != nil || o.httpListen != "unix:///run/zklock-http.sock" {
		t.Errorf("--http-listen from ZKLOCK_HTTP_LISTEN = %q, %v", o.httpListen, err)
	}
	if o, err = parseFlags([]string{"--http-listen", "127.0.0.1:7880"}, io.Discard); err != nil || o.httpListen != "127.0.0.1:7880" {
		t.Errorf("--http-listen on the command line = %q, %v; want it to win over the environment", o.httpListen, err)
	}
}

// TestHTTPListenErrorIsAStartupError: an --http-listen that cannot be
// served stops zklockd before it connects to ZooKeeper, with a message
// naming the flag.
func TestHTTPListenErrorIsAStartupError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	cert, key := ca.Server(t, "127.0.0.1").WriteFiles(t, dir, "server")
	notSocket := filepath.Join(dir, "file")
	if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wantStartupErrors(t, "--http-listen", "ZKLOCK_HTTP_LISTEN", map[string]startupCase{
		"port in use":          {args: []string{"--http-listen", busy.Addr().String()}, want: "address already in use"},
		"port in use via env":  {env: busy.Addr().String(), want: "address already in use"},
		"no port":              {args: []string{"--http-listen", "127.0.0.1"}, want: "missing port"},
		"not a socket":         {args: []string{"--http-listen", "unix://" + notSocket}, want: "not a socket"},
		"TLS on a unix socket": {args: []string{"--http-listen", "unix://" + filepath.Join(dir, "s"), "--tls-cert", cert, "--tls-key", key}, want: "TLS is for TCP"},
	})
}

// TestHTTPGatewayStopsWithDaemon runs zklockd with TLS and --http-listen:
// an HTTP/2 client over TLS takes a lock as an NDJSON stream; at SIGTERM
// the stream gets Lost{SHUTDOWN} and ends, zklockd returns within its
// shutdown timeout, the HTTP port is closed, and (TestMain's goleak) no
// goroutine of the gateway is left.
func TestHTTPGatewayStopsWithDaemon(t *testing.T) {
	d := startTLSDaemon(t, "--http-listen", "127.0.0.1:0")
	ca, logs, exited, sigterm := d.ca, d.logs, d.exited, d.sigterm
	httpAddr := waitLogged(t, logs, exited, "serving the lock API as HTTP/JSON")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Describe answers 503 until the ZooKeeper session is usable.
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := client.Get("https://" + httpAddr + "/v1/locks/http/shutdown")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if resp.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("describe: %s, want 200 (503 until the session is usable)", resp.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, "https://"+httpAddr+"/v1/locks:acquire",
		strings.NewReader(`{"lock":"http/shutdown","owner":"test"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("acquire: %s over %s, want 200 over HTTP/2", resp.Status, resp.Proto)
	}
	lines := bufio.NewScanner(resp.Body)
	want := func(event string) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("stream ended (%v), want %s", lines.Err(), event)
		}
		var line struct{ Result map[string]json.RawMessage }
		if err := json.Unmarshal(lines.Bytes(), &line); err != nil || line.Result[event] == nil {
			t.Fatalf("line %q, want %s", lines.Bytes(), event)
		}
	}
	want("queued")
	want("granted")

	sigterm()
	want("lost")
	if lines.Scan() {
		t.Errorf("line %q after lost, want the end", lines.Bytes())
	}
	d.waitExit(t, "SIGTERM")
	if c, err := net.DialTimeout("tcp", httpAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("the HTTP port %s still accepts connections after zklockd stopped", httpAddr)
	}
}
