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
  /**
   * N > 1 makes the name a semaphore of N permits: at most N holders at
   * once, each with a token of its own. Every contender must ask for the
   * same N (else LockError FAILED_PRECONDITION naming both). Default 0, a
   * lock.
   */
  permits?: number;
  /**
   * Re-entry: the id of a lease that holds this lock (say, $ZKLOCK_LEASE).
   * Granted at once with the same token and an id of its own; the lock
   * stays held until every such lease ended. Rejects with LockError
   * NOT_FOUND (unknown or released lease) or ABORTED (lost).
   */
  reenter?: string;
  /**
   * The lease outlives its stream: it lives `ttl` after its grant and each
   * renew, and ends with release or when ttl passes without a renew.
   */
  detach?: boolean;
  /** A detached lease's time to live, in milliseconds. Default the sidecar's (15 s unless configured). */
  ttl?: number;
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
  /**
   * Takes the lock `name` with owner `value` and resolves once the caller
   * leads the election: followers see `value` (leader, observeLeader).
   * Release the lease to resign.
   */
  campaign(name: string, value: string, options?: Omit<LockOptions, 'owner'>): Promise<Lease>;
  /** Who leads the election `name` now (the lock's first holder), or null. */
  leader(name: string, options?: { timeout?: number }): Promise<Holder | null>;
  /**
   * The present leader of the election `name` (null: none), then each new
   * one. Ends as observe's iteration does.
   */
  observeLeader(name: string, options?: { signal?: AbortSignal }): AsyncIterable<Holder | null>;
  /**
   * The present state of the lock `name`, then one each time its holders
   * change. Ends without error when `signal` aborts; throws LockError
   * (UNAVAILABLE when the sidecar ends it: observe again; INVALID_ARGUMENT
   * for a bad name).
   */
  observe(name: string, options?: { signal?: AbortSignal }): AsyncIterable<LockState>;
  /** The lock's holders and waiters in queue order, and a semaphore's permits. */
  describe(name: string, options?: { timeout?: number }): Promise<LockDescription>;
  /**
   * Renews the detached lease `leaseId` by its ttl; resolves to its new
   * expiry. Rejects with LeaseLostError if it was lost or is unknown.
   * `signal` cancels the call (LockError CANCELLED).
   */
  renew(leaseId: string, options?: { timeout?: number; signal?: AbortSignal }): Promise<Date>;
  /**
   * Releases the lease `leaseId` once ZooKeeper deleted its node; twice
   * succeeds. Rejects with LeaseLostError if it was lost.
   */
  release(leaseId: string, options?: { timeout?: number }): Promise<void>;
  /**
   * Closes the client. Release the leases first: a lease not released is
   * lost from then on (LeaseLostError, reason 'client closed'; 'lost' is
   * emitted), so that none still believes it holds its lock. A stream-bound
   * one's stream is cancelled, which makes the sidecar release it at once;
   * a detached one lives on at the sidecar until its ttl passes (renew or
   * release it by id through another client). A lock() still waiting
   * rejects with LockError CANCELLED; observations end without error; calls
   * after close() reject with LockError CANCELLED.
   */
  close(): void;
}

/** One holder of a lock, as Describe and Observe show it. */
export interface Holder {
  /** The label it gave (the leader's value in an election), or a non-zklock client's node data as text. */
  readonly owner: string;
  /** Its fencing token. */
  readonly token: bigint;
  readonly mode: 'exclusive' | 'shared';
  /** Its node's name in ZooKeeper, unique to one hold. */
  readonly node: string;
  /** When it joined the queue. */
  readonly joined: Date | null;
  /** In describe and leader, its leases through re-entry beyond the first (this sidecar's holds only); 0 in observe. */
  readonly reentered: number;
}

/** A lock as describe shows it. */
export interface LockDescription {
  /** The holders, in queue order. */
  readonly holders: Holder[];
  /** The waiters, first in line first. */
  readonly waiters: Holder[];
  /** A semaphore's permits; 0 for a lock. */
  readonly permits: number;
}

/** Who holds a lock, as observe reports it. */
export interface LockState {
  /** In queue order: for an exclusive lock at most one; for a semaphore up to its permits. */
  readonly holders: Holder[];
  /** Contenders in the queue, the holders included. */
  readonly queueLength: number;
  /** A semaphore's permits; 0 for a lock. */
  readonly permits: number;
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
  /** The lease id: a secret, the only way to renew or release the lease. */
  readonly id: string;
  /** Whether the lease outlives its stream (`detach`). */
  readonly detached: boolean;
  /** When a detached lease expires unless renewed (sidecar's clock); null for a stream-bound one. */
  readonly expiresAt: Date | null;
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
  /**
   * Takes the lock again through this lease: at once, same token, an id of
   * its own, released on its own. Options as for lock.
   */
  reenter(options?: Omit<LockOptions, 'reenter'>): Promise<Lease>;
  /**
   * Renews a detached lease; resolves to its new expiry. Rejects with
   * LeaseLostError (and 'lost' is emitted) if it was lost.
   */
  renew(options?: { timeout?: number; signal?: AbortSignal }): Promise<Date>;
  /**
   * Renews a detached lease when a third of the time left has passed (at
   * most every 100 ms; within 1 s after a renew that failed without an
   * answer; each renew may take until the expiry), until `signal` aborts
   * or the lease is released (resolves), or it is lost (rejects with
   * LeaseLostError; 'lost' is emitted). Once the expiry passes without a
   * confirmed renew (the sidecar is gone or does not answer), the lease is
   * lost: reason 'its ttl passed without a confirmed renew'.
   */
  keepAlive(options?: { signal?: AbortSignal }): Promise<void>;

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
  /** The lock's name; null from client.renew and client.release, which know only the id. */
  readonly lock: string | null;
  /**
   * The sidecar's reason (LOST_REASON_SHUTDOWN, LOST_REASON_SESSION_EXPIRED,
   * ...), or 'stream broke: CODE' / 'stream ended' when the stream ended
   * without one, 'its ttl passed without a confirmed renew' (keepAlive of a
   * detached lease), 'client closed' (close()).
   */
  readonly reason: string;
}
