package zkrecipes

import "testing"

// TestNodePath: a node's name and path, once known, whether from the path
// ZooKeeper created (also one that does not start with the lock node's
// path as the Session spells it) or from a child's name; and before.
func TestNodePath(t *testing.T) {
	const parent, name = "/zklock/a/b", "_c_0b1e2c3d-0000-4000-8000-000000000000-lock-0000000007"
	for _, tc := range []struct {
		how  string
		set  func(n *node)
		want string
	}{
		{"not known", func(n *node) {}, ""},
		{"created", func(n *node) { n.setCreated(parent + "/" + name) }, name},
		{"created elsewhere", func(n *node) { n.setCreated("/chroot" + parent + "/" + name) }, name},
		{"created, a shorter path", func(n *node) { n.setCreated("/x/" + name) }, name},
		{"found", func(n *node) { n.setName(name) }, name},
	} {
		n := &node{parent: parent}
		tc.set(n)
		if got := n.getName(); got != tc.want {
			t.Errorf("%s: name %q, want %q", tc.how, got, tc.want)
		}
		if got, want := n.path(), parent+"/"+tc.want; got != want {
			t.Errorf("%s: path %q, want %q", tc.how, got, want)
		}
	}
}
