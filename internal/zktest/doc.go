// Package zktest runs real Apache ZooKeeper servers for tests.
//
// Nothing is mocked: every server is a separate JVM started directly with
// java (org.apache.zookeeper.server.ZooKeeperServerMain for a standalone
// server, org.apache.zookeeper.server.quorum.QuorumPeerMain for the members
// of an ensemble) from the jars of Debian's zookeeper package in
// /usr/share/java. Each server gets its own directory under t.TempDir()
// holding zoo.cfg, the data directory and the server log, and listens only on
// 127.0.0.1.
//
// Typical use:
//
//	func TestSomething(t *testing.T) {
//		zks := zktest.StartStandalone(t)
//		conn, _, err := zk.Connect(zks.Servers(), time.Second)
//		...
//	}
//
//	func TestFailover(t *testing.T) {
//		ens := zktest.StartEnsemble(t, 3)
//		...
//		leader := ens.Leader()
//		ens.Server(leader).Kill()    // SIGKILL, waits for the process
//		...
//		ens.Server(leader).Start()   // same ports and data, waits until serving
//	}
//
// StartStandalone and StartEnsemble return only once every server is serving
// (the srvr four-letter word reports a Mode of standalone, leader or
// follower); otherwise they fail the test with t.Fatalf and the tail of the
// server log. Both register a t.Cleanup that kills every server and waits for
// the processes, so no goroutine or process outlives the test. Functions that
// may call t.Fatalf (StartStandalone, StartEnsemble, Server.Start,
// Cluster.StartAll) must be called from the test goroutine; Server.TryStart
// returns an error instead and may be called from any goroutine.
//
// # Ports
//
// Client, quorum and election ports are taken from the loopback port range
// below the kernel's ephemeral range (ip_local_port_range), so they never
// collide with ports the kernel hands out for outgoing connections or for
// listeners on port 0. Each port is reserved with an flock(2)-held lock file
// in os.TempDir()/zktest-ports for as long as the cluster lives, which keeps
// test binaries that run in parallel (go test ./...) from picking the same
// port; the lock vanishes with the process, so crashed runs leave nothing
// stale behind. If a server nevertheless fails to bind, the whole cluster is
// started again on fresh ports.
//
// # Server settings
//
// The defaults are tuned for fast tests: tickTime is 200ms (so sessions may
// be as short as 400ms; see WithTickTime and WithMaxSessionTimeout), the
// AdminServer is off, fsync is off (zookeeper.forceSync=no; data still
// survives SIGKILL because it is in the page cache), empty container znodes
// are reaped every second, leader election retries at least once per second,
// and the JVM runs with a small heap, the serial GC and only the C1 compiler.
// The four-letter words ruok, srvr, mntr, stat, cons, conf, envi, isro, wchc,
// wchs and dump are enabled; FourLetterWord sends one.
//
// # Start-up time
//
// On a 2-core machine a standalone server serves about 0.35-0.45s after
// StartStandalone is called and a 3-server ensemble after about 1.1-1.5s
// (most of it JVM start-up, which is CPU-bound; five servers take about 2s).
// To save JVM start-up time the classes are shared between runs through a
// class data sharing archive in os.TempDir()/zktest-cds: the first server
// started while the archive is missing writes it when it exits (it is sent
// SIGTERM instead of SIGKILL at cleanup for that purpose), later servers map
// it. A stale or foreign archive is ignored by the JVM.
//
// # Environment
//
// ZKTEST_JAVA overrides the java binary (default: $JAVA_HOME/bin/java, then
// java on $PATH). ZKTEST_CLASSPATH overrides the class path entirely;
// otherwise ZOOKEEPER_HOME/lib/*.jar is used if ZOOKEEPER_HOME is set (an
// upstream tarball), else the Debian jars. ZKTEST_CDS=0 turns class data
// sharing off. Setting ZKTEST_DUMP_LOGS=1 makes the cleanup of a failed test
// log the tail of every server log.
package zktest
