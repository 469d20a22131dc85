package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// zklockdPath is the zklockd binary built once for the whole run.
var zklockdPath string

func TestMain(m *testing.M) {
	if cfg := os.Getenv(chaosClientEnv); cfg != "" {
		os.Exit(chaosClientMain(cfg))
	}
	goleak.VerifyTestMain(buildFirst{m})
}

// buildFirst builds zklockd before the tests run and removes it after, so
// that goleak.VerifyTestMain still sees the exit code of the tests.
type buildFirst struct{ m *testing.M }

func (b buildFirst) Run() int {
	flag.Parse() // for testing.Verbose
	dir, err := os.MkdirTemp("", "zklock-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	zklockdPath = filepath.Join(dir, "zklockd")
	if err := buildZklockd(zklockdPath); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building zklockd:", err)
		return 1
	}
	return b.m.Run()
}

// buildZklockd builds zklockd into out, with the race detector if this test
// binary has it, passing flags (such as -tags) to go build.
func buildZklockd(out string, flags ...string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go tool is needed to build zklockd: %w", err)
	}
	args := append([]string{"build", "-o", out}, flags...)
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/zklock/zklock/cmd/zklockd")
	cmd := exec.Command(goTool, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built zklockd (race=%v) in %v\n", raceEnabled, time.Since(start).Round(time.Millisecond))
	}
	return nil
}
