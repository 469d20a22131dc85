package sidecar

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNameBytes is the longest lock name accepted.
const maxNameBytes = 512

// A nameRule is one rule that lock names, and the segments of the root,
// follow. A name that breaks one is refused with INVALID_ARGUMENT and a
// message naming the rule.
type nameRule int

// ZooKeeper's rules: a name that breaks one maps to a path that ZooKeeper
// refuses, either the server (PathUtils.validatePath, which checks the
// path's UTF-16 chars, so a code point above U+FFFF is a surrogate pair it
// refuses) or go-zookeeper before sending (validatePath). The sidecar
// checks them itself so that the caller learns the rule, not ZooKeeper's
// bare "invalid arguments".
const (
	ruleNotEmpty        nameRule = iota // "<root>/" ends with /
	ruleNoLeadingSlash                  // "<root>//x" has an empty segment
	ruleNoTrailingSlash                 // "<root>/x/" ends with /
	ruleNoEmptySegment                  // no //
	ruleNoDotSegment                    // no relative path: no . or .. segment
	ruleNoControl                       // U+0000 to U+001F, U+007F to U+009F
	ruleNoRefusedChar                   // U+D800 to U+F8FF, U+FFF0 to U+FFFF, above U+FFFF

	// zklock's own rules, stricter than ZooKeeper's: ZooKeeper would take a
	// name that breaks only these. Tests tell them apart by own.
	ruleMaxLength   // at most maxNameBytes bytes
	ruleValidUTF8   // valid UTF-8, as a protobuf string must be
	ruleNoTenDigits // no segment ends in ten digits: a lock counts any child named so as a contender
)

// own reports whether r is one of zklock's own rules, not ZooKeeper's.
func (r nameRule) own() bool { return r >= ruleMaxLength }

// nameError is a lock name, or a segment of the root, that breaks rule.
type nameError struct {
	rule nameRule
	msg  string
}

func (e *nameError) Error() string { return e.msg }

func breaks(rule nameRule, format string, args ...any) error {
	return &nameError{rule: rule, msg: fmt.Sprintf(format, args...)}
}

// checkLockName returns an error naming the rule a lock name breaks, or nil.
// A valid name maps to <root>/<name> and never outside the root. The error
// wraps a *nameError.
func checkLockName(name string) error {
	switch {
	case name == "":
		return breaks(ruleNotEmpty, "lock name is empty")
	case len(name) > maxNameBytes:
		return breaks(ruleMaxLength, "lock name is %d bytes, more than the %d allowed", len(name), maxNameBytes)
	case !utf8.ValidString(name):
		return breaks(ruleValidUTF8, "lock name is not valid UTF-8")
	case strings.HasPrefix(name, "/"):
		return breaks(ruleNoLeadingSlash, "lock name %q starts with /", name)
	case strings.HasSuffix(name, "/"):
		return breaks(ruleNoTrailingSlash, "lock name %q ends with /", name)
	}
	for _, seg := range strings.Split(name, "/") {
		if err := checkSegment(seg); err != nil {
			return fmt.Errorf("lock name %q: %w", name, err)
		}
	}
	return nil
}

// checkSegment checks one segment of a valid UTF-8 lock name or root path.
func checkSegment(seg string) error {
	switch seg {
	case "":
		return breaks(ruleNoEmptySegment, "has an empty segment (//)")
	case ".", "..":
		return breaks(ruleNoDotSegment, "has a %q segment", seg)
	}
	for _, r := range seg {
		if unicode.IsControl(r) {
			return breaks(ruleNoControl, "has a control character %U", r)
		}
		if where := refusedByZooKeeper(r); where != "" {
			return breaks(ruleNoRefusedChar, "has the character %U, %s, which ZooKeeper refuses in a path", r, where)
		}
	}
	if endsInTenDigits(seg) {
		return breaks(ruleNoTenDigits, "has a segment %q ending in ten digits, which are reserved for queue nodes", seg)
	}
	return nil
}

// refusedByZooKeeper returns where r lies if ZooKeeper refuses it in a path,
// else "" (control characters are checked apart). ZooKeeper checks UTF-16
// chars, so every code point above U+FFFF, a surrogate pair, is refused.
func refusedByZooKeeper(r rune) string {
	switch {
	case r >= 0xd800 && r <= 0xf8ff:
		return "from the range U+D800 to U+F8FF"
	case r >= 0xfff0 && r <= 0xffff:
		return "from the range U+FFF0 to U+FFFF"
	case r > 0xffff:
		return "above U+FFFF"
	}
	return ""
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
