package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/zklock/zklock/zkrecipes"
)

// parseSocketMode parses --socket-mode: permission bits in octal, such as
// 0660 or 660.
func parseSocketMode(s string) (os.FileMode, error) {
	m, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("--socket-mode %q: want permission bits in octal, such as 0660", s)
	}
	return os.FileMode(m), nil
}

// listenUnix listens on a unix socket at path whose file has mode perm.
//
// The mode holds from the moment the file exists: on Linux the socket's
// mode is set (fchmod) before bind, which creates the file with that mode
// less the umask, and a chmod right after sets the bits the umask cleared.
// No one can connect with rights wider than perm, not even during start.
//
// A socket file already at path is replaced only if connecting to it is
// refused (its server is gone); one that answers is in use, and anything
// that is not a socket is left alone. Two zklockds starting at the same
// instant on one stale socket can still race; give each its own path.
//
// Its errors name flag, the flag that asked for the socket.
func listenUnix(flag, path string, perm os.FileMode) (net.Listener, error) {
	lis, err := bindUnix(path, perm)
	if err == nil {
		return lis, nil
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	fi, serr := os.Lstat(path)
	if serr != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return nil, fmt.Errorf("%s: %s exists and is not a socket: left alone", flag, path)
	}
	c, derr := net.DialTimeout("unix", path, time.Second)
	if derr == nil {
		c.Close()
		return nil, fmt.Errorf("%s: %s is in use by another process", flag, path)
	}
	if !errors.Is(derr, syscall.ECONNREFUSED) {
		// EACCES, a timeout: it may well be alive.
		return nil, fmt.Errorf("%s: %s exists and may be in use: %w", flag, path, derr)
	}
	// Stale. Remove it only if it is still the file looked at.
	if now, err := os.Lstat(path); err != nil || !os.SameFile(fi, now) {
		return nil, fmt.Errorf("%s: %s changed while zklockd checked it", flag, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: removing stale socket: %w", flag, err)
	}
	if lis, err = bindUnix(path, perm); err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return lis, nil
}

// bindUnix creates and listens on a unix socket at path with mode perm; see
// listenUnix.
func bindUnix(path string, perm os.FileMode) (net.Listener, error) {
	lc := unixListenConfig(perm)
	lis, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, perm); err != nil {
		lis.Close()
		return nil, fmt.Errorf("setting the socket's mode: %w", err)
	}
	return lis, nil
}

// unixListenConfig makes unix sockets whose file is created with mode perm
// less the umask: Linux takes the mode of the socket's inode, which fchmod
// sets, when bind creates the file. Elsewhere fchmod may fail and be
// ignored: the mode may then be wider until bindUnix's chmod.
func unixListenConfig(perm os.FileMode) net.ListenConfig {
	return net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var ferr error
		if err := c.Control(func(fd uintptr) { ferr = syscall.Fchmod(int(fd), uint32(perm)) }); err != nil {
			return err
		}
		if ferr != nil && runtime.GOOS == "linux" {
			return fmt.Errorf("setting the socket's mode before bind: %w", ferr)
		}
		return nil
	}}
}

// serverTLS returns the TLS configuration of --tls-cert, --tls-key and
// --tls-client-ca, nil if none is set. The files are read once, at start:
// a renewed certificate takes a restart.
//
// TLS 1.2 is the least accepted and 1.3 is chosen when the client has it;
// under 1.2 only ECDHE key exchange with AEAD ciphers. With a client CA,
// every client must present a certificate that CA signed (mTLS).
func serverTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "" && clientCAFile == "":
		return nil, nil
	case certFile == "" && keyFile == "":
		return nil, errors.New("--tls-client-ca needs --tls-cert and --tls-key: mTLS is TLS with client certificates")
	case certFile == "" || keyFile == "":
		return nil, errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", certFile, keyFile, err)
	}
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{ // TLS 1.2 only; 1.3's are all fine
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-client-ca %s: no PEM certificate in it", clientCAFile)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// readZKAuth reads --zk-auth-file: digest credentials, user:password on one
// line. Neither the error nor anything else quotes the file's content.
func readZKAuth(path string) (*zkrecipes.Digest, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--zk-auth-file: %w", err)
	}
	d, err := zkrecipes.ParseDigest(string(b))
	if err != nil {
		return nil, fmt.Errorf("--zk-auth-file %s: %w", path, err)
	}
	return &d, nil
}

// secretFlag reports whether a flag's value is a secret, to be redacted in
// the logs. No flag holds one today (--zk-auth-file and --tls-key name
// files); the rule guards flags added later.
func secretFlag(name string) bool {
	for _, s := range []string{"password", "secret", "token", "credential"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// logConfig logs, on one line, the version and every flag's effective
// value (from the command line, the environment or its default), secrets
// redacted.
func logConfig(log *slog.Logger, fs *flag.FlagSet) {
	attrs := []any{"version", version}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" {
			return
		}
		v := f.Value.String()
		if secretFlag(f.Name) && v != "" {
			v = "REDACTED"
		}
		attrs = append(attrs, f.Name, v)
	})
	log.Info("zklockd configuration", attrs...)
}

// security is what the security flags configure.
type security struct {
	socketMode os.FileMode                      // of a unix socket
	creds      credentials.TransportCredentials // nil: plaintext
	tls        *tls.Config                      // the same, for --http-listen
	zkAuth     *zkrecipes.Digest                // nil: anonymous
}

// loadSecurity checks the security flags and reads the files they name.
// TLS secures --listen and --http-listen alike, and is refused when either
// is a unix socket: its file mode decides who may connect, and clients of a
// unix socket rarely verify a server name.
func loadSecurity(o *options) (*security, error) {
	var sec security
	var err error
	if sec.socketMode, err = parseSocketMode(o.socketMode); err != nil {
		return nil, err
	}
	tc, err := serverTLS(o.tlsCert, o.tlsKey, o.tlsClientCA)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		if strings.HasPrefix(o.listen, "unix://") {
			return nil, errors.New("--tls-cert with --listen unix://: TLS is for TCP; a unix socket is guarded by its file mode (--socket-mode)")
		}
		if strings.HasPrefix(o.httpListen, "unix://") {
			return nil, errors.New("--tls-cert with --http-listen unix://: TLS is for TCP; a unix socket is guarded by its file mode (--socket-mode)")
		}
		sec.creds = credentials.NewTLS(tc)
		sec.tls = tc
	}
	if sec.zkAuth, err = readZKAuth(o.zkAuthFile); err != nil {
		return nil, err
	}
	return &sec, nil
}
