package zkrecipes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// ErrNotAuthorized is returned when ZooKeeper refuses a request because the
// ACL of the node (or, for a create or delete, of its parent) does not let
// the Session's identity (Config.Auth, or anonymous) do it. Retrying does
// not help until the identity or the ACL changes.
var ErrNotAuthorized = errors.New("zkrecipes: not authorized by the ZooKeeper ACL")

// Digest is a ZooKeeper digest identity: a user and its password. Its
// String and LogValue show the user only, so that logging it by mistake
// does not leak the password.
type Digest struct {
	User     string
	Password string
}

// ParseDigest parses digest credentials, "user:password" on one line, as
// ZooKeeper's digest scheme reads them: the user ends at the first colon,
// the password (which may hold colons) is the rest. Whitespace around the
// whole is trimmed; inside it is kept. An error never quotes s.
func ParseDigest(s string) (Digest, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Digest{}, errors.New("empty: want user:password")
	}
	if strings.ContainsAny(s, "\r\n") {
		return Digest{}, errors.New("more than one line: want user:password")
	}
	user, password, ok := strings.Cut(s, ":")
	if !ok || user == "" || password == "" {
		return Digest{}, errors.New("malformed: want user:password, both non-empty")
	}
	return Digest{User: user, Password: password}, nil
}

// String returns "digest:USER", without the password.
func (d Digest) String() string { return "digest:" + d.User }

// GoString, for %#v, shows the user only.
func (d Digest) GoString() string {
	return fmt.Sprintf("zkrecipes.Digest{User: %q, Password: redacted}", d.User)
}

// LogValue logs the user only.
func (d Digest) LogValue() slog.Value { return slog.StringValue(d.String()) }

// ACL returns the ACL the recipes give their nodes when they authenticate
// as d: d may do everything (read, write, create and delete children,
// change the ACL); everyone else may only read. ZooKeeper checks a delete
// against the parent's ACL, so with it nobody but d can delete a lock's
// queue nodes, nor an empty lock node under a parent the recipes created,
// nor join a queue by creating a node in it.
func (d Digest) ACL() []zk.ACL {
	return append(zk.DigestACL(zk.PermAll, d.User, d.Password), zk.WorldACL(zk.PermRead)...)
}

// identity names the Session's identity, for logs.
func (s *Session) identity() string {
	if s.cfg.Auth == nil {
		return "anonymous"
	}
	return s.cfg.Auth.String()
}

// addAuth adds the Session's credentials to the client c, retrying until
// ZooKeeper has taken them or c is closed (the Session closed, or replaced
// c), then lets the Session begin an epoch on c: until then no lock node is
// created without them.
//
// ZooKeeper keeps auth per connection. go-zookeeper v1.0.4 remembers
// credentials once AddAuth succeeded and, on every new connection (to the
// same session or, after an expiry, a new one), sends them before any
// queued request (conn.go: loop runs resendZkAuth before sendLoop; a failed
// resend closes the connection). One window is the library's: a reconnect
// between the reply to AddAuth and AddAuth recording the credentials would
// leave that connection without them until the next reconnect: writes on
// it fail with ErrNoAuth, and no node is ever given a weaker ACL.
func (s *Session) addAuth(c *client) {
	defer s.wg.Done()
	auth := []byte(s.cfg.Auth.User + ":" + s.cfg.Auth.Password)
	for attempt := 1; ; attempt++ {
		err := c.conn.AddAuth("digest", auth)
		if err == nil {
			c.authed.Store(true)
			s.log.Info("zookeeper auth added", "auth", *s.cfg.Auth)
			select {
			case s.kick <- struct{}{}:
			default:
			}
			return
		}
		if errors.Is(err, zk.ErrClosing) {
			return
		}
		// The connection was lost before ZooKeeper answered: auth belongs
		// to a connection, so send it again on the next one.
		level := slog.LevelDebug
		if attempt%20 == 0 {
			level = slog.LevelWarn
		}
		s.log.Log(context.Background(), level, "zookeeper auth not added yet: retrying", "auth", *s.cfg.Auth, "attempt", attempt, "err", fmt.Sprint(err))
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}
