package sidecar

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNameBytes is the longest lock name accepted.
const maxNameBytes = 512

// checkLockName returns an error naming the rule a lock name breaks, or nil.
// A valid name maps to <root>/<name> and never outside the root.
func checkLockName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("lock name is empty")
	case len(name) > maxNameBytes:
		return fmt.Errorf("lock name is %d bytes, more than the %d allowed", len(name), maxNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("lock name is not valid UTF-8")
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("lock name %q starts with /", name)
	case strings.HasSuffix(name, "/"):
		return fmt.Errorf("lock name %q ends with /", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if err := checkSegment(seg); err != nil {
			return fmt.Errorf("lock name %q: %w", name, err)
		}
	}
	return nil
}

// checkSegment checks one segment of a lock name or root path.
func checkSegment(seg string) error {
	switch seg {
	case "":
		return fmt.Errorf("has an empty segment (//)")
	case ".", "..":
		return fmt.Errorf("has a %q segment", seg)
	}
	for _, r := range seg {
		if unicode.IsControl(r) {
			return fmt.Errorf("has a control character %U", r)
		}
		if refusedByZooKeeper(r) {
			return fmt.Errorf("has the character %U, which ZooKeeper refuses in a path", r)
		}
	}
	if endsInTenDigits(seg) {
		return fmt.Errorf("has a segment %q ending in ten digits, which are reserved for queue nodes", seg)
	}
	return nil
}

// refusedByZooKeeper reports whether ZooKeeper's path validation refuses r
// (control characters are checked apart).
func refusedByZooKeeper(r rune) bool {
	return (r >= 0xd800 && r <= 0xf8ff) || (r >= 0xfff0 && r <= 0xffff)
}

func endsInTenDigits(s string) bool {
	if len(s) < 10 {
		return false
	}
	for _, c := range s[len(s)-10:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CheckRoot returns an error if root cannot hold zklock's locks: it must be
// an absolute ZooKeeper path other than "/", outside /zookeeper, with
// segments that follow the lock name rules.
func CheckRoot(root string) error {
	if !strings.HasPrefix(root, "/") || root == "/" || strings.HasSuffix(root, "/") {
		return fmt.Errorf("root %q must be an absolute path such as /zklock, not / and without a trailing /", root)
	}
	if root == "/zookeeper" || strings.HasPrefix(root, "/zookeeper/") {
		return fmt.Errorf("root %q is inside /zookeeper, which ZooKeeper reserves", root)
	}
	if !utf8.ValidString(root) {
		return fmt.Errorf("root is not valid UTF-8")
	}
	for _, seg := range strings.Split(root[1:], "/") {
		if err := checkSegment(seg); err != nil {
			return fmt.Errorf("root %q: %w", root, err)
		}
	}
	return nil
}

// checkOwner returns an error if an owner label is unusable.
func checkOwner(owner string) error {
	switch {
	case len(owner) > 256:
		return fmt.Errorf("owner is %d bytes, more than the 256 allowed", len(owner))
	case !utf8.ValidString(owner):
		return fmt.Errorf("owner is not valid UTF-8")
	}
	for _, r := range owner {
		if unicode.IsControl(r) {
			return fmt.Errorf("owner has a control character %U", r)
		}
	}
	return nil
}
