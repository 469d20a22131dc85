package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("ZKLOCK_ZK", "10.0.0.1:2181,10.0.0.2:2181")
	t.Setenv("ZKLOCK_SESSION_TIMEOUT", "4s")
	t.Setenv("ZKLOCK_ROOT", "/from-env")
	o, err := parseFlags([]string{"--root", "/from-flag"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.zk != "10.0.0.1:2181,10.0.0.2:2181" || o.sessionTimeout != 4*time.Second {
		t.Errorf("zk %q, session timeout %v: environment not applied", o.zk, o.sessionTimeout)
	}
	if o.root != "/from-flag" {
		t.Errorf("root %q: a flag on the command line must win over the environment", o.root)
	}
}

func TestBadConfigurationIsRefused(t *testing.T) {
	tests := map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"bad env duration": {env: map[string]string{"ZKLOCK_MAX_TTL": "soon"}, want: "ZKLOCK_MAX_TTL"},
		"bad layout":       {args: []string{"--node-layout", "etcd"}, want: "--node-layout"},
		"bad root":         {args: []string{"--root", "/"}, want: "--root"},
		"bad log format":   {args: []string{"--log-format", "xml"}, want: "--log-format"},
		"stray argument":   {args: []string{"extra"}, want: "unexpected arguments"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := run(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run(%q) = %v, want an error naming %s", tc.args, err, tc.want)
			}
		})
	}
}
