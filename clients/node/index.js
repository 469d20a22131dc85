'use strict';
// Node.js client of zklockd, the zklock sidecar: fair, fenced distributed
// locks on ZooKeeper over gRPC, without a ZooKeeper client.
//
// A Lease holds the sidecar's Acquire stream open for its whole life: the
// stream is the lock, so there is nothing to renew. If the stream breaks
// (the sidecar or the connection went away) the lease is lost.
//
// A Lease is not proof that no one else holds the lock: a paused process may
// learn of a loss late. Send lease.token with every write to the protected
// resource, and have the resource refuse tokens lower than the highest it
// has seen.
//
// The API is loaded at run time by @grpc/proto-loader from proto/, a copy of
// api/zklock/v1/lock.proto that `make generate` keeps.

const { EventEmitter } = require('node:events');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

/** The address used when neither the constructor nor $ZKLOCK_ADDR gives one. */
const DEFAULT_ADDR = '127.0.0.1:7878';

// int64 fields (fencing tokens) arrive as decimal strings, made BigInts
// below; enums as their names; the oneof's field name in `event`.
// protobufjs bundles the well-known types (Duration, Timestamp): nothing is
// read beyond proto/.
const definition = protoLoader.loadSync('zklock/v1/lock.proto', {
  includeDirs: [path.join(__dirname, 'proto')],
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const LockService = grpc.loadPackageDefinition(definition).zklock.v1.LockService;

/**
 * A lock could not be taken or released. `code` is the gRPC status's name
 * ('INVALID_ARGUMENT', 'UNAVAILABLE', ...).
 */
class LockError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'LockError';
    this.code = code;
  }
}

/**
 * The lock was not granted within `wait` (for wait 0: it was held). The
 * caller has left the queue. `code` is 'DEADLINE_EXCEEDED'.
 */
class NotGrantedError extends LockError {
  constructor(lock, wait) {
    super('DEADLINE_EXCEEDED', wait === 0
      ? `zklock: ${lock} is held by another`
      : `zklock: ${lock} was not granted within ${wait} ms`);
    this.name = 'NotGrantedError';
    this.lock = lock;
  }
}

/**
 * The lease is lost: another may hold the lock from then on. `reason` is
 * the sidecar's (LOST_REASON_SHUTDOWN, LOST_REASON_SESSION_EXPIRED, ...) or
 * 'stream broke: CODE' / 'stream ended' when the stream ended without one.
 * `code` is 'ABORTED'.
 */
class LeaseLostError extends LockError {
  constructor(lock, reason) {
    super('ABORTED', `zklock: lease of ${lock} lost: ${reason}`);
    this.name = 'LeaseLostError';
    this.lock = lock;
    this.reason = reason;
  }
}

// gRPC's own messages for a connection to zklockd that could not be made,
// as opposed to zklockd's answers (which carry UNAVAILABLE too).
const UNREACHABLE = /No connection established|ECONNREFUSED|ENOENT|ECONNRESET|EHOSTUNREACH|ETIMEDOUT|Failed to connect|Connection dropped/;

// toLockError turns a gRPC error or status into a LockError.
function toLockError(addr, err) {
  const code = grpc.status[err.code] ?? 'UNKNOWN';
  const details = err.details || err.message || '';
  if (err.code === grpc.status.UNAVAILABLE && UNREACHABLE.test(details)) {
    const m = /Last error: (?:Error: )?(.*?)(?:\. Resolution note|$)/.exec(details);
    return new LockError(code, `zklock: cannot reach zklockd at ${addr}: ${m ? m[1] : details}`);
  }
  return new LockError(code, `zklock: ${code}: ${details}`);
}

function duration(ms) {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/**
 * Takes locks through one zklockd.
 */
class Client {
  #api;

  /**
   * @param {string} [addr] host:port, or unix:///path for a socket. Default
   *   $ZKLOCK_ADDR, else 127.0.0.1:7878.
   * @param {object} [options]
   * @param {grpc.ChannelCredentials} [options.credentials] default insecure,
   *   which suits a sidecar on loopback or a unix socket.
   * @param {object} [options.channelOptions] gRPC channel options, after
   *   the defaults (keepalive pings every 10 s, 5 s to answer, so that a
   *   lease learns within about 15 s that its sidecar froze or its
   *   connection died).
   */
  constructor(addr, options = {}) {
    this.addr = addr || process.env.ZKLOCK_ADDR || DEFAULT_ADDR;
    this.#api = new LockService(this.addr, options.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 10000,
      'grpc.keepalive_timeout_ms': 5000,
      'grpc.keepalive_permit_without_calls': 1,
      ...options.channelOptions,
    });
  }

  /**
   * Waits until it holds the lock `name`, and resolves to its Lease.
   *
   * Options: `wait` bounds the wait in the queue, in milliseconds (default:
   * no bound; 0 tries once): when it runs out the promise rejects with
   * NotGrantedError and the caller has left the queue. `shared` asks for a
   * shared (read) hold. `owner` labels the hold for humans (Describe shows
   * it). `signal`, an AbortSignal, ends the wait: the promise rejects with
   * the signal's reason and the caller leaves the queue (it has no effect
   * once granted). `onQueued(position, length)` is called when the caller
   * joins the queue and whenever its place changes.
   *
   * Other failures reject with LockError: INVALID_ARGUMENT for a bad name,
   * UNAVAILABLE when zklockd cannot be reached (the message names the
   * address) or has no ZooKeeper session.
   */
  lock(name, options = {}) {
    const { wait, shared = false, owner = '', signal, onQueued } = options;
    if (wait !== undefined && wait !== null && !(typeof wait === 'number' && wait >= 0 && Number.isFinite(wait))) {
      return Promise.reject(new TypeError(`zklock: wait must be a number of milliseconds >= 0, not ${wait}`));
    }
    if (signal?.aborted) {
      return Promise.reject(signal.reason);
    }
    const req = { lock: name, owner, mode: shared ? 'MODE_SHARED' : 'MODE_EXCLUSIVE' };
    if (wait !== undefined && wait !== null) {
      req.wait = duration(wait);
    }
    return new Promise((resolve, reject) => {
      const call = this.#api.Acquire(req);
      let lease = null;
      let failed = false;
      const fail = (err) => {
        if (!failed) {
          failed = true;
          signal?.removeEventListener('abort', onAbort);
          call.cancel();
          reject(err);
        }
      };
      const onAbort = () => fail(signal.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      call.on('error', () => {}); // every end is handled on 'status'
      call.on('data', (ev) => {
        if (lease) {
          lease._event(ev);
          return;
        }
        if (failed) {
          return;
        }
        if (ev.event === 'queued') {
          if (onQueued) {
            try {
              onQueued(ev.queued.position, ev.queued.queueLength);
            } catch (err) {
              fail(err);
            }
          }
        } else if (ev.event === 'granted') {
          signal?.removeEventListener('abort', onAbort);
          lease = new Lease(this, name, call, ev.granted);
          resolve(lease);
        }
      });
      call.on('status', (st) => {
        if (lease) {
          lease._end(st);
        } else if (st.code === grpc.status.DEADLINE_EXCEEDED) {
          fail(new NotGrantedError(name, wait));
        } else if (st.code === grpc.status.OK) {
          fail(new LockError('UNKNOWN', `zklock: the stream of ${name} ended before the grant`));
        } else {
          fail(toLockError(this.addr, st));
        }
      });
    });
  }

  /**
   * Takes the lock `name` (options as for lock), runs `fn(lease)`, and
   * releases the lease once fn's promise settles, whatever the outcome.
   * Resolves to fn's result. If fn throws, withLock rejects with fn's
   * error; else, if the lease was lost meanwhile, with LeaseLostError.
   */
  async withLock(name, fn, options) {
    const lease = await this.lock(name, options);
    let result;
    try {
      result = await fn(lease);
    } catch (err) {
      await lease.release().catch(() => {});
      throw err;
    }
    await lease.release();
    return result;
  }

  /** @internal */
  _release(leaseId, deadline) {
    return new Promise((resolve, reject) => {
      this.#api.Release({ leaseId }, { deadline }, (err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * Closes the connection. Release the leases first: a stream-bound lease
   * whose connection closes is released by the sidecar.
   */
  close() {
    this.#api.close();
  }
}

/**
 * A held lock. Release it when done; it is lost if the sidecar says so or
 * its stream breaks.
 *
 * Events: 'suspended' (the sidecar lost contact with ZooKeeper: the lock
 * may be lost, stop writes that carry no fencing token), 'resumed' (contact
 * came back within the session: the lock was held throughout), and 'lost'
 * (with a LeaseLostError; emitted once).
 */
class Lease extends EventEmitter {
  #client;
  #call;
  #releasing = null;
  #lostError = null;
  #rejectLost;
  #ended;
  #resolveEnded;

  /** @internal */
  constructor(client, name, call, granted) {
    super();
    this.#client = client;
    this.#call = call;
    /** The name of the lock. */
    this.name = name;
    /** The lease id: a secret, the only way to release the lease. */
    this.id = granted.leaseId;
    /**
     * The fencing token, a BigInt (an int64: it may exceed
     * Number.MAX_SAFE_INTEGER). It strictly increases across successive
     * holders of the lock.
     */
    this.token = BigInt(granted.fencingToken);
    /**
     * A promise that rejects with a LeaseLostError when the lease is lost.
     * It never resolves: a released lease leaves it pending.
     */
    this.lost = new Promise((_, reject) => {
      this.#rejectLost = reject;
    });
    this.lost.catch(() => {}); // not an unhandled rejection if nobody waits
    this.#ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  /** Whether the lease was lost. */
  get isLost() {
    return this.#lostError !== null;
  }

  /** Why the lease was lost (a LeaseLostError), or null. */
  get lostError() {
    return this.#lostError;
  }

  /**
   * Releases the lock and resolves once the sidecar confirmed that
   * ZooKeeper deleted its node (and the stream ended with Released).
   * Releasing again returns the same promise. If the lease was lost, it
   * rejects with LeaseLostError, whatever the sidecar answers. Other
   * failures reject with LockError; the stream is closed then, which makes
   * the sidecar release the lease anyway.
   *
   * @param {object} [options]
   * @param {number} [options.timeout] milliseconds to wait for the
   *   sidecar's answer (default 10000).
   */
  release(options = {}) {
    if (!this.#releasing) {
      this.#releasing = this.#release(options.timeout ?? 10000);
    }
    return this.#releasing;
  }

  async #release(timeout) {
    const deadline = Date.now() + timeout;
    try {
      if (this.#lostError) {
        throw this.#lostError; // ending the stream releases whatever is left
      }
      try {
        await this.#client._release(this.id, deadline);
      } catch (err) {
        if (err.code === grpc.status.ABORTED) {
          this._lose(err.details);
        }
        throw this.#lostError ?? toLockError(this.#client.addr, err);
      }
      // The sidecar sends Released, then ends the stream.
      let timer;
      await Promise.race([this.#ended, new Promise((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      })]);
      clearTimeout(timer);
      if (this.#lostError) {
        throw this.#lostError; // lost while releasing
      }
    } finally {
      this.#call.cancel();
    }
  }

  /** @internal: an event of the stream after Granted. */
  _event(ev) {
    switch (ev.event) {
      case 'suspended':
        this.emit('suspended');
        break;
      case 'resumed':
        this.emit('resumed');
        break;
      case 'lost':
        this._lose(ev.lost.reason);
        break;
      default: // released: the stream ends next
    }
  }

  /** @internal: the stream ended with status st. */
  _end(st) {
    if (!this.#releasing) {
      this._lose(st.code === grpc.status.OK ? 'stream ended' : `stream broke: ${grpc.status[st.code] ?? st.code}`);
    }
    this.#resolveEnded();
  }

  /** @internal */
  _lose(reason) {
    if (this.#lostError) {
      return;
    }
    this.#lostError = new LeaseLostError(this.name, reason);
    this.#rejectLost(this.#lostError);
    this.emit('lost', this.#lostError);
  }
}

module.exports = { Client, Lease, LockError, NotGrantedError, LeaseLostError, DEFAULT_ADDR };
