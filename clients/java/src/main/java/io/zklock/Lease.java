package io.zklock;

import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.zklock.v1.AcquireResponse;
import io.zklock.v1.LockServiceGrpc;
import io.zklock.v1.ReleaseRequest;
import java.util.Iterator;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A held lock, or a permit of a semaphore. The lease keeps the sidecar's Acquire stream open
 * until {@link #close()}: the stream is the lock, so there is nothing to renew. If the lock is lost
 * meanwhile, {@link #isLost()} turns true and the lost listener is called with the reason.
 *
 * <p>A lease is not proof that no one else holds the lock: a paused process may learn of a loss
 * late. Send {@link #token()} with every write to the protected resource, and have the resource
 * refuse tokens lower than the highest it has seen.
 */
public final class Lease implements AutoCloseable {
  private final ZkLockClient client;
  private final String name;
  private final LockServiceGrpc.LockServiceBlockingStub stub;
  private final Context.CancellableContext call;
  private final String id;
  private final long token;
  private final Consumer<String> onLost;
  private final Thread follower;
  private volatile boolean released;
  private volatile String lostReason;

  Lease(
      ZkLockClient client,
      String name,
      LockServiceGrpc.LockServiceBlockingStub stub,
      Context.CancellableContext call,
      Iterator<AcquireResponse> events,
      String id,
      long token,
      Consumer<String> onLost) {
    this.client = client;
    this.name = name;
    this.stub = stub;
    this.call = call;
    this.id = id;
    this.token = token;
    this.onLost = onLost;
    this.follower = new Thread(() -> follow(events), "zklock-lease");
    this.follower.setDaemon(true);
    this.follower.start();
  }

  /** Returns the fencing token: it strictly increases across successive holders of the lock. */
  public long token() {
    return token;
  }

  /** Returns the lease id, a secret that releases the lease. */
  public String id() {
    return id;
  }

  /** Returns the name of the lock (or semaphore) this lease holds. */
  public String name() {
    return name;
  }

  /**
   * Takes the lock again through this lease, as code that holds it and calls code that locks it
   * too would: returns at once a new lease with the same token and an id of its own. The lock
   * stays held until this lease and every lease that re-entered it are closed, in any order; a
   * loss ends them all. For a semaphore, the new lease shares this one's permit.
   *
   * @throws LockException NOT_FOUND if this lease was closed, ABORTED if it was lost, or what the
   *     sidecar answered
   */
  public Lease reenter() throws LockException {
    return reenter(null);
  }

  /** Like {@link #reenter()}; onLost is called with the reason if the new lease is lost. */
  public Lease reenter(Consumer<String> onLost) throws LockException {
    return client.reenter(name, id, onLost);
  }

  /** Returns whether the lock was lost: it may be held by another from then on. */
  public boolean isLost() {
    return lostReason != null;
  }

  /** Returns why the lock was lost, or null. */
  public String lostReason() {
    return lostReason;
  }

  private void follow(Iterator<AcquireResponse> events) {
    try {
      while (events.hasNext()) {
        AcquireResponse ev = events.next();
        if (ev.hasLost()) {
          lose(ev.getLost().getReason().name());
        }
      }
      if (!released) {
        lose("stream ended");
      }
    } catch (StatusRuntimeException e) {
      if (!released) {
        lose("stream broke: " + e.getStatus().getCode());
      }
    }
  }

  private void lose(String reason) {
    synchronized (this) {
      if (lostReason != null) {
        return;
      }
      lostReason = reason;
    }
    // Outside the lock: the listener may wait for a thread that calls close().
    if (onLost != null) {
      onLost.accept(reason);
    }
  }

  /**
   * Releases the lock and returns once ZooKeeper deleted its node. Closing a lease again has no
   * effect.
   *
   * @throws LockException ABORTED if the lease was lost, whatever the sidecar answers (one that saw
   *     the stream end counts it as released); the sidecar's code if the release failed
   */
  @Override
  public void close() throws LockException {
    synchronized (this) {
      if (released) {
        return;
      }
      released = true;
    }
    try {
      if (isLost()) {
        throw lostException(); // ending the stream releases whatever is left
      }
      stub.withDeadlineAfter(10, TimeUnit.SECONDS)
          .release(ReleaseRequest.newBuilder().setLeaseId(id).build());
    } catch (StatusRuntimeException e) {
      if (isLost()) {
        throw lostException();
      }
      throw client.error(e);
    } finally {
      call.cancel(null);
      // Wait for the stream's thread, unless the lease is lost: that thread
      // is then done, or in the lost listener, which may be waiting for
      // this very call.
      if (!isLost() && Thread.currentThread() != follower) {
        try {
          follower.join(10_000);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }
    if (isLost()) {
      throw lostException(); // lost while releasing
    }
  }

  private LockException lostException() {
    return new LockException(Status.Code.ABORTED, "lease lost: " + lostReason);
  }
}
