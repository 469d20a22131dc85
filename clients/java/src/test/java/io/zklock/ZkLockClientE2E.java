package io.zklock;

import com.google.protobuf.TextFormat;
import io.grpc.Status;
import io.zklock.v1.DescribeRequest;
import io.zklock.v1.DescribeResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;

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
    try (ZkLockClient client = new ZkLockClient(addr);
        ZkLockClient other = new ZkLockClient(addr)) {
      reentry(client, other);
      semaphore(client, other);
      observe(client);
      election(client, other);
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

  /** Nested holds keep the token and the lock until the last one ends. */
  private static void reentry(ZkLockClient client, ZkLockClient other) throws Exception {
    String name = "java/reenter";
    Lease a = client.lock(name, Duration.ofSeconds(10), "java-a", null);
    Lease b = a.reenter();
    check(
        b.token() == a.token() && b.id().length() == 32 && !b.id().equals(a.id()),
        "reenter() gives the same token and a new lease id at once");
    Lease c = client.reenter(name, b.id(), null);
    check(
        c.token() == a.token() && !c.id().equals(a.id()) && !c.id().equals(b.id()),
        "a re-entered lease re-enters in turn, by its id");
    DescribeResponse held = describe(client, name);
    check(
        held.getHoldersCount() == 1
            && held.getHolders(0).getFencingToken() == a.token()
            && held.getHolders(0).getReentered() == 2,
        "Describe shows the holder's 2 re-entries (got " + TextFormat.shortDebugString(held) + ")");
    a.close();
    check(isHeld(other, name), "the lock stays held when the first lease ends");
    c.close();
    check(isHeld(other, name), "and when the innermost ends");
    b.close();
    try (Lease d = other.tryLock(name)) {
      check(d.token() > a.token(), "the lock is free once the last lease ends");
    } catch (LockException.Held e) {
      check(false, "the lock is free once the last lease ends");
    }
    try {
      a.reenter().close();
      check(false, "re-entering a closed lease is NOT_FOUND");
    } catch (LockException e) {
      check(e.code() == Status.Code.NOT_FOUND, "re-entering a closed lease is NOT_FOUND (got "
          + e.code() + ")");
    }
    try (Lease e = client.lock("java/reenter-other", Duration.ofSeconds(10))) {
      try {
        client.reenter(name, e.id(), null).close();
        check(false, "re-entering through a lease of another lock is INVALID_ARGUMENT");
      } catch (LockException x) {
        check(
            x.code() == Status.Code.INVALID_ARGUMENT,
            "re-entering through a lease of another lock is INVALID_ARGUMENT (got " + x.code()
                + ")");
      }
    }
  }

  private static boolean isHeld(ZkLockClient c, String name) throws LockException {
    try {
      c.tryLock(name).close();
      return false;
    } catch (LockException.Held e) {
      return true;
    }
  }

  /** A semaphore of 2 with 3 contenders: the third waits until one of the first two ends. */
  private static void semaphore(ZkLockClient client, ZkLockClient other) throws Exception {
    String name = "java/sem";
    Lease s1 = client.semaphore(name, 2, Duration.ofSeconds(10), "sem-1", null);
    Lease s2 = other.semaphore(name, 2, Duration.ofSeconds(10), "sem-2", null);
    check(s1.token() != s2.token(), "two holders of a semaphore of 2, each with its own token");
    BlockingQueue<LockState> states = new LinkedBlockingQueue<>();
    try (Observation o = client.observe(name, states::add, null)) {
      LockState s = states.poll(30, TimeUnit.SECONDS);
      Set<Long> tokens = new HashSet<>();
      if (s != null) {
        s.holders().forEach(h -> tokens.add(h.token()));
      }
      check(
          s != null && s.permits() == 2 && tokens.equals(Set.of(s1.token(), s2.token())),
          "observe shows the semaphore's 2 holders and its permits (got " + s + ")");
    }

    AtomicBoolean released = new AtomicBoolean();
    BlockingQueue<Object> third = new LinkedBlockingQueue<>();
    Thread t =
        new Thread(
            () -> {
              try {
                Lease l = client.semaphore(name, 2, Duration.ofSeconds(60), "sem-3", null);
                // Granted only after a release, never with two holders.
                third.add(released.get() ? l : "granted while two held it");
              } catch (Exception e) {
                third.add(e);
              }
            });
    t.start();
    waitFor(client, name, d -> d.getHoldersCount() + d.getWaitersCount() >= 3, "the third joins");
    check(third.isEmpty(), "the third contender waits while 2 hold the semaphore");
    try {
      other.semaphore(name, 3, Duration.ofSeconds(10)).close();
      check(false, "asking for 3 permits of a semaphore of 2 is FAILED_PRECONDITION");
    } catch (LockException e) {
      check(
          e.code() == Status.Code.FAILED_PRECONDITION
              && e.getMessage().contains("semaphore of 2 permits")
              && e.getMessage().contains("semaphore of 3 permits"),
          "asking for 3 permits of a semaphore of 2 is FAILED_PRECONDITION naming both ("
              + e.getMessage() + ")");
    }
    released.set(true);
    s1.close();
    Object got = third.poll(30, TimeUnit.SECONDS);
    check(got instanceof Lease, "the third is granted once one of the two releases (got " + got
        + ")");
    Lease s3 = (Lease) got;
    check(s3.token() > s1.token() && s3.token() > s2.token(), "with a token of its own, larger");
    Lease s3b = s3.reenter();
    check(s3b.token() == s3.token(), "a semaphore's lease re-enters, with the same token");
    s3.close();
    s3b.close();
    s2.close();
  }

  /** Observe: the present state first, then each change of the set of holders. */
  private static void observe(ZkLockClient client) throws Exception {
    String name = "java/observe";
    try {
      client.observe("../etc", s -> {}, null).close();
      check(false, "observing a bad name is INVALID_ARGUMENT");
    } catch (LockException e) {
      check(e.code() == Status.Code.INVALID_ARGUMENT, "observing a bad name is INVALID_ARGUMENT");
    }
    Lease a = client.lock(name, Duration.ofSeconds(10), "obs-a", null);
    BlockingQueue<LockState> states = new LinkedBlockingQueue<>();
    BlockingQueue<LockException> ends = new LinkedBlockingQueue<>();
    Observation o = client.observe(name, states::add, ends::add);
    LockState s = states.poll(30, TimeUnit.SECONDS);
    check(
        s != null
            && s.holders().size() == 1
            && s.leader().get().owner().equals("obs-a")
            && s.leader().get().token() == a.token()
            && s.queueLength() == 1,
        "observe's first state is the present holder (got " + s + ")");
    a.close();
    s = states.poll(30, TimeUnit.SECONDS);
    check(s != null && s.holders().isEmpty(), "then the release (got " + s + ")");
    Lease b = client.lock(name, Duration.ofSeconds(10), "obs-b", null);
    s = states.poll(30, TimeUnit.SECONDS);
    check(
        s != null && s.holders().size() == 1 && s.leader().get().token() == b.token()
            && s.leader().get().owner().equals("obs-b"),
        "then the next holder (got " + s + ")");
    o.close();
    b.close();
    check(states.isEmpty() && ends.isEmpty(), "close() ends the observation without onEnd");
  }

  /** Leader election: campaign, follow the leader, resign. */
  private static void election(ZkLockClient client, ZkLockClient other) throws Exception {
    Election e = client.election("java/election");
    check(e.leader().isEmpty(), "no leader before any campaign");
    BlockingQueue<Optional<Holder>> leaders = new LinkedBlockingQueue<>();
    try (Observation follow = e.observe(leaders::add, null)) {
      Optional<Holder> l = leaders.poll(30, TimeUnit.SECONDS);
      check(l != null && l.isEmpty(), "following starts with the present leader: none");
      Lease a = e.campaign("10.0.0.1:8080", Duration.ofSeconds(10));
      l = leaders.poll(30, TimeUnit.SECONDS);
      check(
          l != null && l.isPresent() && l.get().owner().equals("10.0.0.1:8080")
              && l.get().token() == a.token(),
          "followers see the new leader and its value (got " + l + ")");
      check(
          e.leader().map(Holder::owner).orElse("").equals("10.0.0.1:8080"),
          "leader() names the leader");
      BlockingQueue<Object> second = new LinkedBlockingQueue<>();
      Thread t =
          new Thread(
              () -> {
                try {
                  second.add(other.election("java/election").campaign("10.0.0.2:8080",
                      Duration.ofSeconds(60)));
                } catch (Exception x) {
                  second.add(x);
                }
              });
      t.start();
      waitFor(client, "java/election", d -> d.getWaitersCount() == 1, "the second campaigns");
      check(second.isEmpty(), "the second campaigner waits while the first leads");
      a.close(); // resigns
      Object got = second.poll(30, TimeUnit.SECONDS);
      check(got instanceof Lease, "the second leads once the first resigns (got " + got + ")");
      Lease b = (Lease) got;
      l = leaders.poll(30, TimeUnit.SECONDS);
      check(
          l != null && l.isPresent() && l.get().owner().equals("10.0.0.2:8080")
              && l.get().token() == b.token() && b.token() > a.token(),
          "followers see the second leader next, with a larger token (got " + l + ")");
      b.close();
      l = leaders.poll(30, TimeUnit.SECONDS);
      check(l != null && l.isEmpty(), "and no leader once it resigns (got " + l + ")");
    }
    check(leaders.isEmpty(), "followers see each change once");
  }

  private static DescribeResponse describe(ZkLockClient c, String name) throws LockException {
    return c.call(
        s ->
            s.withDeadlineAfter(10, TimeUnit.SECONDS)
                .describe(DescribeRequest.newBuilder().setLock(name).build()));
  }

  /** Polls Describe of name until ok holds, for at most 30 s. */
  private static void waitFor(
      ZkLockClient c, String name, Predicate<DescribeResponse> ok, String what)
      throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    DescribeResponse d;
    do {
      d = describe(c, name);
      if (ok.test(d)) {
        return;
      }
      Thread.sleep(20);
    } while (System.nanoTime() < deadline);
    check(false, what + " within 30 s (Describe: " + TextFormat.shortDebugString(d) + ")");
  }
}
