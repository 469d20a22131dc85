package io.zklock;

import com.google.protobuf.Duration;
import io.grpc.Channel;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.zklock.v1.AcquireRequest;
import io.zklock.v1.AcquireResponse;
import io.zklock.v1.LockServiceGrpc;
import io.zklock.v1.Mode;
import io.zklock.v1.ObserveRequest;
import io.zklock.v1.ObserveResponse;
import java.util.Iterator;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Takes zklock locks and semaphores, and observes their holders, through one zklockd sidecar.
 *
 * <pre>{@code
 * try (ZkLockClient client = new ZkLockClient("127.0.0.1:7878");
 *     Lease lease = client.lock("orders/42")) {
 *   write(data, lease.token());
 * }
 * }</pre>
 *
 * <p>{@link #lock(String, LockOptions)} takes a lock shared, or waits at most a given time;
 * {@link #semaphore} takes one of N permits, {@link Lease#reenter()} takes a held lock again,
 * {@link #observe} follows who holds a lock, and {@link #election} elects a leader.
 *
 * <p>A call to a sidecar that cannot be reached fails with {@link LockException} code {@code
 * UNAVAILABLE} and the message "cannot reach zklockd at ADDR: why", such as "connection refused".
 */
public final class ZkLockClient implements AutoCloseable {
  /** The channel this client built and shuts down; null for the caller's. */
  private final ManagedChannel owned;
  /** The sidecar's address, for error messages. */
  private final String target;
  private final LockServiceGrpc.LockServiceBlockingStub stub;

  /** Connects to the zklockd at target, for example "127.0.0.1:7878", in plaintext. */
  public ZkLockClient(String target) {
    // Keepalive pings let a lease notice a sidecar that froze or a dead connection.
    this.owned =
        ManagedChannelBuilder.forTarget(target)
            .usePlaintext()
            .keepAliveTime(10, TimeUnit.SECONDS)
            .keepAliveTimeout(5, TimeUnit.SECONDS)
            .keepAliveWithoutCalls(true)
            .build();
    this.target = target;
    this.stub = LockServiceGrpc.newBlockingStub(owned);
  }

  /**
   * Talks to zklockd over the caller's channel (TLS, a unix socket, interceptors: whatever the
   * caller built). {@link #close()} leaves it open: shutting it down is the caller's job, after
   * the leases on it are closed. Set keepalive on it (as {@link #ZkLockClient(String)} does: 10 s,
   * timeout 5 s, without calls too) so that a lease learns of a sidecar that froze or a dead
   * connection.
   */
  public ZkLockClient(Channel channel) {
    this.owned = null;
    this.target = channel.authority();
    this.stub = LockServiceGrpc.newBlockingStub(channel);
  }

  /**
   * Waits in the queue until the lock name is granted, and returns its lease.
   *
   * @throws InterruptedException if the thread was interrupted while waiting (it then leaves the
   *     queue)
   * @throws LockException what the sidecar answered, or UNAVAILABLE if it cannot be reached
   */
  public Lease lock(String name) throws LockException, InterruptedException {
    return lock(name, LockOptions.exclusive());
  }

  /**
   * Takes the lock name as options say (shared or exclusive, waiting at most how long, with which
   * owner label and lost listener), and returns its lease.
   *
   * @throws InterruptedException if the thread was interrupted while waiting (it then leaves the
   *     queue)
   * @throws LockException DEADLINE_EXCEEDED if the wait ran out ({@link LockException.Held} for a
   *     wait of zero), what the sidecar answered, or UNAVAILABLE if it cannot be reached
   */
  public Lease lock(String name, LockOptions options) throws LockException, InterruptedException {
    try {
      return acquire(
          name,
          options.waitAtMost(),
          options.isShared(),
          options.owner(),
          options.onLost(),
          0,
          "");
    } catch (LockException e) {
      if (e.code() == Status.Code.CANCELLED && Thread.interrupted()) {
        InterruptedException ie = new InterruptedException("interrupted while waiting for " + name);
        ie.initCause(e);
        throw ie;
      }
      throw e;
    }
  }

  /**
   * Waits at most timeout in the queue for the lock name and returns its lease.
   *
   * @throws LockException DEADLINE_EXCEEDED if the wait ran out, CANCELLED if the thread was
   *     interrupted (it stays interrupted), or what the sidecar answered
   */
  public Lease lock(String name, java.time.Duration timeout) throws LockException {
    return acquire(name, timeout, false, "", null, 0, "");
  }

  /**
   * Waits at most timeout for the lock name; owner labels it for Describe, and onLost is called
   * with the reason if the lock is lost while held.
   */
  public Lease lock(String name, java.time.Duration timeout, String owner, Consumer<String> onLost)
      throws LockException {
    return acquire(name, timeout, false, owner, onLost, 0, "");
  }

  /**
   * Takes the lock name if nobody holds it.
   *
   * @throws LockException.Held if another holds it
   */
  public Lease tryLock(String name) throws LockException {
    return acquire(name, java.time.Duration.ZERO, false, "", null, 0, "");
  }

  /**
   * Waits at most timeout for one of the permits of the semaphore name and returns its lease:
   * at most permits holders hold it at once, served first come first served, each with a fencing
   * token of its own. Every contender of name must ask for the same number of permits.
   *
   * @throws LockException FAILED_PRECONDITION if the present contenders of name agreed on another
   *     number of permits (or hold it as a lock); DEADLINE_EXCEEDED if the wait ran out
   *     ({@link LockException.Held} for a timeout of zero); or what the sidecar answered
   */
  public Lease semaphore(String name, int permits, java.time.Duration timeout)
      throws LockException {
    return semaphore(name, permits, timeout, "", null);
  }

  /**
   * Like {@link #semaphore(String, int, java.time.Duration)}; owner labels the hold for Describe,
   * and onLost is called with the reason if the permit is lost while held.
   */
  public Lease semaphore(
      String name,
      int permits,
      java.time.Duration timeout,
      String owner,
      Consumer<String> onLost)
      throws LockException {
    if (permits < 1) {
      throw new IllegalArgumentException("permits must be at least 1, not " + permits);
    }
    return acquire(name, timeout, false, owner, onLost, permits, "");
  }

  /**
   * Re-enters the lock name through leaseId, the id of a lease held on it (such as
   * $ZKLOCK_LEASE under {@code zklock run}), and returns a new lease at once, with the same
   * fencing token. The lock stays held until that lease and every lease that re-entered it are
   * closed; a loss ends them all. {@link Lease#reenter()} does the same with a Lease.
   *
   * @throws LockException NOT_FOUND if the sidecar knows no such lease (or it was released);
   *     ABORTED if it was lost; INVALID_ARGUMENT if it is a lease of another lock; or what the
   *     sidecar answered
   */
  public Lease reenter(String name, String leaseId, Consumer<String> onLost)
      throws LockException {
    if (leaseId.isEmpty()) {
      throw new IllegalArgumentException("empty lease id");
    }
    return acquire(name, null, false, "", onLost, 0, leaseId);
  }

  /**
   * Observes who holds the lock (or semaphore) name: onChange is called with its present state,
   * then each time its set of holders changes, on a thread of the observation's own, one call at
   * a time. It sees holders of every kind of client on that path (zklock sidecars, Curator,
   * Kazoo). If the sidecar ends the observation (UNAVAILABLE when it lost its ZooKeeper session or
   * shuts down: observe again), onEnd, which may be null, is called once with why. Returns once
   * the present state arrived.
   *
   * @throws LockException INVALID_ARGUMENT for a bad name, what the sidecar answered, or
   *     UNAVAILABLE if it cannot be reached
   */
  public Observation observe(
      String name, Consumer<LockState> onChange, Consumer<LockException> onEnd)
      throws LockException {
    Context.CancellableContext call = Context.ROOT.withCancellation();
    Context prev = call.attach();
    try {
      Iterator<ObserveResponse> states =
          stub.observe(ObserveRequest.newBuilder().setLock(name).build());
      if (!states.hasNext()) {
        call.cancel(null);
        throw new LockException(Status.Code.UNAVAILABLE, "stream ended before the first state");
      }
      LockState first = LockState.of(states.next());
      return new Observation(this, call, states, first, onChange, onEnd);
    } catch (StatusRuntimeException e) {
      call.cancel(null);
      throw error(e);
    } catch (RuntimeException | Error e) {
      call.cancel(e);
      throw e;
    } finally {
      call.detach(prev);
    }
  }

  /**
   * Returns the leader election on the lock name: campaign, follow the leader, resign by closing
   * the lease.
   */
  public Election election(String name) {
    return new Election(this, name);
  }

  /** A unary call to the sidecar. */
  interface Unary<T> {
    T call(LockServiceGrpc.LockServiceBlockingStub stub);
  }

  /** Makes a unary call, turning its status into a LockException. */
  <T> T call(Unary<T> f) throws LockException {
    try {
      return f.call(stub);
    } catch (StatusRuntimeException e) {
      throw error(e);
    }
  }

  /**
   * Turns a failed call's status into a LockException. A status with a cause was made on this
   * side (a server's status carries none): for UNAVAILABLE, the sidecar could not be reached.
   */
  LockException error(StatusRuntimeException e) {
    Status st = e.getStatus();
    if (st.getCode() == Status.Code.UNAVAILABLE && st.getCause() != null) {
      return LockException.unreachable(target, why(st), e);
    }
    return new LockException(st.getCode(), st.getDescription(), e);
  }

  /**
   * Says why a connection failed, from the innermost cause: "connection refused" rather than
   * Netty's "Connection refused: /127.0.0.1:7878" (the address is said already).
   */
  private static String why(Status st) {
    Throwable c = st.getCause();
    while (c.getCause() != null && c.getCause() != c) {
      c = c.getCause();
    }
    String m = c.getMessage();
    if (m == null || m.isEmpty()) {
      return st.getDescription() != null ? st.getDescription() : c.getClass().getSimpleName();
    }
    int at = m.indexOf(": /");
    if (at > 0) {
      m = m.substring(0, at);
    }
    return Character.toLowerCase(m.charAt(0)) + m.substring(1);
  }

  /**
   * Acquires name: waiting at most wait (null: no bound; a re-entry is granted at once or fails),
   * shared or with the default mode (exclusive, or a re-entered lease's), as a semaphore of permits
   * if permits > 1, re-entering the lease reenter unless it is empty. An interrupt of the waiting
   * thread leaves the queue and throws CANCELLED, the thread still interrupted.
   */
  private Lease acquire(
      String name,
      java.time.Duration wait,
      boolean shared,
      String owner,
      Consumer<String> onLost,
      int permits,
      String reenter)
      throws LockException {
    AcquireRequest.Builder req =
        AcquireRequest.newBuilder()
            .setLock(name)
            .setOwner(owner)
            .setPermits(permits)
            .setReenter(reenter);
    if (shared) {
      req.setMode(Mode.MODE_SHARED);
    }
    if (wait != null) {
      req.setWait(Duration.newBuilder().setSeconds(wait.getSeconds()).setNanos(wait.getNano()));
    }
    // The call outlives this method: it is the lease. Cancelling its context ends it. It hangs
    // from ROOT, so that the caller's own call (deadline, cancellation) does not end it.
    Context.CancellableContext call = Context.ROOT.withCancellation();
    Context prev = call.attach();
    try {
      Iterator<AcquireResponse> events = stub.acquire(req.build());
      while (events.hasNext()) {
        AcquireResponse ev = events.next();
        if (ev.hasGranted()) {
          return new Lease(
              this,
              name,
              stub,
              call,
              events,
              ev.getGranted().getLeaseId(),
              ev.getGranted().getFencingToken(),
              onLost);
        }
      }
      call.cancel(null);
      throw new LockException(Status.Code.UNKNOWN, "stream ended before the grant");
    } catch (StatusRuntimeException e) {
      call.cancel(null);
      Status st = e.getStatus();
      if (st.getCode() == Status.Code.DEADLINE_EXCEEDED && wait != null && wait.isZero()) {
        throw new LockException.Held(st.getDescription());
      }
      throw error(e);
    } catch (RuntimeException | Error e) {
      // Anything else leaves no lease behind to release: end the call.
      call.cancel(e);
      throw e;
    } finally {
      call.detach(prev);
    }
  }

  /**
   * Shuts down the channel this client built (waiting at most 5 s for its calls to end, which
   * ends the leases still open), or does nothing to a channel the caller gave.
   */
  @Override
  public void close() throws InterruptedException {
    if (owned == null) {
      return;
    }
    owned.shutdown();
    if (!owned.awaitTermination(5, TimeUnit.SECONDS)) {
      owned.shutdownNow();
    }
  }
}
