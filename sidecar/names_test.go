package sidecar

import (
	"errors"
	"path"
	"regexp"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

func TestCheckLockName(t *testing.T) {
	tests := map[string]struct {
		name    string
		wantErr string // "" means valid
	}{
		"simple":              {"demo", ""},
		"nested":              {"orders/42", ""},
		"unicode":             {"zamówienia/ü", ""},
		"max length":          {strings.Repeat("a", 512), ""},
		"nine digits":         {"job-123456789", ""},
		"three dots":          {"a/...", ""},
		"dot prefix":          {".a/..b", ""},
		"below surrogates":    {"a\ud7ffb", ""},
		"below specials":      {"a\uffefb", ""},
		"line separator":      {"a\u2028b", ""},
		"percent and space":   {"100% done/a b", ""},
		"empty":               {"", "empty"},
		"too long":            {strings.Repeat("a", 513), "513 bytes"},
		"invalid utf8":        {"a\xffb", "UTF-8"},
		"leading slash":       {"/a", "starts with /"},
		"trailing slash":      {"a/", "ends with /"},
		"empty segment":       {"a//b", "empty segment"},
		"dot":                 {"a/./b", `"." segment`},
		"dotdot":              {"../etc", `".." segment`},
		"dotdot only":         {"..", `".." segment`},
		"nul":                 {"a\x00b", "control character U+0000"},
		"newline":             {"a\nb", "control character U+000A"},
		"del":                 {"a\x7fb", "control character U+007F"},
		"c1 control":          {"a\u0085b", "control character U+0085"},
		"private use":         {"a\ue000b", "the character U+E000, from the range U+D800 to U+F8FF, which ZooKeeper refuses in a path"},
		"private use end":     {"a\uf8ffb", "U+F8FF, from the range U+D800 to U+F8FF"},
		"specials":            {"a\ufff0b", "the character U+FFF0, from the range U+FFF0 to U+FFFF, which ZooKeeper refuses in a path"},
		"replacement char":    {"a\ufffdb", "U+FFFD, from the range U+FFF0 to U+FFFF"},
		"U+FFFF":              {"\uffff", "U+FFFF, from the range U+FFF0 to U+FFFF"},
		"emoji":               {"orders/😀", "the character U+1F600, above U+FFFF, which ZooKeeper refuses in a path"},
		"first supplementary": {"\U00010000", "U+10000, above U+FFFF"},
		"last code point":     {"a/b\U0010ffff", "U+10FFFF, above U+FFFF"},
		"ten digits":          {"a/x0000000001", "ten digits"},
		"ten digits parent":   {"x0000000001/a", "ten digits"},
		"only ten digits":     {"0000000001", "ten digits"},
		"digits in middle":    {"0000000001x", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkLockName(tc.name)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("checkLockName(%q) = %v, want nil", tc.name, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("checkLockName(%q) = %v, want an error containing %q", tc.name, err, tc.wantErr)
			case err != nil && !errors.As(err, new(*nameError)):
				t.Errorf("checkLockName(%q) = %v, not a *nameError", tc.name, err)
			}
		})
	}
}

func TestCheckRoot(t *testing.T) {
	for root, ok := range map[string]bool{
		"/zklock": true, "/apps/locks": true, "/a.../b\ud7ff": true,
		"": false, "/": false, "zklock": false, "/zklock/": false, "/zookeeper": false,
		"/zookeeper/x": false, "/a//b": false, "/a/../b": false, "/a/./b": false,
		"/locks/😀": false, "/\U00010000": false, "/a\uffffb": false, "/a\ue000": false,
		"/a\x00": false, "/a\xff": false, "/a/x0000000001": false,
	} {
		if err := CheckRoot(root); (err == nil) != ok {
			t.Errorf("CheckRoot(%q) = %v, want ok=%v", root, err, ok)
		}
	}
	err := CheckRoot("/locks/😀")
	if want := `root "/locks/😀": has the character U+1F600, above U+FFFF, which ZooKeeper refuses in a path`; err == nil || err.Error() != want {
		t.Errorf("CheckRoot = %v, want %s", err, want)
	}
}

// FuzzCheckLockName judges checkLockName by an oracle written apart from
// it: ZooKeeper's own path check (zooKeeperRefusesPath, a port of its Java
// code) for the path <root>/<name>, plus zklock's own stricter rules, each
// stated afresh (breaksOwnRule). FuzzLockNameAgainstZooKeeper holds both
// against a real ZooKeeper.
func FuzzCheckLockName(f *testing.F) {
	for _, s := range []string{"demo", "orders/42", "../etc", "a//b", "a\x00", "\ue000", "orders/😀", "\uffff", "a/.../b", "x0000000001/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		checkNameVerdict(t, name, zooKeeperRefusesPath("/zklock/"+name))
	})
}

// checkNameVerdict fails the test unless checkLockName's verdict on name
// agrees with zkRefusal, why ZooKeeper refuses the path /zklock/<name>
// ("" if it takes it): a name ZooKeeper refuses is refused, and one it
// takes is accepted, or refused by one of zklock's own rules that the name
// does break.
func checkNameVerdict(t *testing.T, name, zkRefusal string) {
	t.Helper()
	err := checkLockName(name)
	if err == nil {
		if zkRefusal != "" {
			t.Fatalf("checkLockName accepts %q, whose path ZooKeeper refuses (%s)", name, zkRefusal)
		}
		// The path stays inside the root, as it is.
		if p := "/zklock/" + name; path.Clean(p) != p || !strings.HasPrefix(p, "/zklock/") {
			t.Fatalf("checkLockName accepts %q, whose path %q is %q once cleaned", name, p, path.Clean(p))
		}
		return
	}
	var ne *nameError
	switch {
	case !errors.As(err, &ne):
		t.Fatalf("checkLockName(%q) = %v, not a *nameError", name, err)
	case ne.rule.own():
		if !breaksOwnRule(name, ne.rule) {
			t.Fatalf("checkLockName(%q) = %v, but the name keeps that rule", name, err)
		}
	case zkRefusal == "":
		t.Fatalf("checkLockName refuses %q (%v), which ZooKeeper takes, by a rule that is not one of zklock's own", name, err)
	}
	if !utf8.ValidString(err.Error()) {
		t.Fatalf("checkLockName(%q) = %q, not valid UTF-8", name, err)
	}
}

// nameOK is the fuzz targets' verdict on a lock name, reached without
// checkLockName.
func nameOK(name string) bool {
	if zooKeeperRefusesPath("/zklock/"+name) != "" {
		return false
	}
	for _, r := range []nameRule{ruleMaxLength, ruleValidUTF8, ruleNoTenDigits} {
		if breaksOwnRule(name, r) {
			return false
		}
	}
	return true
}

// tenDigitSegment matches a name with a segment that ends in ten digits.
var tenDigitSegment = regexp.MustCompile(`[0-9]{10}(/|$)`)

// breaksOwnRule reports whether name breaks zklock's own rule r, as the
// README states it.
func breaksOwnRule(name string, r nameRule) bool {
	switch r {
	case ruleMaxLength:
		return len(name) > 512
	case ruleValidUTF8:
		return !utf8.ValidString(name)
	case ruleNoTenDigits:
		return tenDigitSegment.MatchString(name)
	}
	return false
}

// zooKeeperRefusesPath returns why ZooKeeper refuses the path p, or "" if
// it takes it. It is a port of ZooKeeper 3.8's
// org.apache.zookeeper.common.PathUtils.validatePath, which the server runs
// on every path: it checks UTF-16 chars, so a code point above U+FFFF is a
// surrogate pair, in its refused range. The server decodes the UTF-8 bytes
// go-zookeeper sends; invalid bytes become U+FFFD, as in Go's []rune(p).
// go-zookeeper's own check before sending (validatePath in util.go) refuses
// only paths this refuses too.
func zooKeeperRefusesPath(p string) string {
	chars := utf16.Encode([]rune(p))
	switch {
	case len(chars) == 0:
		return "path is empty"
	case chars[0] != '/':
		return "path does not start with /"
	case len(chars) == 1:
		return ""
	case chars[len(chars)-1] == '/':
		return "path ends with /"
	}
	last := uint16('/')
	for i := 1; i < len(chars); last, i = chars[i], i+1 {
		c := chars[i]
		switch {
		case c == 0:
			return "null character"
		case c == '/' && last == '/':
			return "empty node name"
		case c == '.' && last == '.':
			if chars[i-2] == '/' && (i+1 == len(chars) || chars[i+1] == '/') {
				return "relative path"
			}
		case c == '.':
			if chars[i-1] == '/' && (i+1 == len(chars) || chars[i+1] == '/') {
				return "relative path"
			}
		case c > 0 && c <= 0x1f, c >= 0x7f && c <= 0x9f, c >= 0xd800 && c <= 0xf8ff, c >= 0xfff0:
			return "invalid character"
		}
	}
	return ""
}
