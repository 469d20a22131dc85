package io.zklock;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.BeforeClass;
import org.junit.Test;

/**
 * What the client does with no zklockd to talk to: every call fails at once, naming the address
 * it could not reach. ({@code *IT} tests check the rest against a running zklockd.)
 */
public class ZkLockClientTest {
  /** A loopback address nothing listens on. */
  private static String nobody;

  @BeforeClass
  public static void freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      nobody = "127.0.0.1:" + s.getLocalPort();
    }
  }

  private static void assertUnreachable(LockException e) {
    assertEquals(Status.Code.UNAVAILABLE, e.code());
    assertEquals("cannot reach zklockd at " + nobody + ": connection refused", e.getMessage());
  }

  @Test(timeout = 60_000)
  public void everyCallNamesTheAddressItCannotReach() throws Exception {
    try (ZkLockClient c = new ZkLockClient(nobody)) {
      assertUnreachable(assertThrows(LockException.class, () -> c.lock("a")));
      assertUnreachable(
          assertThrows(LockException.class, () -> c.lock("a", LockOptions.shared())));
      assertUnreachable(
          assertThrows(LockException.class, () -> c.lock("a", Duration.ofSeconds(5))));
      assertUnreachable(assertThrows(LockException.class, () -> c.tryLock("a")));
      assertUnreachable(
          assertThrows(LockException.class, () -> c.semaphore("a", 2, Duration.ofSeconds(5))));
      assertUnreachable(assertThrows(LockException.class, () -> c.observe("a", s -> {}, null)));
      assertUnreachable(assertThrows(LockException.class, () -> c.election("a").leader()));
    }
  }

  @Test(timeout = 60_000)
  public void theCallersChannelIsNamedByItsAuthorityAndLeftOpen() throws Exception {
    ManagedChannel ch = ManagedChannelBuilder.forTarget(nobody).usePlaintext().build();
    try {
      ZkLockClient c = new ZkLockClient(ch);
      assertUnreachable(assertThrows(LockException.class, () -> c.lock("a")));
      c.close();
      assertFalse("close() shut down the caller's channel", ch.isShutdown());
      // The channel still works for another client.
      try (ZkLockClient again = new ZkLockClient(ch)) {
        assertUnreachable(assertThrows(LockException.class, () -> again.tryLock("a")));
      }
    } finally {
      ch.shutdownNow();
      assertTrue(ch.awaitTermination(10, TimeUnit.SECONDS));
    }
  }

  @Test
  public void lockOptionsAreImmutable() {
    LockOptions ex = LockOptions.exclusive();
    LockOptions named = ex.owner("x");
    assertFalse(ex.isShared());
    assertEquals("", ex.owner());
    assertNull(ex.waitAtMost());
    assertEquals("x", named.owner());
    assertSame(LockOptions.exclusive(), ex);

    LockOptions s = LockOptions.shared().waitAtMost(Duration.ofSeconds(3)).owner("r");
    assertTrue(s.isShared());
    assertEquals(Duration.ofSeconds(3), s.waitAtMost());
    assertEquals("r", s.owner());
    assertNull(s.waitAtMost(null).waitAtMost());
    assertEquals(Duration.ofSeconds(3), s.waitAtMost());
    assertThrows(
        IllegalArgumentException.class,
        () -> LockOptions.exclusive().waitAtMost(Duration.ofSeconds(-1)));
  }
}
