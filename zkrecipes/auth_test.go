package zkrecipes

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zklock/zklock/internal/syncbuf"
	"github.com/zklock/zklock/internal/tcpproxy"
	"github.com/zklock/zklock/internal/zktest"
)

func TestParseDigest(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    Digest
		wantErr string
	}{
		"plain":                 {in: "zklock:s3cret", want: Digest{"zklock", "s3cret"}},
		"trailing newline":      {in: "zklock:s3cret\n", want: Digest{"zklock", "s3cret"}},
		"surrounding blanks":    {in: " \tzklock:s3cret \r\n", want: Digest{"zklock", "s3cret"}},
		"colon in the password": {in: "zklock:a:b", want: Digest{"zklock", "a:b"}},
		"empty":                 {in: "", wantErr: "empty"},
		"blank":                 {in: " \n\n", wantErr: "empty"},
		"no colon":              {in: "zklocks3cret", wantErr: "malformed"},
		"no user":               {in: ":s3cret", wantErr: "malformed"},
		"no password":           {in: "zklock:", wantErr: "malformed"},
		"two lines":             {in: "zklock:s3cret\nother:pw", wantErr: "more than one line"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseDigest(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseDigest(%q) = %v, %v; want an error saying %q", tc.in, got, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q quotes the password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDigest(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("ParseDigest(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestDigestNeverPrintsItsPassword(t *testing.T) {
	d := Digest{User: "zklock", Password: "s3cret"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "auth", d, "ptr", &d)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "auth", d)
	for _, s := range []string{fmt.Sprint(d), fmt.Sprintf("%v %+v %#v %s %v", d, d, d, d, &d), buf.String()} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("%q shows the password", s)
		}
		if !strings.Contains(s, "zklock") {
			t.Errorf("%q does not show the user", s)
		}
	}
}

// authSession connects a Session that authenticates as d, logging into
// logs, and waits until it is usable.
func authSession(t *testing.T, servers string, timeout time.Duration, d Digest, logs *syncbuf.Buffer) *Session {
	t.Helper()
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Connect(Config{Servers: strings.Split(servers, ","), SessionTimeout: timeout, Auth: &d, Logger: log})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(s.Close)
	waitEpoch(t, s, 0)
	return s
}

// authedClient returns a plain go-zookeeper client that authenticated as
// d, closed when the test ends.
func authedClient(t *testing.T, servers string, d Digest) *zk.Conn {
	t.Helper()
	c := zktest.Client(t, servers)
	if err := c.AddAuth("digest", []byte(d.User+":"+d.Password)); err != nil {
		t.Fatalf("AddAuth: %v", err)
	}
	return c
}

// wantErr checks that err is want, naming what was tried.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// TestAuthACLProtectsNodes shows the ACL of every node a Session with Auth
// creates (the root, the lock's parents, the lock node and the queue node):
// anyone may read the queue, nobody but the identity may delete or change
// a node, nor join the queue.
func TestAuthACLProtectsNodes(t *testing.T) {
	zkc := startZK(t)
	owner := Digest{User: "zklock", Password: "s3cret-acl"}
	var logs syncbuf.Buffer
	s := authSession(t, zkc.ConnectString(), 6*time.Second, owner, &logs)
	const lockPath = "/zklock/acl/app/orders"
	h, err := s.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{Data: []byte("owner-a")})
	if err != nil {
		t.Fatal(err)
	}
	node := h.Path()

	// ZooKeeper shows the digest only to a client with ADMIN on the node.
	same := authedClient(t, zkc.ConnectString(), owner)
	wantACL := append(zk.DigestACL(zk.PermAll, "zklock", "s3cret-acl"), zk.WorldACL(zk.PermRead)...)
	anon := zktest.Client(t, zkc.ConnectString())
	for _, p := range []string{"/zklock", "/zklock/acl", "/zklock/acl/app", lockPath, node} {
		acl, _, err := same.GetACL(p)
		if err != nil {
			t.Fatalf("GetACL(%s): %v", p, err)
		}
		if !reflect.DeepEqual(acl, wantACL) {
			t.Errorf("ACL of %s: got %v, want %v", p, acl, wantACL)
		}
	}

	// Anyone may read the queue, as Describe and operators do.
	if c := zktest.Children(t, anon, lockPath); len(c) != 1 || c[0] != path.Base(node) {
		t.Errorf("anonymous getChildren(%s) = %v, want [%s]", lockPath, c, path.Base(node))
	}
	if data, _, err := anon.Get(node); err != nil || string(data) != "owner-a" {
		t.Errorf("anonymous getData(%s) = %q, %v; want owner-a", node, data, err)
	}

	// Nobody else may delete, change or join: anonymous, nor another
	// identity.
	other := authedClient(t, zkc.ConnectString(), Digest{User: "intruder", Password: "pw"})
	for name, c := range map[string]*zk.Conn{"anonymous": anon, "another identity": other} {
		wantErr(t, name+" delete of the queue node", c.Delete(node, -1), zk.ErrNoAuth)
		wantErr(t, name+" delete of the lock node", c.Delete(lockPath, -1), zk.ErrNoAuth)
		wantErr(t, name+" delete of the lock's parent", c.Delete("/zklock/acl/app", -1), zk.ErrNoAuth)
		_, err := c.Set(node, []byte("forged"), -1)
		wantErr(t, name+" setData of the queue node", err, zk.ErrNoAuth)
		_, err = c.SetACL(node, zk.WorldACL(zk.PermAll), -1)
		wantErr(t, name+" setACL of the queue node", err, zk.ErrNoAuth)
		_, err = c.Create(lockPath+"/_c_x-lock-", nil, zk.FlagEphemeralSequential, zk.WorldACL(zk.PermAll))
		wantErr(t, name+" create in the queue", err, zk.ErrNoAuth)
		_, err = c.Create("/zklock/acl/other", nil, 0, zk.WorldACL(zk.PermAll))
		wantErr(t, name+" create of a lock under the root", err, zk.ErrNoAuth)
	}
	if c := zktest.Children(t, anon, lockPath); len(c) != 1 {
		t.Errorf("queue after the attempts: %v, want the holder's node only", c)
	}

	// The same identity may: Curator or Kazoo clients that share the
	// lock path authenticate as zklockd does.
	p, err := same.Create(lockPath+"/peer-", nil, zk.FlagEphemeralSequential, owner.ACL())
	if err != nil {
		t.Fatalf("create in the queue as the same identity: %v", err)
	}
	if err := same.Delete(p, -1); err != nil {
		t.Errorf("delete as the same identity: %v", err)
	}

	// Another Session, anonymous or of another identity, cannot queue:
	// ErrNotAuthorized, and nothing is created.
	intruders := map[string]*Session{
		"anonymous":        newSession(t, zkc.ConnectString(), 6*time.Second),
		"another identity": authSession(t, zkc.ConnectString(), 6*time.Second, Digest{User: "intruder", Password: "pw"}, &syncbuf.Buffer{}),
	}
	for name, is := range intruders {
		if _, err := is.Lock(ctxFor(t, 10*time.Second), lockPath, LockOptions{}); !errors.Is(err, ErrNotAuthorized) {
			t.Errorf("%s Session's Lock: %v, want ErrNotAuthorized", name, err)
		}
	}
	if c := zktest.Children(t, anon, lockPath); len(c) != 1 {
		t.Errorf("queue after the other Sessions tried: %v, want the holder's node only", c)
	}

	if err := h.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "s3cret-acl") {
		t.Errorf("the password appears in the Session's logs:\n%s", logs.String())
	}
}

// TestAuthSurvivesReconnectAndExpiry cuts the Session's connection, then
// lets its session expire: each time the Session may still create nodes
// under parents only its identity may write, so the library sent the
// credentials again on the new connection and on the new session.
func TestAuthSurvivesReconnectAndExpiry(t *testing.T) {
	zkc := startZK(t)
	p := proxied(t, zkc.Servers()[0])
	owner := Digest{User: "zklock", Password: "s3cret-reconnect"}
	const timeout = 3 * time.Second
	var logs syncbuf.Buffer
	s := authSession(t, p.Addr(), timeout, owner, &logs)
	anon := zktest.Client(t, zkc.ConnectString())

	lockAndRelease := func(lockPath string) {
		t.Helper()
		h, err := s.Lock(ctxFor(t, time.Minute), lockPath, LockOptions{})
		if err != nil {
			t.Fatalf("Lock(%s): %v", lockPath, err)
		}
		wantErr(t, "anonymous delete of "+h.Path(), anon.Delete(h.Path(), -1), zk.ErrNoAuth)
		if err := h.Release(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatalf("Release(%s): %v", lockPath, err)
		}
	}
	lockAndRelease("/zklock/auth/first")
	// A persistent node with the same ACL keeps /zklock/auth from being
	// removed as an empty container: creating a lock under it needs the
	// identity's CREATE right, on every connection.
	same := authedClient(t, zkc.ConnectString(), owner)
	if _, err := same.Create("/zklock/auth/keep", nil, 0, owner.ACL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { same.Delete("/zklock/auth/keep", -1) })
	if _, err := anon.Create("/zklock/auth/probe", nil, 0, zk.WorldACL(zk.PermAll)); !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("anonymous create under /zklock/auth: %v, want ErrNoAuth (the test proves nothing otherwise)", err)
	}

	// A new connection to the same session.
	e1 := waitEpoch(t, s, 0)
	handshakes := func() int { return strings.Count(logs.String(), "zookeeper client: authenticated: id=") }
	before := handshakes()
	p.Cut()
	zktest.Eventually(t, 20*time.Second, "reconnected", func() bool {
		st, _ := s.State()
		return handshakes() > before && st.Connected
	})
	if st, _ := s.State(); st.Epoch != e1 {
		t.Fatalf("epoch changed across a short cut: %d, want %d", st.Epoch.ID(), e1.ID())
	}
	lockAndRelease("/zklock/auth/after-cut")

	// A new session after the old one expired. The node of a hold taken
	// before the cut tells when ZooKeeper expired the session.
	held, err := s.Lock(ctxFor(t, time.Minute), "/zklock/auth/held", LockOptions{})
	if err != nil {
		t.Fatalf("Lock(/zklock/auth/held): %v", err)
	}
	p.SetMode(tcpproxy.Stall)
	<-e1.Done()
	zktest.Eventually(t, 4*timeout, "ZooKeeper expires the session and deletes its node", func() bool {
		ok, _, err := anon.Exists(held.Path())
		return err == nil && !ok
	})
	p.SetMode(tcpproxy.Pass)
	p.Cut()
	e2 := waitEpoch(t, s, e1.ID())
	if e2.SessionID() == e1.SessionID() {
		t.Fatalf("same session 0x%x after expiry", e2.SessionID())
	}
	lockAndRelease("/zklock/auth/after-expiry")

	if strings.Contains(logs.String(), "s3cret-reconnect") {
		t.Errorf("the password appears in the Session's logs:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "zookeeper auth added") {
		t.Errorf("the logs do not say auth was added:\n%s", logs.String())
	}
}

// TestNewClientAfterDataLoss: the server is replaced by one with no data,
// which refuses the handshakes of a client that saw later transactions.
// The Session starts over with a new client, authenticated like the old
// one, once its epoch ended: the holder is lost, a new Lock is granted on
// a node with the identity's ACL, and the Observer is told of the new
// client and of the tokens going back.
func TestNewClientAfterDataLoss(t *testing.T) {
	// The first new client cannot be started (the client library could
	// not resolve the servers' names, say): the old one stays in use, and
	// the Session tries again.
	var connects atomic.Int32
	connect := connectZK
	connectZK = func(servers []string, timeout time.Duration, events zk.EventCallback, log zk.Logger) (*zk.Conn, error) {
		if connects.Add(1) == 2 {
			return nil, errors.New("lookup zookeeper: no such host")
		}
		return connect(servers, timeout, events, log)
	}
	t.Cleanup(func() { connectZK = connect })
	zkc := startZK(t)
	owner := Digest{User: "zklock", Password: "s3cret-fresh"}
	const timeout = 3 * time.Second
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rec := &recorder{}
	s, err := Connect(Config{Servers: zkc.Servers(), SessionTimeout: timeout, Auth: &owner, Logger: log, Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	e1 := waitEpoch(t, s, 0)
	var high int64
	for i := range 10 { // transactions the fresh server will not have
		h, err := s.Lock(ctxFor(t, time.Minute), fmt.Sprintf("/zklock/fresh/%d", i), LockOptions{})
		if err != nil {
			t.Fatal(err)
		}
		high = h.Token()
		if i < 9 {
			h.Release(ctxFor(t, 10*time.Second))
		}
	}

	srv := zkc.Server(0)
	srv.Kill()
	if err := srv.WipeData(); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	<-e1.Done()
	waitEpoch(t, s, e1.ID())
	h, err := s.Lock(ctxFor(t, time.Minute), "/zklock/fresh/after", LockOptions{})
	if err != nil {
		t.Fatalf("Lock after the new client: %v", err)
	}
	if h.Token() >= high {
		t.Fatalf("token %d after the wipe, not below %d: the test shows nothing", h.Token(), high)
	}
	anon := zktest.Client(t, zkc.ConnectString())
	wantErr(t, "anonymous delete of "+h.Path(), anon.Delete(h.Path(), -1), zk.ErrNoAuth)
	if err := h.Release(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	newClients, fell := rec.newClients, rec.tokensFell
	rec.mu.Unlock()
	if newClients != 1 || fell != 1 {
		t.Errorf("Observer told of %d new clients and %d token regressions, want 1 and 1", newClients, fell)
	}
	if n := connects.Load(); n != 3 {
		t.Errorf("%d clients started, want 3: the first, one that failed, and the one in use", n)
	}
	if !strings.Contains(logs.String(), "a new client cannot be started: retrying") {
		t.Error("the failed start of a new client is not logged")
	}
	if strings.Contains(logs.String(), "s3cret-fresh") {
		t.Errorf("the password appears in the Session's logs")
	}
}
