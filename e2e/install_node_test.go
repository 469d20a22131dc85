package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/zktest"
)

// nodeApp is the throwaway app of TestNodeInstall: it takes a lock, checks
// that another client cannot, releases it, and prints its token and where
// the client found @grpc/grpc-js.
const nodeApp = `'use strict';
const { Client, NotGrantedError } = require('@zklock/client');

(async () => {
  const client = new Client(); // $ZKLOCK_ADDR
  const lease = await client.lock('node-app/demo', { owner: 'node-app', wait: 10000 });
  try {
    await client.lock('node-app/demo', { wait: 0 });
    throw new Error('a second lock of node-app/demo was granted');
  } catch (err) {
    if (!(err instanceof NotGrantedError)) throw err;
  }
  await lease.release();
  const again = await client.withLock('node-app/demo', (l) => l.token, { wait: 0 });
  client.close();
  const grpc = require.resolve('@grpc/grpc-js', { paths: [require.resolve('@zklock/client')] });
  console.log('token', typeof lease.token, String(lease.token), String(again));
  console.log('grpc-js', grpc);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
`

// TestNodeInstall installs the Node.js client into an app outside the
// repository as the README says (install-links=true in the app's .npmrc,
// then npm install of clients/node), and has the app take and release a
// lock from a zklockd. The package lands in the app as a copy, not a link
// into the checkout, with its dependencies from the registry (or npm's
// cache) and without its dev dependencies, and it still installs from the
// app's lock file alone (npm ci).
func TestNodeInstall(t *testing.T) {
	t.Parallel()
	node, npm := nodeTools(t)
	app := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(app, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package.json", `{"name": "zklock-node-app", "version": "1.0.0", "private": true}`+"\n")
	write(".npmrc", "install-links=true\n")
	write("app.js", nodeApp)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	runNpm(ctx, t, app, npm, "install", nodePackageDir(t))

	installed := filepath.Join(app, "node_modules", "@zklock", "client")
	if fi, err := os.Lstat(installed); err != nil || !fi.IsDir() {
		t.Fatalf("node_modules/@zklock/client is not a directory in the app (a link into the checkout?): %v, %v", fi, err)
	}
	for _, f := range []string{"index.js", "index.d.ts", "proto/zklock/v1/lock.proto"} {
		if _, err := os.Stat(filepath.Join(installed, f)); err != nil {
			t.Errorf("the installed package lacks %s: %v", f, err)
		}
	}
	for _, f := range []string{"test", "node_modules/typescript"} {
		if _, err := os.Stat(filepath.Join(installed, f)); err == nil {
			t.Errorf("the installed package has %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(app, "node_modules", "typescript")); err == nil {
		t.Errorf("the app got the client's dev dependency typescript")
	}

	zkc := zktest.StartStandalone(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	run := func() {
		t.Helper()
		cmd := exec.CommandContext(ctx, node, "app.js")
		cmd.Dir = app
		cmd.Env = append(os.Environ(), "ZKLOCK_ADDR="+d.listen)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("node app.js: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`(?m)^token bigint (\d+) (\d+)\ngrpc-js (.*)$`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("node app.js printed %q, want its tokens and where it found @grpc/grpc-js", out)
		}
		first, _ := strconv.ParseInt(m[1], 10, 64)
		second, _ := strconv.ParseInt(m[2], 10, 64)
		if first <= 0 || second <= first {
			t.Errorf("tokens %s then %s, want them positive and growing", m[1], m[2])
		}
		if !strings.HasPrefix(m[3], filepath.Join(app, "node_modules")+string(filepath.Separator)) {
			t.Errorf("the client found @grpc/grpc-js at %s, want it in the app's node_modules", m[3])
		}
	}
	run()

	// A fresh clone of the app installs from its package-lock.json.
	if err := os.RemoveAll(filepath.Join(app, "node_modules")); err != nil {
		t.Fatal(err)
	}
	runNpm(ctx, t, app, npm, "ci")
	run()
}
