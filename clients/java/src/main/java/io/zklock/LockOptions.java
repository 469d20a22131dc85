package io.zklock;

import java.time.Duration;
import java.util.function.Consumer;

/**
 * How {@link ZkLockClient#lock(String, LockOptions)} takes a lock: exclusive or shared, how long it
 * waits, the owner label Describe shows, and who hears of a loss. Immutable: each method returns a
 * copy.
 *
 * <pre>{@code
 * client.lock("reports/daily", LockOptions.shared().owner("report-7").waitAtMost(Duration.ofSeconds(30)));
 * }</pre>
 */
public final class LockOptions {
  private static final LockOptions EXCLUSIVE = new LockOptions(false, "", null, null);
  private static final LockOptions SHARED = new LockOptions(true, "", null, null);

  private final boolean shared;
  private final String owner;
  private final Duration wait;
  private final Consumer<String> onLost;

  private LockOptions(boolean shared, String owner, Duration wait, Consumer<String> onLost) {
    this.shared = shared;
    this.owner = owner;
    this.wait = wait;
    this.onLost = onLost;
  }

  /** An exclusive lock (one holder at a time), waited for until granted or interrupted. */
  public static LockOptions exclusive() {
    return EXCLUSIVE;
  }

  /**
   * A shared (read) lock: held by any number of shared holders at once, while no exclusive
   * contender is ahead of them in the queue. Waited for until granted or interrupted.
   */
  public static LockOptions shared() {
    return SHARED;
  }

  /** Labels the hold for Describe and Observe (at most 256 bytes of UTF-8). */
  public LockOptions owner(String owner) {
    if (owner == null) {
      throw new NullPointerException("owner");
    }
    return new LockOptions(shared, owner, wait, onLost);
  }

  /**
   * Waits at most wait in the queue: {@link LockException} with {@code DEADLINE_EXCEEDED} after
   * it, and for {@link Duration#ZERO} (try once) {@link LockException.Held} if the lock is held.
   * Null waits until granted or interrupted, the default.
   */
  public LockOptions waitAtMost(Duration wait) {
    if (wait != null && wait.isNegative()) {
      throw new IllegalArgumentException("negative wait " + wait);
    }
    return new LockOptions(shared, owner, wait, onLost);
  }

  /**
   * Calls onLost with the reason if the lock is lost while held, on the lease's own thread (null:
   * nobody).
   */
  public LockOptions onLost(Consumer<String> onLost) {
    return new LockOptions(shared, owner, wait, onLost);
  }

  /** Returns whether the lock is taken shared. */
  public boolean isShared() {
    return shared;
  }

  /** Returns the owner label ("" for none). */
  public String owner() {
    return owner;
  }

  /** Returns the longest wait, or null for no bound. */
  public Duration waitAtMost() {
    return wait;
  }

  Consumer<String> onLost() {
    return onLost;
  }
}
