package io.zklock;

import com.google.protobuf.Duration;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.zklock.v1.AcquireRequest;
import io.zklock.v1.AcquireResponse;
import io.zklock.v1.LockServiceGrpc;
import java.util.Iterator;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Takes zklock locks through one zklockd sidecar.
 *
 * <pre>{@code
 * try (ZkLockClient client = new ZkLockClient("127.0.0.1:7878");
 *     Lease lease = client.lock("orders/42", java.time.Duration.ofSeconds(30))) {
 *   write(data, lease.token());
 * }
 * }</pre>
 */
public final class ZkLockClient implements AutoCloseable {
  private final ManagedChannel channel;
  private final LockServiceGrpc.LockServiceBlockingStub stub;

  /** Connects to the zklockd at target, for example "127.0.0.1:7878". */
  public ZkLockClient(String target) {
    // Keepalive pings let a lease notice a sidecar that froze or a dead connection.
    this.channel =
        ManagedChannelBuilder.forTarget(target)
            .usePlaintext()
            .keepAliveTime(10, TimeUnit.SECONDS)
            .keepAliveTimeout(5, TimeUnit.SECONDS)
            .keepAliveWithoutCalls(true)
            .build();
    this.stub = LockServiceGrpc.newBlockingStub(channel);
  }

  /**
   * Waits at most timeout in the queue for the lock name and returns its lease.
   *
   * @throws LockException DEADLINE_EXCEEDED if the wait ran out, or what the sidecar answered
   */
  public Lease lock(String name, java.time.Duration timeout) throws LockException {
    return acquire(name, timeout, "", null);
  }

  /**
   * Waits at most timeout for the lock name; owner labels it for Describe, and onLost is called
   * with the reason if the lock is lost while held.
   */
  public Lease lock(String name, java.time.Duration timeout, String owner, Consumer<String> onLost)
      throws LockException {
    return acquire(name, timeout, owner, onLost);
  }

  /**
   * Takes the lock name if nobody holds it.
   *
   * @throws LockException.Held if another holds it
   */
  public Lease tryLock(String name) throws LockException {
    return acquire(name, java.time.Duration.ZERO, "", null);
  }

  private Lease acquire(
      String name, java.time.Duration wait, String owner, Consumer<String> onLost)
      throws LockException {
    AcquireRequest req =
        AcquireRequest.newBuilder()
            .setLock(name)
            .setOwner(owner)
            .setWait(
                Duration.newBuilder().setSeconds(wait.getSeconds()).setNanos(wait.getNano()))
            .build();
    // The call outlives this method: it is the lease. Cancelling its context ends it. It hangs
    // from ROOT, so that the caller's own call (deadline, cancellation) does not end it.
    Context.CancellableContext call = Context.ROOT.withCancellation();
    Context prev = call.attach();
    try {
      Iterator<AcquireResponse> events = stub.acquire(req);
      while (events.hasNext()) {
        AcquireResponse ev = events.next();
        if (ev.hasGranted()) {
          return new Lease(
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
      if (st.getCode() == Status.Code.DEADLINE_EXCEEDED && wait.isZero()) {
        throw new LockException.Held(st.getDescription());
      }
      throw new LockException(st.getCode(), st.getDescription());
    } catch (RuntimeException | Error e) {
      // Anything else leaves no lease behind to release: end the call.
      call.cancel(e);
      throw e;
    } finally {
      call.detach(prev);
    }
  }

  @Override
  public void close() throws InterruptedException {
    channel.shutdown();
    if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
      channel.shutdownNow();
    }
  }
}
