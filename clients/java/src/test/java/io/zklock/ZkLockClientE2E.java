package io.zklock;

import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * End-to-end checks of the Java client against the zklockd at $ZKLOCK_ADDR (the Go e2e test
 * TestJavaClient starts one and runs this). Exits non-zero on the first failure.
 */
public final class ZkLockClientE2E {
  private static int passed;

  private static void check(boolean ok, String what) {
    if (!ok) {
      System.out.println("FAIL: " + what);
      System.exit(1);
    }
    passed++;
    System.out.println("ok: " + what);
  }

  public static void main(String[] args) throws Exception {
    String addr = System.getenv().getOrDefault("ZKLOCK_ADDR", "127.0.0.1:7878");
    try (ZkLockClient client = new ZkLockClient(addr)) {
      long first;
      try (Lease a = client.lock("java/demo", Duration.ofSeconds(10))) {
        first = a.token();
        check(a.token() > 0 && a.id().length() == 32, "lock gives a token and a lease id");
        try {
          client.tryLock("java/demo").close();
          check(false, "tryLock of a held lock throws Held");
        } catch (LockException.Held e) {
          check(true, "tryLock of a held lock throws Held");
        }
      }
      try (Lease b = client.tryLock("java/demo")) {
        check(b.token() > first, "the next holder's token is larger");
      }

      // A waiter is granted when the holder releases.
      Lease holder = client.lock("java/queue", Duration.ofSeconds(10));
      List<Long> granted = new ArrayList<>();
      CountDownLatch done = new CountDownLatch(1);
      Thread waiter =
          new Thread(
              () -> {
                try (Lease w = client.lock("java/queue", Duration.ofSeconds(20))) {
                  synchronized (granted) {
                    granted.add(w.token());
                  }
                } catch (Exception e) {
                  System.out.println("waiter: " + e);
                } finally {
                  done.countDown();
                }
              });
      waiter.start();
      Thread.sleep(300);
      synchronized (granted) {
        check(granted.isEmpty(), "the waiter waits while the lock is held");
      }
      holder.close();
      check(done.await(10, TimeUnit.SECONDS), "the waiter is granted after the release");
      synchronized (granted) {
        check(granted.size() == 1 && granted.get(0) > holder.token(), "with a larger token");
      }

      try {
        client.lock("../etc", Duration.ofSeconds(1)).close();
        check(false, "a bad name is refused");
      } catch (LockException e) {
        check(e.code() == io.grpc.Status.Code.INVALID_ARGUMENT, "a bad name is INVALID_ARGUMENT");
      }

      // close() releases at once, and closing again does nothing.
      try (ZkLockClient other = new ZkLockClient(addr)) {
        Lease c = client.lock("java/close", Duration.ofSeconds(10));
        check(!c.isLost() && c.lostReason() == null, "isLost() is false while held");
        c.close();
        check(!c.isLost(), "isLost() is false after close()");
        try (Lease d = other.tryLock("java/close")) {
          check(d.token() > c.token(), "after close() another client gets the lock at once");
        } catch (LockException.Held e) {
          check(false, "after close() another client gets the lock at once");
        }
        try {
          c.close();
          check(true, "a second close() does nothing");
        } catch (LockException e) {
          check(false, "a second close() does nothing, but it threw " + e);
        }
      }
    }
    lose("ZKLOCK_STOP_DAEMON", false, "LOST_REASON_SHUTDOWN");
    lose("ZKLOCK_KILL_DAEMON", true, "stream broke:");
    System.out.println("java client: all " + passed + " checks passed");
  }

  /**
   * Takes a lock through the zklockd named by the environment variable env ("ADDR PID"), stops it
   * (SIGTERM) or kills it (SIGKILL), and checks that the lease reports the loss.
   */
  private static void lose(String env, boolean kill, String wantReason) throws Exception {
    String spec = System.getenv(env);
    check(spec != null, "$" + env + " names a zklockd to " + (kill ? "kill" : "stop"));
    String[] f = spec.split(" ");
    String how = kill ? "killed" : "shut down";
    try (ZkLockClient c = new ZkLockClient(f[0])) {
      BlockingQueue<String> reasons = new LinkedBlockingQueue<>();
      Lease l = c.lock("java/lost/" + env, Duration.ofSeconds(10), "e2e", reasons::add);
      check(!l.isLost(), "isLost() is false while held");
      // A listener that has another thread close its lease, and waits for
      // it, as a listener stopping a worker would: close() must not wait
      // for the listener.
      Lease[] other = new Lease[1];
      BlockingQueue<String> closedBy = new LinkedBlockingQueue<>();
      other[0] =
          c.lock(
              "java/lost-close/" + env,
              Duration.ofSeconds(10),
              "e2e",
              r -> {
                Thread worker =
                    new Thread(
                        () -> {
                          try {
                            other[0].close();
                            closedBy.add("returned");
                          } catch (LockException e) {
                            closedBy.add(e.code().name());
                          }
                        });
                worker.start();
                try {
                  worker.join(10_000);
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
                if (worker.isAlive()) {
                  closedBy.add("blocked");
                }
              });
      ProcessHandle daemon = ProcessHandle.of(Long.parseLong(f[1])).orElseThrow();
      check(kill ? daemon.destroyForcibly() : daemon.destroy(), "the zklockd is " + how);
      String reason = reasons.poll(30, TimeUnit.SECONDS);
      check(
          reason != null && reason.startsWith(wantReason),
          "the lost listener is called with " + wantReason + " when the sidecar is " + how
              + " (got " + reason + ")");
      check(l.isLost() && reason.equals(l.lostReason()), "isLost() is true, lostReason() says why");
      String closed = closedBy.poll(30, TimeUnit.SECONDS);
      check(
          "ABORTED".equals(closed),
          "close() from another thread while the lost listener waits for it throws ABORTED (got "
              + closed + ")");
      try {
        l.close();
        check(false, "close() after the loss throws LockException ABORTED");
      } catch (LockException e) {
        check(
            e.code() == Status.Code.ABORTED,
            "close() after the loss throws LockException ABORTED (got " + e.code() + ")");
      }
      check(reasons.isEmpty(), "the lost listener is called once");
    }
  }
}
