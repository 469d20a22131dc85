package io.zklock;

import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.zklock.v1.ObserveResponse;
import java.util.Iterator;
import java.util.function.Consumer;

/**
 * An open Observe call: its listener is called, on a thread of its own and in order, with the
 * lock's present state and then each time its set of holders changes, until {@link #close()}.
 * Changes closer together than a ZooKeeper round trip may be reported as one.
 */
public final class Observation implements AutoCloseable {
  private final Context.CancellableContext call;
  private final Thread follower;
  private volatile boolean closed;

  Observation(
      ZkLockClient client,
      Context.CancellableContext call,
      Iterator<ObserveResponse> states,
      LockState first,
      Consumer<LockState> onChange,
      Consumer<LockException> onEnd) {
    this.call = call;
    this.follower =
        new Thread(() -> follow(client, states, first, onChange, onEnd), "zklock-observe");
    this.follower.setDaemon(true);
    this.follower.start();
  }

  private void follow(
      ZkLockClient client,
      Iterator<ObserveResponse> states,
      LockState first,
      Consumer<LockState> onChange,
      Consumer<LockException> onEnd) {
    LockException end;
    try {
      onChange.accept(first);
      while (states.hasNext()) {
        ObserveResponse r = states.next();
        if (closed) {
          return;
        }
        onChange.accept(LockState.of(r));
      }
      end = new LockException(Status.Code.UNAVAILABLE, "the sidecar ended the observation");
    } catch (StatusRuntimeException e) {
      end = client.error(e);
    }
    if (!closed && onEnd != null) {
      onEnd.accept(end);
    }
  }

  /**
   * Ends the observation. Unless called from the listener, it returns once the listener is done
   * (waiting at most 10 s for a call in progress); the listener is not called again, and the end
   * listener not at all. Closing again has no effect.
   */
  @Override
  public void close() {
    closed = true;
    call.cancel(null);
    if (Thread.currentThread() != follower) {
      try {
        follower.join(10_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
