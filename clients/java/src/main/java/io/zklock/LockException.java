package io.zklock;

import io.grpc.Status;

/**
 * A lock could not be taken or released; {@link #code()} is the gRPC status code. The message is
 * "CODE: what the sidecar said", or "cannot reach zklockd at ADDR: why" (code UNAVAILABLE) when no
 * sidecar answered there.
 */
public class LockException extends Exception {
  private final Status.Code code;

  public LockException(Status.Code code, String message) {
    this(code, message, null);
  }

  LockException(Status.Code code, String message, Throwable cause) {
    this(cause, code, code + ": " + message);
  }

  private LockException(Throwable cause, Status.Code code, String whole) {
    super(whole, cause);
    this.code = code;
  }

  /** The sidecar at target did not answer: why is what the connection said. */
  static LockException unreachable(String target, String why, Throwable cause) {
    return new LockException(
        cause, Status.Code.UNAVAILABLE, "cannot reach zklockd at " + target + ": " + why);
  }

  /** Returns the gRPC status code the sidecar answered (UNAVAILABLE if it could not be reached). */
  public Status.Code code() {
    return code;
  }

  /** Thrown by {@link ZkLockClient#tryLock} when another holds the lock. */
  public static final class Held extends LockException {
    public Held(String message) {
      super(Status.Code.DEADLINE_EXCEEDED, message);
    }
  }
}
