package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/zklock/zklock/internal/testpki"
)

func TestParseSocketMode(t *testing.T) {
	good := map[string]os.FileMode{"0660": 0o660, "660": 0o660, "0o600": 0o600, "0777": 0o777, "0": 0}
	for in, want := range good {
		if got, err := parseSocketMode(in); err != nil || got != want {
			t.Errorf("parseSocketMode(%q) = %o, %v; want %o", in, got, err, want)
		}
	}
	for _, in := range []string{"", "rw-rw----", "0800", "1777", "-1", "0x1b6", "06600"} {
		if got, err := parseSocketMode(in); err == nil || !strings.Contains(err.Error(), "--socket-mode") {
			t.Errorf("parseSocketMode(%q) = %o, %v; want an error naming --socket-mode", in, got, err)
		}
	}
}

// withUmask runs f under umask mask. The umask is the process's: these
// tests do not run in parallel.
func withUmask(mask int, f func()) {
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	f()
}

func modeOf(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("%s is %v, not a socket", path, fi.Mode())
	}
	return fi.Mode().Perm()
}

// TestSocketModeIsApplied checks the socket's mode under umasks that would
// narrow it (077) and widen it (000).
func TestSocketModeIsApplied(t *testing.T) {
	for _, umask := range []int{0o077, 0o022, 0} {
		for _, perm := range []os.FileMode{0o600, 0o660, 0o666, 0o640} {
			path := filepath.Join(t.TempDir(), "s")
			withUmask(umask, func() {
				lis, err := listenUnix("--listen", path, perm)
				if err != nil {
					t.Fatalf("umask %03o, mode %03o: %v", umask, perm, err)
				}
				defer lis.Close()
				if got := modeOf(t, path); got != perm {
					t.Errorf("umask %03o: socket mode %03o, want %03o", umask, got, perm)
				}
			})
		}
	}
}

// TestSocketModeHoldsFromBind shows the mode is not wider than asked even
// before bindUnix's chmod: the file is created so.
func TestSocketModeHoldsFromBind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	withUmask(0, func() { // a plain bind would make it 0777
		lc := unixListenConfig(0o600)
		lis, err := lc.Listen(context.Background(), "unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close()
		if got := modeOf(t, path); got != 0o600 {
			t.Errorf("socket created with mode %03o, want 0600", got)
		}
	})
}

// staleSocket leaves a socket file at path that nobody listens on, as a
// killed zklockd does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
}

func TestStaleSocketIsReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	staleSocket(t, path)
	lis, err := listenUnix("--listen", path, 0o600)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	defer lis.Close()
	if got := modeOf(t, path); got != 0o600 {
		t.Errorf("socket mode %03o, want 0600", got)
	}
	go func() {
		if c, err := lis.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the new socket: %v", err)
	}
	c.Close()
}

func TestLiveSocketIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	live, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if lis, err := listenUnix("--listen", path, 0o660); err == nil || !strings.Contains(err.Error(), "in use") {
		if lis != nil {
			lis.Close()
		}
		t.Fatalf("listen on a live socket: %v, want an error saying it is in use", err)
	}
	go func() {
		if c, err := live.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the live socket no longer answers: %v", err)
	}
	c.Close()
}

func TestNonSocketIsLeftAlone(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{file, link, sub} {
		before, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		lis, err := listenUnix("--listen", path, 0o660)
		if err == nil {
			lis.Close()
			t.Errorf("listen on %s (%v): no error", path, before.Mode())
			continue
		}
		if !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("listen on %s: %v, want an error saying it is not a socket", path, err)
		}
		after, err := os.Lstat(path)
		if err != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
			t.Errorf("%s changed: %v, %v", path, after, err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Errorf("regular file now holds %q, %v", b, err)
	}
}

// TestSecurityMisconfigurationIsRefused runs zklockd with bad security
// flags: each fails at start, before it touches the network, naming the
// flag, and never quoting an auth file's content.
func TestSecurityMisconfigurationIsRefused(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	cert, key := ca.Server(t, "127.0.0.1").WriteFiles(t, dir, "server")
	caFile := ca.WriteFile(t, dir, "ca.crt")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notPEM := write("not.pem", "hello")
	secret := "zkuser:hunter2-secret"
	twoLines := write("two-lines", secret+"\n"+secret+"\n")
	noColon := write("no-colon", "hunter2-secret\n")
	empty := write("empty", " \n")
	unreadable := write("unreadable", secret)
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	sock := "unix://" + filepath.Join(dir, "s")

	tests := map[string]struct {
		args []string
		want string
	}{
		"cert without key":      {args: []string{"--tls-cert", cert}, want: "--tls-key go together"},
		"key without cert":      {args: []string{"--tls-key", key}, want: "--tls-cert and --tls-key"},
		"client CA without TLS": {args: []string{"--tls-client-ca", caFile}, want: "--tls-client-ca needs --tls-cert"},
		"missing cert":          {args: []string{"--tls-cert", filepath.Join(dir, "nope.crt"), "--tls-key", key}, want: "no such file"},
		"cert not PEM":          {args: []string{"--tls-cert", notPEM, "--tls-key", key}, want: "--tls-cert"},
		"key and cert swapped":  {args: []string{"--tls-cert", key, "--tls-key", cert}, want: "--tls-cert"},
		"client CA not PEM":     {args: []string{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", notPEM}, want: "--tls-client-ca"},
		"missing client CA":     {args: []string{"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", filepath.Join(dir, "nope")}, want: "--tls-client-ca"},
		"TLS on a unix socket":  {args: []string{"--listen", sock, "--tls-cert", cert, "--tls-key", key}, want: "TLS is for TCP"},
		"TLS on an HTTP socket": {args: []string{"--http-listen", sock, "--tls-cert", cert, "--tls-key", key}, want: "--http-listen unix://"},
		"bad socket mode":       {args: []string{"--listen", sock, "--socket-mode", "rw"}, want: "--socket-mode"},
		"missing auth file":     {args: []string{"--zk-auth-file", filepath.Join(dir, "nope")}, want: "--zk-auth-file"},
		"empty auth file":       {args: []string{"--zk-auth-file", empty}, want: "empty"},
		"auth file two lines":   {args: []string{"--zk-auth-file", twoLines}, want: "more than one line"},
		"auth file no colon":    {args: []string{"--zk-auth-file", noColon}, want: "malformed"},
	}
	if os.Geteuid() != 0 { // root reads any file
		tests["unreadable auth file"] = struct {
			args []string
			want string
		}{args: []string{"--zk-auth-file", unreadable}, want: "permission denied"}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			// A ZooKeeper address nobody serves: a flag that passed would
			// make zklockd start and hang, not fail.
			args := append([]string{"--zk", "127.0.0.1:1"}, tc.args...)
			err := run(args, &logs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%q) = %v, want an error saying %q", tc.args, err, tc.want)
			}
			for _, s := range []string{err.Error(), logs.String()} {
				if strings.Contains(s, "hunter2") {
					t.Errorf("the auth file's content shows: %s", s)
				}
			}
		})
	}
}

// TestConfigurationIsLogged checks the start-up line: every flag's
// effective value, wherever it came from, and secrets redacted.
func TestConfigurationIsLogged(t *testing.T) {
	t.Setenv("ZKLOCK_ROOT", "/from-env")
	t.Setenv("ZKLOCK_ZK_AUTH_FILE", "/etc/zklock/zk-auth")
	o, err := parseFlags([]string{"--listen", "unix:///run/zklock.sock", "--socket-mode", "0600", "--tls-key", "/etc/tls/key.pem"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// A secret-looking flag, as a later change might add.
	o.flags.String("zk-password", "", "")
	if err := o.flags.Set("zk-password", "hunter2"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	logConfig(slog.New(slog.NewTextHandler(&buf, nil)), o.flags)
	line := buf.String()
	if strings.Count(line, "\n") != 1 || !strings.Contains(line, `msg="zklockd configuration"`) {
		t.Fatalf("want one configuration line, got:\n%s", line)
	}
	for _, want := range []string{
		"version=dev", "listen=unix:///run/zklock.sock", "socket-mode=0600", "root=/from-env",
		"zk-auth-file=/etc/zklock/zk-auth", "tls-key=/etc/tls/key.pem", "tls-cert=\"\"",
		"session-timeout=10s", "zk-password=REDACTED",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("configuration line lacks %s:\n%s", want, line)
		}
	}
	o.flags.VisitAll(func(f *flag.Flag) {
		if f.Name != "version" && !strings.Contains(line, " "+f.Name+"=") {
			t.Errorf("configuration line lacks flag %s:\n%s", f.Name, line)
		}
	})
	if strings.Contains(line, "hunter2") {
		t.Errorf("configuration line shows a secret:\n%s", line)
	}
}

// TestVersion builds zklockd as make build does and runs --version; the
// environment cannot turn --version on (an image may set ZKLOCK_VERSION).
func TestVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds zklockd")
	}
	bin := filepath.Join(t.TempDir(), "zklockd")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v1.2.3-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || string(out) != "zklockd v1.2.3-test\n" {
		t.Errorf("zklockd --version = %q, %v; want \"zklockd v1.2.3-test\\n\"", out, err)
	}

	t.Setenv("ZKLOCK_VERSION", "true")
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.showVersion {
		t.Errorf("ZKLOCK_VERSION=true: showVersion %v, %v; want false, nil", o.showVersion, err)
	}
}
