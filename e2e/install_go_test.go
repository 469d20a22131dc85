package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/zktest"
)

// installGoApp is the throwaway app of TestGoClientInstalls: it takes the
// lock "install/go" from the zklockd at $ZKLOCK_ADDR and releases it.
const installGoApp = `package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/zklock/zklock/clients/go/zklock"
)

func main() {
	conn, err := zklock.Dial(os.Getenv("ZKLOCK_ADDR"))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	c := zklock.New(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease, err := c.Lock(ctx, "install/go", zklock.Wait(20*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("held install/go with token", lease.Token())
	if err := lease.Release(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("released")
}
`

// TestGoClientInstalls installs the Go client into an app outside the
// repository as the README's "From Go" says (go get, with the modules
// replaced by this checkout's directories, as before the client is
// published), checks that the app's module graph holds nothing but the
// client's two modules and what gRPC and protobuf bring themselves (no
// Prometheus, no ZooKeeper client, no middleware), and has the app take
// and release a lock from a zklockd.
func TestGoClientInstalls(t *testing.T) {
	t.Parallel()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// goCmd runs go in dir, outside the repository's go.work: the module
	// graph of the app alone.
	goCmd := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	modules := func(dir string) map[string]bool {
		t.Helper()
		set := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(goCmd(dir, "list", "-m", "all")), "\n")[1:] {
			set[strings.Fields(l)[0]] = true
		}
		return set
	}

	app := t.TempDir()
	if err := os.WriteFile(filepath.Join(app, "main.go"), []byte(installGoApp), 0o644); err != nil {
		t.Fatal(err)
	}
	goCmd(app, "mod", "init", "example.com/lockapp")
	goCmd(app, "mod", "edit",
		"-replace", "github.com/zklock/zklock/clients/go="+filepath.Join(repo, "clients/go"),
		"-replace", "github.com/zklock/zklock/api="+filepath.Join(repo, "api"))
	goCmd(app, "get", "github.com/zklock/zklock/clients/go@v0.1.0")
	goCmd(app, "mod", "tidy")

	// What an app that uses gRPC and protobuf, and nothing else, has in its
	// module graph, at the versions the client requires.
	ref := t.TempDir()
	if err := os.WriteFile(filepath.Join(ref, "main.go"), []byte("package main\n\nimport (\n\t_ \"google.golang.org/grpc\"\n\t_ \"google.golang.org/protobuf/proto\"\n)\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	goCmd(ref, "mod", "init", "example.com/grpcapp")
	clientMods := goCmd(filepath.Join(repo, "clients/go"), "list", "-m", "google.golang.org/grpc", "google.golang.org/protobuf")
	for _, l := range strings.Split(strings.TrimSpace(clientMods), "\n") {
		f := strings.Fields(l)
		goCmd(ref, "get", f[0]+"@"+f[1])
	}
	goCmd(ref, "mod", "tidy")

	got, grpcOnly := modules(app), modules(ref)
	for _, m := range []string{"github.com/zklock/zklock/clients/go", "github.com/zklock/zklock/api", "google.golang.org/grpc", "google.golang.org/protobuf"} {
		if !got[m] {
			t.Errorf("go list -m all of the app lacks %s", m)
		}
	}
	for m := range got {
		if !grpcOnly[m] && !strings.HasPrefix(m, "github.com/zklock/zklock/") {
			t.Errorf("go list -m all of the app names %s, which an app of gRPC and protobuf alone does not have", m)
		}
	}
	for _, m := range []string{"github.com/prometheus/client_golang", "github.com/go-zookeeper/zk", "github.com/grpc-ecosystem/go-grpc-middleware/v2", "go.uber.org/goleak", "github.com/zklock/zklock"} {
		if got[m] {
			t.Errorf("go list -m all of the app names %s, which only the daemon needs", m)
		}
	}
	goCmd(app, "build", "-o", "lockapp", ".")

	d := startDaemon(t, "a", zktest.StartStandalone(t).ConnectString(), daemonOpts{})
	run := exec.CommandContext(ctx, filepath.Join(app, "lockapp"))
	run.Env = append(os.Environ(), "ZKLOCK_ADDR="+d.listen)
	out, err := run.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "held install/go with token") || !strings.Contains(string(out), "released") {
		t.Fatalf("the app: %v\n%s", err, out)
	}
}
