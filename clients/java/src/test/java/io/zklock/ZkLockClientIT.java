package io.zklock;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.google.protobuf.TextFormat;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.zklock.v1.Contender;
import io.zklock.v1.DescribeRequest;
import io.zklock.v1.DescribeResponse;
import io.zklock.v1.Mode;
import java.time.Duration;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/**
 * The Java client against a running zklockd: -Dzklock.addr=HOST:PORT (the pom's zklockd profile;
 * e2e/java_test.go starts one and runs mvn verify with it). The lease-loss tests also need
 * -Dzklock.stopDaemon and -Dzklock.killDaemon, each "HOST:PORT PID" of another zklockd of the
 * same ZooKeeper, which they stop (SIGTERM) and kill (SIGKILL).
 */
public class ZkLockClientIT {
  private static final int WAIT_S = 30;

  private ZkLockClient client;
  private ZkLockClient other;

  /** Returns the system property name, failing the test if it is not set. */
  private static String need(String name, String what) {
    String v = System.getProperty(name, "");
    if (v.isEmpty()) {
      fail(
          "-D" + name + " is not set: it must name " + what
              + " (e2e/java_test.go sets it; see clients/java/pom.xml)");
    }
    return v;
  }

  private static String addr() {
    return need("zklock.addr", "a running zklockd, HOST:PORT");
  }

  @Before
  public void connect() {
    client = new ZkLockClient(addr());
    other = new ZkLockClient(addr());
  }

  @After
  public void disconnect() throws Exception {
    if (client != null) {
      client.close();
    }
    if (other != null) {
      other.close();
    }
  }

  @Test(timeout = 60_000)
  public void lockGivesATokenAndTryLockOfAHeldLockThrowsHeld() throws Exception {
    long first;
    try (Lease a = client.lock("java/demo")) {
      first = a.token();
      assertTrue(a.token() > 0);
      assertEquals(32, a.id().length());
      assertEquals("java/demo", a.name());
      assertThrows(LockException.Held.class, () -> other.tryLock("java/demo"));
    }
    try (Lease b = other.tryLock("java/demo")) {
      assertTrue("the next holder's token is larger", b.token() > first);
    }
  }

  @Test(timeout = 60_000)
  public void lockWithoutATimeoutWaitsUntilTheRelease() throws Exception {
    String name = "java/queue";
    Lease holder = client.lock(name);
    BlockingQueue<Object> granted = new LinkedBlockingQueue<>();
    Thread waiter = start(() -> granted.add(other.lock(name)));
    waitFor(name, d -> d.getWaitersCount() == 1, "the waiter queues");
    assertTrue("granted while another held it: " + granted.peek(), granted.isEmpty());
    holder.close();
    Lease w = (Lease) take(granted, "the waiter's lease after the release");
    assertTrue("with a larger token", w.token() > holder.token());
    w.close();
    waiter.join(10_000);
  }

  @Test(timeout = 60_000)
  public void anInterruptEndsTheWaitAndLeavesTheQueue() throws Exception {
    String name = "java/interrupt";
    Lease holder = client.lock(name);
    BlockingQueue<Object> got = new LinkedBlockingQueue<>();
    Thread waiter =
        start(
            () -> {
              try {
                got.add(other.lock(name, LockOptions.exclusive().owner("interrupted")));
              } catch (InterruptedException e) {
                got.add(e);
                got.add(Thread.currentThread().isInterrupted() ? "still interrupted" : "cleared");
              }
            });
    waitFor(name, d -> d.getWaitersCount() == 1, "the waiter queues");
    waiter.interrupt();
    Object e = take(got, "what lock() threw when interrupted");
    assertTrue("lock() threw " + e, e instanceof InterruptedException);
    assertEquals("cleared", take(got, "the interrupt status"));
    waitFor(name, d -> d.getWaitersCount() == 0, "the interrupted waiter leaves the queue");
    holder.close();
    try (Lease next = other.tryLock(name)) {
      assertTrue(next.token() > holder.token());
    }
  }

  @Test(timeout = 60_000)
  public void waitAtMostBoundsTheWait() throws Exception {
    String name = "java/wait";
    try (Lease holder = client.lock(name)) {
      assertThrows(
          LockException.Held.class,
          () -> other.lock(name, LockOptions.exclusive().waitAtMost(Duration.ZERO)));
      LockException e =
          assertThrows(
              LockException.class,
              () -> other.lock(name, LockOptions.exclusive().waitAtMost(Duration.ofMillis(200))));
      assertEquals(Status.Code.DEADLINE_EXCEEDED, e.code());
      assertFalse(e instanceof LockException.Held);
      e = assertThrows(LockException.class, () -> other.lock(name, Duration.ofMillis(200)));
      assertEquals(Status.Code.DEADLINE_EXCEEDED, e.code());
    }
  }

  @Test(timeout = 60_000)
  public void sharedHoldersHoldTogetherAndKeepAnExclusiveOneOut() throws Exception {
    String name = "java/shared";
    Lease r1 = client.lock(name, LockOptions.shared().owner("reader-1"));
    Lease r2 = other.lock(name, LockOptions.shared().owner("reader-2").waitAtMost(Duration.ZERO));
    assertNotEquals(r1.token(), r2.token());
    DescribeResponse d = describe(name);
    assertEquals(TextFormat.shortDebugString(d), 2, d.getHoldersCount());
    for (Contender h : d.getHoldersList()) {
      assertEquals(Mode.MODE_SHARED, h.getMode());
    }
    assertThrows(LockException.Held.class, () -> client.tryLock(name));
    BlockingQueue<Object> writer = new LinkedBlockingQueue<>();
    start(() -> writer.add(client.lock(name, LockOptions.exclusive().owner("writer"))));
    waitFor(name, x -> x.getWaitersCount() == 1, "the writer queues");
    r1.close();
    assertTrue("the writer was granted while a reader held the lock", writer.isEmpty());
    r2.close();
    Lease w = (Lease) take(writer, "the writer's lease once both readers released");
    assertTrue(w.token() > r1.token() && w.token() > r2.token());
    assertThrows(
        LockException.Held.class,
        () -> other.lock(name, LockOptions.shared().waitAtMost(Duration.ZERO)));
    w.close();
  }

  @Test(timeout = 60_000)
  public void aClientOnTheCallersChannelLeavesItOpen() throws Exception {
    ManagedChannel ch = ManagedChannelBuilder.forTarget(addr()).usePlaintext().build();
    try {
      ZkLockClient own = new ZkLockClient(ch);
      long token;
      try (Lease l = own.lock("java/own-channel")) {
        token = l.token();
      }
      own.close();
      assertFalse("close() shut down the caller's channel", ch.isShutdown());
      try (ZkLockClient again = new ZkLockClient(ch);
          Lease l = again.tryLock("java/own-channel")) {
        assertTrue(l.token() > token);
      }
    } finally {
      ch.shutdown();
      assertTrue(ch.awaitTermination(10, TimeUnit.SECONDS));
    }
  }

  @Test(timeout = 60_000)
  public void aBadNameIsInvalidArgument() throws Exception {
    LockException e = assertThrows(LockException.class, () -> client.lock("../etc"));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
    e = assertThrows(LockException.class, () -> client.observe("../etc", s -> {}, null));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.code());
  }

  @Test(timeout = 60_000)
  public void closeReleasesAtOnceAndAgainDoesNothing() throws Exception {
    Lease c = client.lock("java/close", Duration.ofSeconds(10));
    assertFalse(c.isLost());
    assertNull(c.lostReason());
    c.close();
    assertFalse("isLost() after close()", c.isLost());
    try (Lease d = other.tryLock("java/close")) {
      assertTrue(d.token() > c.token());
    }
    c.close(); // does nothing
  }

  /** Nested holds keep the token and the lock until the last one ends. */
  @Test(timeout = 60_000)
  public void reentry() throws Exception {
    String name = "java/reenter";
    Lease a = client.lock(name, Duration.ofSeconds(10), "java-a", null);
    Lease b = a.reenter();
    assertEquals("reenter() keeps the token", a.token(), b.token());
    assertEquals(32, b.id().length());
    assertNotEquals(a.id(), b.id());
    Lease c = client.reenter(name, b.id(), null);
    assertEquals(a.token(), c.token());
    assertNotEquals(a.id(), c.id());
    assertNotEquals(b.id(), c.id());
    DescribeResponse held = describe(name);
    assertTrue(
        "Describe shows the holder's 2 re-entries: " + TextFormat.shortDebugString(held),
        held.getHoldersCount() == 1
            && held.getHolders(0).getFencingToken() == a.token()
            && held.getHolders(0).getReentered() == 2);
    a.close();
    assertTrue("held when the first lease ends", isHeld(name));
    c.close();
    assertTrue("held when the innermost ends", isHeld(name));
    b.close();
    try (Lease d = other.tryLock(name)) {
      assertTrue("free once the last lease ends", d.token() > a.token());
    }
    LockException e = assertThrows(LockException.class, () -> a.reenter().close());
    assertEquals("re-entering a closed lease", Status.Code.NOT_FOUND, e.code());
    try (Lease x = client.lock("java/reenter-other", Duration.ofSeconds(10))) {
      e = assertThrows(LockException.class, () -> client.reenter(name, x.id(), null).close());
      assertEquals(
          "re-entering through a lease of another lock", Status.Code.INVALID_ARGUMENT, e.code());
    }
  }

  /** A semaphore of 2 with 3 contenders: the third waits until one of the first two ends. */
  @Test(timeout = 60_000)
  public void semaphore() throws Exception {
    String name = "java/sem";
    Lease s1 = client.semaphore(name, 2, Duration.ofSeconds(10), "sem-1", null);
    Lease s2 = other.semaphore(name, 2, Duration.ofSeconds(10), "sem-2", null);
    assertNotEquals("each holder has its own token", s1.token(), s2.token());
    BlockingQueue<LockState> states = new LinkedBlockingQueue<>();
    try (Observation o = client.observe(name, states::add, null)) {
      LockState s = (LockState) take(states, "observe's first state");
      Set<Long> tokens = new HashSet<>();
      s.holders().forEach(h -> tokens.add(h.token()));
      assertEquals("observe shows the 2 holders: " + s, Set.of(s1.token(), s2.token()), tokens);
      assertEquals(2, s.permits());
    }

    AtomicBoolean released = new AtomicBoolean();
    BlockingQueue<Object> third = new LinkedBlockingQueue<>();
    start(
        () -> {
          Lease l = client.semaphore(name, 2, Duration.ofSeconds(60), "sem-3", null);
          // Granted only after a release, never with two holders.
          third.add(released.get() ? l : "granted while two held it");
        });
    waitFor(name, d -> d.getHoldersCount() + d.getWaitersCount() >= 3, "the third joins");
    assertTrue("the third waits while 2 hold the semaphore", third.isEmpty());
    LockException e =
        assertThrows(
            LockException.class, () -> other.semaphore(name, 3, Duration.ofSeconds(10)).close());
    assertEquals(Status.Code.FAILED_PRECONDITION, e.code());
    assertTrue(
        e.getMessage(),
        e.getMessage().contains("semaphore of 2 permits")
            && e.getMessage().contains("semaphore of 3 permits"));
    released.set(true);
    s1.close();
    Object got = take(third, "the third's permit once one of the two releases");
    assertTrue("the third got " + got, got instanceof Lease);
    Lease s3 = (Lease) got;
    assertTrue(s3.token() > s1.token() && s3.token() > s2.token());
    Lease s3b = s3.reenter();
    assertEquals("a semaphore's lease re-enters with the same token", s3.token(), s3b.token());
    s3.close();
    s3b.close();
    s2.close();
  }

  /** Observe: the present state first, then each change of the set of holders. */
  @Test(timeout = 60_000)
  public void observe() throws Exception {
    String name = "java/observe";
    Lease a = client.lock(name, LockOptions.exclusive().owner("obs-a"));
    BlockingQueue<LockState> states = new LinkedBlockingQueue<>();
    BlockingQueue<LockException> ends = new LinkedBlockingQueue<>();
    Observation o = client.observe(name, states::add, ends::add);
    LockState s = (LockState) take(states, "the first state");
    assertTrue(
        "the first state is the present holder: " + s,
        s.holders().size() == 1
            && s.leader().get().owner().equals("obs-a")
            && s.leader().get().token() == a.token()
            && s.queueLength() == 1);
    a.close();
    s = (LockState) take(states, "the release");
    assertTrue("then the release: " + s, s.holders().isEmpty());
    Lease b = client.lock(name, LockOptions.exclusive().owner("obs-b"));
    s = (LockState) take(states, "the next holder");
    assertTrue(
        "then the next holder: " + s,
        s.holders().size() == 1
            && s.leader().get().token() == b.token()
            && s.leader().get().owner().equals("obs-b"));
    o.close();
    b.close();
    assertTrue("close() ends the observation without onEnd", states.isEmpty() && ends.isEmpty());
  }

  /** Leader election: campaign, follow the leader, resign. */
  @Test(timeout = 60_000)
  public void election() throws Exception {
    Election e = client.election("java/election");
    assertTrue("no leader before any campaign", e.leader().isEmpty());
    BlockingQueue<Optional<Holder>> leaders = new LinkedBlockingQueue<>();
    try (Observation follow = e.observe(leaders::add, null)) {
      Optional<?> l = (Optional<?>) take(leaders, "the present leader");
      assertTrue("following starts with the present leader: none", l.isEmpty());
      Lease a = e.campaign("10.0.0.1:8080", Duration.ofSeconds(10));
      Holder h = (Holder) ((Optional<?>) take(leaders, "the first leader")).orElseThrow();
      assertEquals("10.0.0.1:8080", h.owner());
      assertEquals(a.token(), h.token());
      assertEquals("10.0.0.1:8080", e.leader().map(Holder::owner).orElse(""));
      BlockingQueue<Object> second = new LinkedBlockingQueue<>();
      start(
          () ->
              second.add(
                  other.election("java/election").campaign("10.0.0.2:8080", Duration.ofSeconds(60))));
      waitFor("java/election", d -> d.getWaitersCount() == 1, "the second campaigns");
      assertTrue("the second campaigner waits while the first leads", second.isEmpty());
      a.close(); // resigns
      Lease b = (Lease) take(second, "the second's lead once the first resigns");
      h = (Holder) ((Optional<?>) take(leaders, "the second leader")).orElseThrow();
      assertEquals("10.0.0.2:8080", h.owner());
      assertEquals(b.token(), h.token());
      assertTrue(b.token() > a.token());
      b.close();
      l = (Optional<?>) take(leaders, "no leader once it resigns");
      assertTrue(l.isEmpty());
    }
    assertTrue("followers see each change once", leaders.isEmpty());
  }

  @Test(timeout = 120_000)
  public void aLeaseLearnsItsSidecarShutDown() throws Exception {
    lose("zklock.stopDaemon", false, "LOST_REASON_SHUTDOWN");
  }

  @Test(timeout = 120_000)
  public void aLeaseLearnsItsSidecarWasKilled() throws Exception {
    lose("zklock.killDaemon", true, "stream broke:");
  }

  /**
   * Takes a lock through the zklockd the property prop names ("ADDR PID"), stops it (SIGTERM) or
   * kills it (SIGKILL), and checks that the lease reports the loss.
   */
  private static void lose(String prop, boolean kill, String wantReason) throws Exception {
    String how = kill ? "kill" : "stop";
    String[] f = need(prop, "\"HOST:PORT PID\" of a zklockd this test may " + how).split(" ");
    try (ZkLockClient c = new ZkLockClient(f[0])) {
      BlockingQueue<String> reasons = new LinkedBlockingQueue<>();
      Lease l = c.lock("java/lost/" + prop, LockOptions.exclusive().onLost(reasons::add));
      assertFalse(l.isLost());
      // A listener that has another thread close its lease, and waits for it, as a listener
      // stopping a worker would: close() must not wait for the listener.
      Lease[] closing = new Lease[1];
      BlockingQueue<String> closedBy = new LinkedBlockingQueue<>();
      closing[0] =
          c.lock(
              "java/lost-close/" + prop,
              Duration.ofSeconds(10),
              "e2e",
              r -> {
                Thread worker =
                    new Thread(
                        () -> {
                          try {
                            closing[0].close();
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
      assertTrue("the zklockd was " + how + "ed", kill ? daemon.destroyForcibly() : daemon.destroy());
      String reason = (String) take(reasons, "the lost listener's reason");
      assertTrue(
          "the reason when the sidecar is " + how + "ped: " + reason,
          reason.startsWith(wantReason));
      assertTrue(l.isLost());
      assertEquals(reason, l.lostReason());
      assertEquals(
          "close() from another thread while the lost listener waits for it",
          "ABORTED",
          take(closedBy, "the other thread's close()"));
      LockException e = assertThrows(LockException.class, l::close);
      assertEquals("close() after the loss", Status.Code.ABORTED, e.code());
      assertTrue("the lost listener is called once", reasons.isEmpty());
    }
  }

  /** Something a test thread does that may throw. */
  private interface Body {
    void run() throws Exception;
  }

  /** Starts body on a daemon thread; what it throws is printed (the test then times out). */
  private static Thread start(Body body) {
    Thread t =
        new Thread(
            () -> {
              try {
                body.run();
              } catch (Exception e) {
                e.printStackTrace();
              }
            });
    t.setDaemon(true);
    t.start();
    return t;
  }

  /** Takes the next element of q, failing the test if none comes within WAIT_S seconds. */
  private static Object take(BlockingQueue<?> q, String what) throws InterruptedException {
    Object o = q.poll(WAIT_S, TimeUnit.SECONDS);
    assertNotNull(what + ": nothing within " + WAIT_S + " s", o);
    return o;
  }

  private boolean isHeld(String name) throws LockException {
    try {
      other.tryLock(name).close();
      return false;
    } catch (LockException.Held e) {
      return true;
    }
  }

  private DescribeResponse describe(String name) throws LockException {
    return client.call(
        s ->
            s.withDeadlineAfter(10, TimeUnit.SECONDS)
                .describe(DescribeRequest.newBuilder().setLock(name).build()));
  }

  /** Polls Describe of name until ok holds, for at most WAIT_S seconds. */
  private void waitFor(String name, Predicate<DescribeResponse> ok, String what) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
    DescribeResponse d;
    do {
      d = describe(name);
      if (ok.test(d)) {
        return;
      }
      Thread.sleep(20);
    } while (System.nanoTime() < deadline);
    fail(what + " within " + WAIT_S + " s (Describe: " + TextFormat.shortDebugString(d) + ")");
  }
}
