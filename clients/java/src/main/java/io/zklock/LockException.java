package io.zklock;

import io.grpc.Status;

/** A lock could not be taken or released; {@link #code()} is the gRPC status code. */
public class LockException extends Exception {
  private final Status.Code code;

  public LockException(Status.Code code, String message) {
    super(code + ": " + message);
    this.code = code;
  }

  /** Returns the gRPC status code the sidecar answered. */
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
