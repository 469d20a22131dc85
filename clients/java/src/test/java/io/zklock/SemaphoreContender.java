package io.zklock;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.retry.RetryOneTime;
import org.apache.curator.utils.ZKPaths;
import org.apache.zookeeper.data.Stat;

/**
 * One Curator contender of the semaphore interop test (the Go e2e test
 * TestSemaphoreWithCurator): takes one permit of Curator's InterProcessSemaphoreV2 directly on
 * ZooKeeper and reports its hold to the test's checker, with the czxid of its lease node as the
 * fencing token (zklock's token for a semaphore holder).
 *
 * <p>Usage: SemaphoreContender ZK PATH PERMITS CHECKER WHO. It sends "ENTER WHO TOKEN" once it
 * holds a permit and keeps it until the checker answers OK (the test decides when), then sends
 * "EXIT WHO", waits for OK and returns the permit. The lease node's data is WHO, so Describe and
 * Observe show it as the owner.
 */
public final class SemaphoreContender {
  public static void main(String[] a) throws Exception {
    String zk = a[0], path = a[1], checker = a[3], who = a[4];
    int permits = Integer.parseInt(a[2]);
    String[] hp = checker.split(":");
    try (Socket s = new Socket(hp[0], Integer.parseInt(hp[1]));
        PrintWriter out = new PrintWriter(s.getOutputStream(), true, StandardCharsets.UTF_8);
        BufferedReader in =
            new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
        CuratorFramework client =
            CuratorFrameworkFactory.newClient(zk, 10_000, 5_000, new RetryOneTime(100))) {
      client.start();
      client.blockUntilConnected();
      InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(client, path, permits);
      sem.setNodeData(who.getBytes(StandardCharsets.UTF_8));
      Lease lease = sem.acquire();
      try {
        // Curator 5.4 gives the lease node's name, not its path.
        String node = ZKPaths.makePath(path, "leases", lease.getNodeName());
        Stat st = client.checkExists().forPath(node);
        if (st == null) {
          throw new IllegalStateException(who + ": lease node " + node + " is gone");
        }
        say(out, in, "ENTER " + who + " " + st.getCzxid());
        say(out, in, "EXIT " + who);
      } finally {
        lease.close();
      }
    }
  }

  private static void say(PrintWriter out, BufferedReader in, String line) throws Exception {
    out.println(line);
    String reply = in.readLine();
    if (!"OK".equals(reply)) {
      throw new IllegalStateException(line + ": checker answered " + reply);
    }
  }
}
