package io.zklock;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.retry.RetryOneTime;

/**
 * One Curator contender of the leader election interop test (the Go e2e test
 * TestObserveFollowsLeaders): campaigns ROUNDS times with Curator's LeaderSelector directly on
 * ZooKeeper, each time with a new selector whose id is WHO#ROUND (its node's data, which
 * Describe and Observe show as the owner).
 *
 * <p>Usage: LeaderContender ZK PATH ROUNDS HOLD_MS RECORDER WHO. It sends "READY WHO" to the
 * test's recorder once connected to ZooKeeper, then for each round "LEAD WHO#ROUND" as it takes
 * the leadership, waiting for OK, and leads HOLD_MS milliseconds before it resigns.
 */
public final class LeaderContender {
  public static void main(String[] a) throws Exception {
    String zk = a[0], path = a[1], recorder = a[4], who = a[5];
    int rounds = Integer.parseInt(a[2]);
    long holdMs = Long.parseLong(a[3]);
    String[] hp = recorder.split(":");
    List<LeaderSelector> selectors = new ArrayList<>();
    try (Socket s = new Socket(hp[0], Integer.parseInt(hp[1]));
        PrintWriter out = new PrintWriter(s.getOutputStream(), true, StandardCharsets.UTF_8);
        BufferedReader in =
            new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
        CuratorFramework client =
            CuratorFrameworkFactory.newClient(zk, 10_000, 5_000, new RetryOneTime(100))) {
      client.start();
      client.blockUntilConnected();
      say(out, in, "READY " + who);
      for (int i = 1; i <= rounds; i++) {
        String id = who + "#" + i;
        CountDownLatch led = new CountDownLatch(1);
        Exception[] failed = new Exception[1];
        LeaderSelector ls =
            new LeaderSelector(
                client,
                path,
                new LeaderSelectorListenerAdapter() {
                  @Override
                  public void takeLeadership(CuratorFramework c) throws Exception {
                    try {
                      say(out, in, "LEAD " + id);
                      Thread.sleep(holdMs);
                    } catch (Exception e) {
                      failed[0] = e;
                    } finally {
                      led.countDown();
                    }
                  }
                });
        ls.setId(id);
        // Closed only at the end: closing a selector right after its leadership could interrupt
        // the release of its node.
        selectors.add(ls);
        ls.start();
        if (!led.await(5, TimeUnit.MINUTES)) {
          throw new IllegalStateException(id + ": never led");
        }
        if (failed[0] != null) {
          throw failed[0];
        }
      }
      for (LeaderSelector ls : selectors) {
        ls.close();
      }
    }
  }

  private static void say(PrintWriter out, BufferedReader in, String line) throws Exception {
    out.println(line);
    String reply = in.readLine();
    if (!"OK".equals(reply)) {
      throw new IllegalStateException(line + ": recorder answered " + reply);
    }
  }
}
