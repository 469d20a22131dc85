package io.zklock;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessLock;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.retry.RetryOneTime;

/**
 * One contender of the interop tests (the Go e2e tests TestInteropCurator and
 * TestInteropCuratorReadWrite): takes a lock ROUNDS times, either through zklockd with the Java
 * client, or directly on ZooKeeper with Curator's InterProcessMutex or one side of its
 * InterProcessReadWriteLock, and reports each critical section to the test's checker.
 *
 * <p>Usage: InteropContender zklock|curator|curator-read|curator-write TARGET LOCK ROUNDS CHECKER
 * WHO, where TARGET is the zklockd address (zklock) or the ZooKeeper connect string (Curator), and
 * LOCK the lock name (zklock) or its ZooKeeper path (Curator). A read lock's sections are reported
 * as shared. The Curator locks store WHO in their nodes, so Describe shows it as the owner.
 */
public final class InteropContender {
  public static void main(String[] a) throws Exception {
    String mode = a[0], target = a[1], lock = a[2], checker = a[4], who = a[5];
    int rounds = Integer.parseInt(a[3]);
    String[] hp = checker.split(":");
    try (Socket s = new Socket(hp[0], Integer.parseInt(hp[1]));
        PrintWriter out = new PrintWriter(s.getOutputStream(), true, StandardCharsets.UTF_8);
        BufferedReader in =
            new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8))) {
      if (mode.startsWith("curator")) {
        try (CuratorFramework client =
            CuratorFrameworkFactory.newClient(target, 10_000, 5_000, new RetryOneTime(100))) {
          client.start();
          client.blockUntilConnected();
          byte[] data = who.getBytes(StandardCharsets.UTF_8);
          InterProcessLock curatorLock;
          switch (mode) {
            case "curator":
              curatorLock = new InterProcessMutex(client, lock);
              break;
            case "curator-read":
              curatorLock = new InterProcessReadWriteLock(client, lock, data).readLock();
              break;
            case "curator-write":
              curatorLock = new InterProcessReadWriteLock(client, lock, data).writeLock();
              break;
            default:
              throw new IllegalArgumentException("unknown mode " + mode);
          }
          for (int i = 0; i < rounds; i++) {
            curatorLock.acquire();
            try {
              critical(out, in, who, 0, mode.equals("curator-read"));
            } finally {
              curatorLock.release();
            }
          }
        }
      } else {
        try (ZkLockClient client = new ZkLockClient(target)) {
          for (int i = 0; i < rounds; i++) {
            try (Lease lease = client.lock(lock, Duration.ofMinutes(1), who, null)) {
              critical(out, in, who, lease.token(), false);
            }
          }
        }
      }
    }
  }

  private static void critical(
      PrintWriter out, BufferedReader in, String who, long token, boolean shared)
      throws Exception {
    out.println("ENTER " + who + " " + token + (shared ? " shared" : ""));
    if (!"OK".equals(in.readLine())) {
      throw new IllegalStateException(who + ": checker refused ENTER");
    }
    Thread.sleep(5);
    out.println("EXIT " + who);
    if (!"OK".equals(in.readLine())) {
      throw new IllegalStateException(who + ": checker refused EXIT");
    }
  }
}
