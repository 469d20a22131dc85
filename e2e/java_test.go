package e2e

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zklock/zklock/internal/zktest"
)

// mavenTimeout bounds one Maven build of the Java client (a cold one
// resolves every plugin and jar from Debian's repository).
const mavenTimeout = 5 * time.Minute

// TestJavaClient builds the Java client (clients/java) with Maven, offline
// from Debian's repository as the README says, and runs its tests: the unit
// tests, then (mvn verify -Dzklock.addr=...) the ones against a running
// zklockd, with two more zklockds that the lease-loss tests stop and kill.
func TestJavaClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := copyJavaProject(dir); err != nil {
		t.Fatal(err)
	}
	zkc := zktest.StartStandalone(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	stopped := startDaemon(t, "stopped", zkc.ConnectString(), daemonOpts{})
	killed := startDaemon(t, "killed", zkc.ConnectString(), daemonOpts{})

	ctx, cancel := context.WithTimeout(context.Background(), mavenTimeout)
	defer cancel()
	repo, err := mavenCache()
	if err != nil {
		t.Fatal(err)
	}
	runMaven(t, ctx, dir, repo, "verify",
		"-Dzklock.addr="+d.listen,
		fmt.Sprintf("-Dzklock.stopDaemon=%s %d", stopped.listen, stopped.cmd.Process.Pid),
		fmt.Sprintf("-Dzklock.killDaemon=%s %d", killed.listen, killed.cmd.Process.Pid))
	// Surefire's report of each test class: all ran, none skipped.
	for _, class := range []string{"io.zklock.ZkLockClientTest", "io.zklock.ZkLockClientIT"} {
		b, err := os.ReadFile(filepath.Join(dir, "target", "surefire-reports", "TEST-"+class+".xml"))
		if err != nil {
			t.Errorf("mvn verify ran no %s: %v", class, err)
			continue
		}
		var suite struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Errors   int `xml:"errors,attr"`
			Skipped  int `xml:"skipped,attr"`
		}
		if err := xml.Unmarshal(b, &suite); err != nil {
			t.Errorf("%s's report: %v", class, err)
		} else if suite.Tests == 0 || suite.Failures+suite.Errors+suite.Skipped != 0 {
			t.Errorf("%s: %+v, want tests run, none failed or skipped", class, suite)
		}
	}
	if st := stopped.waitExit(exitTimeout); !st.Success() {
		t.Errorf("the zklockd the tests stopped exited with %v, want 0", st)
	}
	killed.waitExit(exitTimeout)
}

// javaBuild is the Java client and its test classes (the Curator
// contenders of the interop tests), built once for every test that runs
// them.
var javaBuild struct {
	once sync.Once
	cp   string // the class path to run them with
	err  error
}

// javaClassPath builds clients/java once with Maven (test-compile), in a
// copy under the directory of the zklockd built for this run (removed after
// the run), and returns the class path of its test scope: the client, the
// contenders in src/test, gRPC, Curator and ZooKeeper.
func javaClassPath(t *testing.T) string {
	t.Helper()
	javaBuild.once.Do(func() {
		javaBuild.cp, javaBuild.err = buildJavaTestClasses()
	})
	if javaBuild.err != nil {
		t.Fatalf("building the Java client: %v", javaBuild.err)
	}
	return javaBuild.cp
}

func buildJavaTestClasses() (string, error) {
	dir, err := os.MkdirTemp(filepath.Dir(zklockdPath), "java-")
	if err != nil {
		return "", err
	}
	if err := copyJavaProject(dir); err != nil {
		return "", err
	}
	repo, err := mavenCache()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), mavenTimeout)
	defer cancel()
	cpFile := filepath.Join(dir, "classpath.txt")
	if _, err := mavenRun(ctx, dir, repo, "test-compile", "dependency:build-classpath",
		"-Dmdep.includeScope=test", "-Dmdep.outputFile="+cpFile); err != nil {
		return "", err
	}
	deps, err := os.ReadFile(cpFile)
	if err != nil {
		return "", err
	}
	return strings.Join([]string{
		filepath.Join(dir, "target", "classes"),
		filepath.Join(dir, "target", "test-classes"),
		strings.TrimSpace(string(deps)),
	}, string(os.PathListSeparator)), nil
}

// copyJavaProject copies what Maven builds clients/java from (its pom,
// settings and sources) into dst, so that builds running at once, and
// their target directories, stay out of the checkout.
func copyJavaProject(dst string) error {
	src, err := filepath.Abs("../clients/java")
	if err != nil {
		return err
	}
	for _, name := range []string{"pom.xml", "settings.xml", "src", "gen"} {
		if err := copyTree(filepath.Join(src, name), filepath.Join(dst, name)); err != nil {
			return fmt.Errorf("copying clients/java: %w", err)
		}
	}
	return nil
}

// copyTree copies the file or directory src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
}

// mavenCache is the Maven local repository the tests share across runs (the
// jars and plugins copied from Debian's repository): os.UserCacheDir()/zklock-m2.
// Nothing of zklock's is installed into it.
func mavenCache() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for Maven's local repository: %w", err)
	}
	return filepath.Join(dir, "zklock-m2"), nil
}

// mavenRun runs mvn in dir, offline with clients/java's settings.xml
// (Debian's repository) and the local repository repo, in batch mode; args
// are the goals and properties. It returns mvn's output, which the error
// holds too if mvn is missing or fails.
func mavenRun(ctx context.Context, dir, repo string, args ...string) ([]byte, error) {
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return nil, fmt.Errorf("mvn is needed to build the Java client: install Debian's maven and the plugins .ci/run lists: %w", err)
	}
	settings, err := filepath.Abs("../clients/java/settings.xml")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, mvn, append([]string{
		"-o", "-B", "-ntp", "-s", settings, "-Dmaven.repo.local=" + repo,
	}, args...)...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s (in %s) failed after %v: %w\n%s", strings.Join(cmd.Args, " "), dir,
			time.Since(start).Round(time.Millisecond), err, out.Bytes())
	}
	return out.Bytes(), nil
}

// runMaven is mavenRun for a test: a failure fails it, with mvn's output.
func runMaven(t testing.TB, ctx context.Context, dir, repo string, args ...string) []byte {
	t.Helper()
	out, err := mavenRun(ctx, dir, repo, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
