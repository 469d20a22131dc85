package sidecar

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-zookeeper/zk"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// nameCases are lock names at the edges of ZooKeeper's rules and zklock's,
// each with the message part its refusal carries ("" if zklock takes it).
// FuzzLockNameAgainstZooKeeper starts from them; TestLockNamesEndToEnd
// acquires each through a real sidecar.
var nameCases = []struct {
	name    string
	refused string
}{
	{"orders/42", ""},
	{"zamówienia/ü", ""},
	{"日本語/ロック", ""},
	{"e\u0301/\u00a0/\u200b/\ufeff", ""}, // combining accent, no-break space, zero-width space, BOM
	{"a\u2028b", ""},                     // line separator: not a control character
	{"\u2029\u0600", ""},
	{"\ud7ff", ""},          // just below the surrogates
	{"\uf900", ""},          // just above the private use area
	{"\ufdd0\uffef", ""},    // a noncharacter; just below the specials
	{"%", ""},               // no escaping anywhere
	{"100%25/a%2Fb", ""},    // not decoded
	{" ", ""},               // spaces are characters like any other
	{" a b /c ", ""},        // and are kept
	{"...", ""},             // only . and .. are relative
	{"a/.../b", ""},         //
	{".a/..b/a./b..", ""},   //
	{"zookeeper/quota", ""}, // reserved only at ZooKeeper's top
	{"job-123456789", ""},   // nine digits
	{"0000000001x", ""},     // ten digits, not at the end
	{"_c_0f1e-lock-", ""},   // a contender's prefix, without its digits
	{strings.Repeat("a", 512), ""},
	{strings.Repeat("é", 256), ""},             // 512 bytes
	{strings.Repeat("a/", 255) + "aa", ""},     // 512 bytes, 256 segments
	{strings.Repeat("\u0800", 170) + "ab", ""}, // 512 bytes of three-byte characters
	{"orders/😀", "the character U+1F600, above U+FFFF, which ZooKeeper refuses in a path"},
	{"👍🏽", "the character U+1F44D, above U+FFFF"},
	{"\U00010000", "the character U+10000, above U+FFFF"},
	{"a/\U0010ffff", "the character U+10FFFF, above U+FFFF"},
	{"\uffff", "the character U+FFFF, from the range U+FFF0 to U+FFFF"}, // go-zookeeper passes it; the server refuses it
	{"\ufffe", "the character U+FFFE, from the range U+FFF0 to U+FFFF"},
	{"x\ufffd", "the character U+FFFD, from the range U+FFF0 to U+FFFF"},
	{"\ufff0", "the character U+FFF0, from the range U+FFF0 to U+FFFF"},
	{"\uf8ff", "the character U+F8FF, from the range U+D800 to U+F8FF"},
	{"a/\ue000/b", "the character U+E000, from the range U+D800 to U+F8FF"},
	{".", `has a "." segment`},
	{"..", `has a ".." segment`},
	{"a/./b", `has a "." segment`},
	{"a/../b", `has a ".." segment`},
	{"a/..", `has a ".." segment`},
	{"a\x00b", "control character U+0000"},
	{"a\tb", "control character U+0009"},
	{"\x1f", "control character U+001F"},
	{"a\x7f", "control character U+007F"},
	{"a\u0085b", "control character U+0085"}, // next line (C1)
	{"\u009f", "control character U+009F"},
	{"", "lock name is empty"},
	{"/a", "starts with /"},
	{"a/", "ends with /"},
	{"a//b", "empty segment (//)"},
	{"a\xffb", "lock name is not valid UTF-8"},
	{"\xed\xa0\x80", "lock name is not valid UTF-8"}, // a surrogate, encoded
	{strings.Repeat("a", 513), "lock name is 513 bytes, more than the 512 allowed"},
	{strings.Repeat("😀", 129), "lock name is 516 bytes"},
	{"0000000001", "ending in ten digits, which are reserved for queue nodes"},
	{"x0000000001/a", "ending in ten digits"},
	{"a/_c_0f1e-lock-0000000007", "ending in ten digits"},
	{"a/12345678901", "ending in ten digits"},
}

// FuzzLockNameAgainstZooKeeper holds the sidecar's name check against a
// real ZooKeeper, as the recipe would reach it: through go-zookeeper, which
// refuses some paths before sending, to the server, which refuses others.
// It fails if the sidecar accepts a name ZooKeeper refuses, or refuses one
// ZooKeeper takes by a rule that is not one of zklock's own. It also holds
// FuzzCheckLockName's port of ZooKeeper's check against the real thing.
//
// Every process that runs the target (under go test -fuzz, the coordinator
// and each worker) starts its own standalone server in the setup; it is
// killed when the target ends.
func FuzzLockNameAgainstZooKeeper(f *testing.F) {
	for _, c := range nameCases {
		// Each segment costs a create and a delete, which the mutator
		// would copy into many inputs.
		if strings.Count(c.name, "/") < 32 {
			f.Add(c.name)
		}
	}
	// Container reaping off: the probe deletes its own nodes, and the
	// reaper, acting on an earlier scan, could delete a node that the next
	// probe has just made again, before its child is made.
	zkc := zktest.StartStandalone(f, zktest.WithSystemProperty("znode.container.checkIntervalMs", "3600000"))
	conn := zktest.Client(f, zkc.ConnectString())
	const root = "/zklock"
	if _, err := conn.Create(root, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		f.Fatalf("create %s: %v", root, err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		p := root + "/" + name
		port := zooKeeperRefusesPath(p)
		zkRefusal := port
		// Longer names break zklock's own length rule whatever ZooKeeper
		// says; their segments would each cost a create.
		if len(name) <= maxNameBytes {
			err := zooKeeperTakes(t, conn, root, name)
			switch {
			case err == nil && port != "":
				t.Fatalf("ZooKeeper takes %q, which the port of its check refuses (%s)", p, port)
			case err != nil && port == "":
				t.Fatalf("ZooKeeper refuses %q (%v), which the port of its check takes", p, err)
			case err != nil:
				zkRefusal = err.Error()
			}
		}
		checkNameVerdict(t, name, zkRefusal)
	})
}

// zooKeeperTakes creates under root the nodes an Acquire of name creates:
// every missing ancestor of the lock node, and the lock node, as CONTAINER
// nodes (as zkrecipes' ensurePath does), then a contender in it, named and
// made as the recipe names and makes an exclusive one (EPHEMERAL_SEQUENTIAL,
// _c_<uuid>-lock-<seq>). It returns the first refusal, by go-zookeeper
// (zk.ErrInvalidPath) or by the server (zk.ErrBadArguments), or nil if
// every node was made. Either way it deletes what it made, and fails the
// test on any other error or if root is not left empty.
func zooKeeperTakes(t *testing.T, c *zk.Conn, root, name string) error {
	t.Helper()
	p := root + "/" + name
	var made []string
	defer func() {
		// One request deletes them all, children first.
		var ops []any
		for i := len(made) - 1; i >= 0; i-- {
			ops = append(ops, &zk.DeleteRequest{Path: made[i], Version: -1})
		}
		if len(ops) > 0 {
			if _, err := c.Multi(ops...); err != nil {
				t.Fatalf("delete %q: %v", made, err)
			}
		}
		if left := zktest.Children(t, c, root); len(left) > 0 {
			t.Fatalf("after %q, %s still holds %q", name, root, left)
		}
	}()
	create := func(p string, flags int32) error {
		var made1 string
		var err error
		if flags == zk.FlagContainer {
			made1, err = c.CreateContainer(p, nil, flags, zk.WorldACL(zk.PermAll))
		} else {
			made1, err = c.Create(p, nil, flags, zk.WorldACL(zk.PermAll))
		}
		switch {
		case err == nil:
			made = append(made, made1)
			return nil
		case errors.Is(err, zk.ErrInvalidPath), errors.Is(err, zk.ErrBadArguments):
			return err
		}
		t.Fatalf("create %q: %v", p, err)
		return nil
	}
	// The parent of each create exists, so the server checks the path: a
	// create under a missing parent answers NoNode before the path check.
	for i := len(root) + 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		if err := create(p[:i], zk.FlagContainer); err != nil {
			return err
		}
	}
	prefix := p + "/_c_" + uuid.NewString() + "-lock-"
	if err := create(prefix, zk.FlagEphemeralSequential); err != nil {
		return err
	}
	if got := made[len(made)-1]; !strings.HasPrefix(got, prefix) || len(got) != len(prefix)+10 {
		t.Fatalf("the contender for %q is %q, want %q and ten digits", name, got, prefix)
	}
	return nil
}

// TestLockNamesEndToEnd acquires each of nameCases, trying once, through a
// real sidecar: a name zklock takes is granted, with its queue at
// /zklock/<name>; any other is refused with INVALID_ARGUMENT and
// INVALID_LOCK_NAME, naming the rule, never with a code that invites a retry.
func TestLockNamesEndToEnd(t *testing.T) {
	zkc := startZK(t)
	in := startInstance(t, zkc.ConnectString(), instanceOpts{})
	in.waitUsable(t)
	ins := zktest.Client(t, zkc.ConnectString())
	for _, c := range nameCases {
		label := strconv.Quote(c.name)
		if len(label) > 40 {
			label = label[:40] + "..."
		}
		t.Run(label, func(t *testing.T) {
			req := &zklockv1.AcquireRequest{Lock: c.name, Wait: dur(0)}
			if c.refused == "" {
				e := acquire(t, in.client, req)
				e.granted(wait)
				var contenders []string
				for _, ch := range zktest.Children(t, ins, "/zklock/"+c.name) {
					if strings.HasPrefix(ch, "_c_") {
						contenders = append(contenders, ch)
					}
				}
				if len(contenders) != 1 {
					t.Errorf("/zklock/%s holds the contenders %q, want the holder's node alone", c.name, contenders)
				}
				e.cancel()
				return
			}
			var err error
			if utf8.ValidString(c.name) {
				err = acquire(t, in.client, req).end(wait)
			} else {
				// grpc-go's codec would refuse to send it.
				err = rawCall(t, in, zklockv1.LockService_Acquire_FullMethodName, withRawString(t, &zklockv1.AcquireRequest{Wait: dur(0)}, "lock", c.name))
			}
			wantCode(t, err, codes.InvalidArgument, "INVALID_LOCK_NAME")
			if msg := status.Convert(err).Message(); !strings.Contains(msg, c.refused) {
				t.Errorf("message %q does not say %q", msg, c.refused)
			}
		})
	}
}
