package sidecar

import (
	"strings"
	"testing"
)

func TestCheckLockName(t *testing.T) {
	tests := map[string]struct {
		name    string
		wantErr string // "" means valid
	}{
		"simple":           {"demo", ""},
		"nested":           {"orders/42", ""},
		"unicode":          {"zamówienia/ü", ""},
		"max length":       {strings.Repeat("a", 512), ""},
		"nine digits":      {"job-123456789", ""},
		"empty":            {"", "empty"},
		"too long":         {strings.Repeat("a", 513), "513 bytes"},
		"invalid utf8":     {"a\xffb", "UTF-8"},
		"leading slash":    {"/a", "starts with /"},
		"trailing slash":   {"a/", "ends with /"},
		"empty segment":    {"a//b", "empty segment"},
		"dot":              {"a/./b", `"." segment`},
		"dotdot":           {"../etc", `".." segment`},
		"dotdot only":      {"..", `".." segment`},
		"nul":              {"a\x00b", "control character"},
		"newline":          {"a\nb", "control character"},
		"del":              {"a\x7fb", "control character"},
		"c1 control":       {"a\u0085b", "control character"},
		"private use":      {"a\ue000b", "ZooKeeper refuses"},
		"specials":         {"a\ufff0b", "ZooKeeper refuses"},
		"ten digits":       {"a/x0000000001", "ten digits"},
		"only ten digits":  {"0000000001", "ten digits"},
		"digits in middle": {"0000000001x", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkLockName(tc.name)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("checkLockName(%q) = %v, want nil", tc.name, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("checkLockName(%q) = %v, want an error containing %q", tc.name, err, tc.wantErr)
			}
		})
	}
}

func TestCheckRoot(t *testing.T) {
	for root, ok := range map[string]bool{
		"/zklock": true, "/apps/locks": true,
		"": false, "/": false, "zklock": false, "/zklock/": false, "/zookeeper": false,
		"/zookeeper/x": false, "/a//b": false, "/a/../b": false,
	} {
		if err := CheckRoot(root); (err == nil) != ok {
			t.Errorf("CheckRoot(%q) = %v, want ok=%v", root, err, ok)
		}
	}
}

func FuzzCheckLockName(f *testing.F) {
	for _, s := range []string{"demo", "orders/42", "../etc", "a//b", "a\x00", "\ue000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if checkLockName(name) != nil {
			return
		}
		// A valid name never escapes the root and is a valid ZooKeeper path.
		p := "/zklock/" + name
		for _, seg := range strings.Split(p[1:], "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("valid name %q gives path %q with segment %q", name, p, seg)
			}
		}
	})
}
