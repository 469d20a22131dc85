package zktest

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

const (
	standaloneMain = "org.apache.zookeeper.server.ZooKeeperServerMain"
	quorumMain     = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
	debianJavaDir  = "/usr/share/java"
)

// debianJars is what the server needs besides its own dependencies on
// Debian. zookeeper.jar carries a manifest Class-Path naming zookeeper-jute,
// netty, jackson, jetty, metrics-core, slf4j-api, snappy and commons-*, which
// is all Debian's zkEnv.sh relies on (CLASSPATH=/etc/zookeeper/conf:
// /usr/share/java/zookeeper.jar). It does not name an SLF4J binding, though,
// so without one the server would log nothing: add the log4j 1.2 binding
// Debian builds ZooKeeper against.
var debianJars = []string{
	"zookeeper.jar",
	"slf4j-log4j12.jar",
	"log4j-1.2.jar",
}

type javaRuntime struct {
	java      string
	classpath string
}

var (
	runtimeOnce sync.Once
	runtimeVal  javaRuntime
	runtimeErr  error
)

// findRuntime locates java and builds the class path, once per process.
func findRuntime() (javaRuntime, error) {
	runtimeOnce.Do(func() {
		runtimeVal, runtimeErr = lookupRuntime()
	})
	return runtimeVal, runtimeErr
}

func lookupRuntime() (javaRuntime, error) {
	var rt javaRuntime
	switch {
	case os.Getenv("ZKTEST_JAVA") != "":
		rt.java = os.Getenv("ZKTEST_JAVA")
	case os.Getenv("JAVA_HOME") != "":
		rt.java = filepath.Join(os.Getenv("JAVA_HOME"), "bin", "java")
	default:
		p, err := exec.LookPath("java")
		if err != nil {
			return rt, fmt.Errorf("zktest: java not found on PATH (install default-jre or set ZKTEST_JAVA): %w", err)
		}
		rt.java = p
	}
	if _, err := os.Stat(rt.java); err != nil {
		return rt, fmt.Errorf("zktest: java binary: %w", err)
	}

	if cp := os.Getenv("ZKTEST_CLASSPATH"); cp != "" {
		rt.classpath = cp
		return rt, nil
	}
	if home := os.Getenv("ZOOKEEPER_HOME"); home != "" {
		jars, _ := filepath.Glob(filepath.Join(home, "lib", "*.jar"))
		top, _ := filepath.Glob(filepath.Join(home, "*.jar"))
		jars = append(jars, top...)
		if len(jars) == 0 {
			return rt, fmt.Errorf("zktest: no jars in ZOOKEEPER_HOME=%s", home)
		}
		sort.Strings(jars)
		rt.classpath = strings.Join(jars, string(os.PathListSeparator))
		return rt, nil
	}
	var cp []string
	for _, j := range debianJars {
		p := filepath.Join(debianJavaDir, j)
		if _, err := os.Stat(p); err != nil {
			if j == "zookeeper.jar" {
				return rt, errors.New("zktest: " + p + " not found: install Debian's zookeeper package, or set ZKTEST_CLASSPATH or ZOOKEEPER_HOME")
			}
			continue // the server runs without it, just without logs
		}
		cp = append(cp, p)
	}
	rt.classpath = strings.Join(cp, string(os.PathListSeparator))
	return rt, nil
}

// jvmFlags returns the JVM options for a server living in dir.
func jvmFlags(cfg *config, dir string) []string {
	args := []string{
		// Start-up speed and footprint: tests run several JVMs on few cores.
		"-Xms32m",
		"-Xmx256m",
		"-XX:+UseSerialGC",
		"-XX:TieredStopAtLevel=1",
		"-XX:CICompilerCount=1",
		"-XX:ReservedCodeCacheSize=32m",
		"-Xss512k",
		"-Xshare:auto",
		"-XX:-UsePerfData",
		"-XX:+ExitOnOutOfMemoryError",
		"-Djava.net.preferIPv4Stack=true",

		// Logging to <dir>/zookeeper.log.
		// A URL: test directories may contain '#' and other specials.
		"-Dlog4j.configuration=" + (&url.URL{Scheme: "file", Path: filepath.Join(dir, "log4j.properties")}).String(),
		"-Dlogback.configurationFile=" + filepath.Join(dir, "logback.xml"),
		"-Dzookeeper.log.dir=" + dir,
		"-Dzookeeper.jmx.log4j.disable=true",

		// Test-friendly server behaviour.
		"-Dzookeeper.admin.enableServer=false",
		"-Dzookeeper.forceSync=no",
		"-Dzookeeper.preAllocSize=1024", // KiB
		"-Dzookeeper.snapshot.trust.empty=true",
		"-Dznode.container.checkIntervalMs=1000",
		"-Dznode.container.maxPerMinute=100000",
		"-Dzookeeper.fastleader.minNotificationInterval=100",
		"-Dzookeeper.fastleader.maxNotificationInterval=1000",
		"-Dzookeeper.cnxTimeout=1000",
	}
	keys := make([]string, 0, len(cfg.sysProps))
	for k := range cfg.sysProps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-D"+k+"="+cfg.sysProps[k])
	}
	return append(args, cfg.jvmArgs...)
}

const log4jProperties = `log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=%s
log4j.appender.FILE.Append=true
log4j.appender.FILE.ImmediateFlush=true
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%%d{ISO8601} [myid:%%X{myid}] - %%-5p [%%t:%%C{1}@%%L] - %%m%%n
`

const logbackXML = `<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>%s</file>
    <append>true</append>
    <encoder><pattern>%%d{ISO8601} [myid:%%X{myid}] - %%-5p [%%t:%%C{1}@%%L] - %%m%%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
`
