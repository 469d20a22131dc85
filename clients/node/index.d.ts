// Type declarations of @zklock/client (index.js), written by hand.

import { EventEmitter } from 'node:events';
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';

/** The address used when neither the constructor nor $ZKLOCK_ADDR gives one: 127.0.0.1:7878. */
export declare const DEFAULT_ADDR: string;

export interface ClientOptions {
  /** Default insecure, which suits a sidecar on loopback or a unix socket. */
  credentials?: ChannelCredentials;
  /** gRPC channel options, applied after the defaults (keepalive pings every 10 s, 5 s to answer). */
  channelOptions?: ChannelOptions;
}

export interface LockOptions {
  /**
   * How long to wait in the queue, in milliseconds. Default: no bound. 0
   * tries once. When it runs out, lock rejects with NotGrantedError and the
   * caller has left the queue.
   */
  wait?: number;
  /** A shared (read) hold instead of an exclusive one. Default false. */
  shared?: boolean;
  /** A label for humans, shown by Describe. Default none. */
  owner?: string;
  /**
   * Ends the wait: lock rejects with the signal's reason and the caller
   * leaves the queue. No effect once granted.
   */
  signal?: AbortSignal;
  /**
   * Called with the number of contenders ahead and the queue's length when
   * the caller joins the queue and whenever its place changes.
   */
  onQueued?: (position: number, length: number) => void;
}

/** Takes locks through one zklockd. */
export declare class Client {
  /**
   * @param addr host:port, or unix:///path for a socket. Default
   *   $ZKLOCK_ADDR, else 127.0.0.1:7878.
   */
  constructor(addr?: string, options?: ClientOptions);
  /** The zklockd's address. */
  readonly addr: string;
  /**
   * Waits until it holds the lock `name` and resolves to its Lease. Rejects
   * with NotGrantedError when `wait` runs out, with the signal's reason when
   * `signal` aborts, and with LockError otherwise (INVALID_ARGUMENT for a
   * bad name; UNAVAILABLE when zklockd cannot be reached, naming its
   * address, or has no ZooKeeper session).
   */
  lock(name: string, options?: LockOptions): Promise<Lease>;
  /**
   * Takes the lock, runs fn, and releases the lease once fn's promise
   * settles, whatever the outcome. Resolves to fn's result; rejects with
   * fn's error, else with LeaseLostError if the lease was lost meanwhile.
   */
  withLock<T>(name: string, fn: (lease: Lease) => T | Promise<T>, options?: LockOptions): Promise<T>;
  /** Closes the connection. Release the leases first. */
  close(): void;
}

/**
 * A held lock, bound to its Acquire stream: the stream is the lock. It is
 * not proof that no one else holds the lock (a paused process learns of a
 * loss late): send `token` with every write to the protected resource, and
 * have the resource refuse tokens lower than the highest it has seen.
 */
export declare class Lease extends EventEmitter {
  private constructor();
  /** The lock's name. */
  readonly name: string;
  /** The lease id: a secret, the only way to release the lease. */
  readonly id: string;
  /**
   * The fencing token: an int64, so a BigInt (it may exceed
   * Number.MAX_SAFE_INTEGER). It strictly increases across successive
   * holders of the lock. String(token) gives its decimal form.
   */
  readonly token: bigint;
  /** Rejects with LeaseLostError when the lease is lost; never resolves. */
  readonly lost: Promise<never>;
  /** Whether the lease was lost. */
  readonly isLost: boolean;
  /** Why the lease was lost, or null. */
  readonly lostError: LeaseLostError | null;
  /**
   * Releases the lock; resolves once the sidecar confirmed that ZooKeeper
   * deleted its node. Rejects with LeaseLostError if the lease was lost.
   * Releasing again returns the same promise.
   */
  release(options?: { timeout?: number }): Promise<void>;

  /** The sidecar lost contact with ZooKeeper: the lock may be lost; stop writes that carry no fencing token. */
  on(event: 'suspended', listener: () => void): this;
  /** Contact came back within the session: the lock was held throughout. */
  on(event: 'resumed', listener: () => void): this;
  /** The lease is lost (emitted once). */
  on(event: 'lost', listener: (err: LeaseLostError) => void): this;
  once(event: 'suspended' | 'resumed', listener: () => void): this;
  once(event: 'lost', listener: (err: LeaseLostError) => void): this;
}

/** A lock could not be taken or released. */
export declare class LockError extends Error {
  /** The gRPC status's name: 'INVALID_ARGUMENT', 'UNAVAILABLE', ... */
  readonly code: string;
}

/** The lock was not granted within `wait`; the caller has left the queue. code: 'DEADLINE_EXCEEDED'. */
export declare class NotGrantedError extends LockError {
  readonly lock: string;
}

/** A lease was lost. code: 'ABORTED'. */
export declare class LeaseLostError extends LockError {
  readonly lock: string;
  /**
   * The sidecar's reason (LOST_REASON_SHUTDOWN, LOST_REASON_SESSION_EXPIRED,
   * ...), or 'stream broke: CODE' / 'stream ended' when the stream ended
   * without one.
   */
  readonly reason: string;
}
