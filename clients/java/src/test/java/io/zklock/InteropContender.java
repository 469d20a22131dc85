package io.zklock;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.RetryOneTime;

/**
 * One contender of the interop test (the Go e2e test TestInteropCurator): takes a lock ROUNDS
 * times, either through zklockd with the Java client or with Curator's InterProcessMutex
 * directly on ZooKeeper, and reports each critical section to the test's checker.
 *
 * <p>Usage: InteropContender zklock|curator TARGET LOCK ROUNDS CHECKER WHO, where TARGET is the
 * zklockd address (zklock) or the ZooKeeper connect string (curator), and LOCK the lock name
 * (zklock) or its ZooKeeper path (curator).
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
      if (mode.equals("curator")) {
        try (CuratorFramework client =
            CuratorFrameworkFactory.newClient(target, 10_000, 5_000, new RetryOneTime(100))) {
          client.start();
          client.blockUntilConnected();
          InterProcessMutex mutex = new InterProcessMutex(client, lock);
          for (int i = 0; i < rounds; i++) {
            mutex.acquire();
            try {
              critical(out, in, who, 0);
            } finally {
              mutex.release();
            }
          }
        }
      } else {
        try (ZkLockClient client = new ZkLockClient(target)) {
          for (int i = 0; i < rounds; i++) {
            try (Lease lease = client.lock(lock, Duration.ofMinutes(1), who, null)) {
              critical(out, in, who, lease.token());
            }
          }
        }
      }
    }
  }

  private static void critical(PrintWriter out, BufferedReader in, String who, long token)
      throws Exception {
    out.println("ENTER " + who + " " + token);
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
