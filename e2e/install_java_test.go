package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zklock/zklock/internal/zktest"
)

// installJavaPom is the throwaway app's pom: the client's coordinates, as
// the README gives them, and nothing else of zklock's. The plugins are
// pinned to the versions Debian packages.
const installJavaPom = `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId>
  <artifactId>locker</artifactId>
  <version>1.0</version>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencies>
    <dependency>
      <groupId>io.zklock</groupId>
      <artifactId>zklock-client</artifactId>
      <version>0.1.0</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin><artifactId>maven-resources-plugin</artifactId><version>3.3.0</version></plugin>
      <plugin><artifactId>maven-compiler-plugin</artifactId><version>3.10.1</version></plugin>
      <plugin><artifactId>maven-dependency-plugin</artifactId><version>3.5.0</version></plugin>
    </plugins>
  </build>
</project>
`

// installJavaApp takes and releases the lock it is given: exclusive, then
// shared by two at once, then through a channel of its own; it prints one
// line per step.
const installJavaApp = `package com.example;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.zklock.Lease;
import io.zklock.LockException;
import io.zklock.LockOptions;
import io.zklock.ZkLockClient;
import java.time.Duration;

public class Locker {
  public static void main(String[] args) throws Exception {
    String addr = args[0], name = args[1];
    try (ZkLockClient client = new ZkLockClient(addr);
        ZkLockClient other = new ZkLockClient(addr)) {
      long token;
      try (Lease lease = client.lock(name)) {
        token = lease.token();
        try {
          other.tryLock(name).close();
          throw new AssertionError("another took the lock while it was held");
        } catch (LockException.Held e) {
          System.out.println("held " + name);
        }
      }
      try (Lease again = other.lock(name, LockOptions.exclusive().waitAtMost(Duration.ZERO))) {
        if (again.token() <= token) {
          throw new AssertionError("token " + again.token() + " after " + token);
        }
        System.out.println("released " + name);
      }
      try (Lease r1 = client.lock(name, LockOptions.shared());
          Lease r2 = other.lock(name, LockOptions.shared().waitAtMost(Duration.ZERO))) {
        System.out.println("shared by 2");
      }
    }
    ManagedChannel channel = ManagedChannelBuilder.forTarget(addr).usePlaintext().build();
    try (ZkLockClient client = new ZkLockClient(channel);
        Lease lease = client.lock(name)) {
      System.out.println("held through my channel");
    } finally {
      channel.shutdown();
    }
  }
}
`

// TestJavaInstall installs the Java client the way the README says (mvn -o
// -s settings.xml install in clients/java, into a local repository of its
// own, as a new user's), then builds a throwaway Maven app outside the repo
// that depends on io.zklock:zklock-client:0.1.0, and runs it against a
// zklockd: it takes and releases a lock, shared and exclusive. The app's
// runtime class path holds the client, gRPC and protobuf, and no Curator or
// ZooKeeper jar.
func TestJavaInstall(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*mavenTimeout)
	defer cancel()
	repo := filepath.Join(t.TempDir(), "m2")

	client := t.TempDir()
	if err := copyJavaProject(client); err != nil {
		t.Fatal(err)
	}
	runMaven(t, ctx, client, repo, "install")

	app := t.TempDir()
	src := filepath.Join(app, "src", "main", "java", "com", "example")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, text := range map[string]string{
		filepath.Join(app, "pom.xml"):     installJavaPom,
		filepath.Join(src, "Locker.java"): installJavaApp,
	} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cpFile := filepath.Join(app, "classpath.txt")
	runMaven(t, ctx, app, repo, "compile", "dependency:build-classpath",
		"-Dmdep.includeScope=runtime", "-Dmdep.outputFile="+cpFile)
	deps, err := os.ReadFile(cpFile)
	if err != nil {
		t.Fatal(err)
	}
	jars := map[string]bool{}
	for _, p := range filepath.SplitList(strings.TrimSpace(string(deps))) {
		jar := filepath.Base(p)
		jars[jar] = true
		if strings.Contains(jar, "curator") || strings.Contains(jar, "zookeeper") {
			t.Errorf("the app's runtime class path holds %s", p)
		}
	}
	for _, want := range []string{"zklock-client-0.1.0.jar", "grpc-netty-1.41.3.jar", "protobuf-java-3.21.12.jar"} {
		if !jars[want] {
			t.Errorf("the app's runtime class path lacks %s: %s", want, deps)
		}
	}

	zkc := zktest.StartStandalone(t)
	d := startDaemon(t, "a", zkc.ConnectString(), daemonOpts{})
	java := exec.CommandContext(ctx, "java", "-cp", filepath.Join(app, "target", "classes")+string(os.PathListSeparator)+strings.TrimSpace(string(deps)),
		"com.example.Locker", d.listen, "install/java")
	out, err := java.CombinedOutput()
	if err != nil {
		t.Fatalf("the app failed: %v\n%s", err, out)
	}
	want := "held install/java\nreleased install/java\nshared by 2\nheld through my channel\n"
	if string(out) != want {
		t.Errorf("the app printed:\n%s\nwant:\n%s", out, want)
	}
}
