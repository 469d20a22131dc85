'use strict';
// Node.js client of zklockd, the zklock sidecar: fair, fenced distributed
// locks on ZooKeeper over gRPC, without a ZooKeeper client.
//
// A Lease holds the sidecar's Acquire stream open for its whole life: the
// stream is the lock, so there is nothing to renew. If the stream breaks
// (the sidecar or the connection went away) the lease is lost. A detached
// lease (detach: true) outlives its stream instead, and lives by its ttl,
// kept by renew() or keepAlive().
//
// Beyond the exclusive lock: shared holds, semaphores (permits), re-entry
// (lease.reenter), following a lock's holders (client.observe), and leader
// election (campaign, leader, observeLeader; resign with lease.release).
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
 * the sidecar's (LOST_REASON_SHUTDOWN, LOST_REASON_SESSION_EXPIRED, ...),
 * 'stream broke: CODE' / 'stream ended' when the stream ended without one,
 * 'its ttl passed without a confirmed renew' (keepAlive of a detached
 * lease) or 'client closed' (Client.close). `code` is 'ABORTED'.
 */
class LeaseLostError extends LockError {
  constructor(lock, reason) {
    super('ABORTED', lock === null ? `zklock: lease lost: ${reason}` : `zklock: lease of ${lock} lost: ${reason}`);
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

// timestamp turns a google.protobuf.Timestamp (seconds a decimal string)
// into a Date, or null when absent.
function timestamp(ts) {
  return ts ? new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6)) : null;
}

// lostReason is why a lease was lost, by a status of Renew or Release:
// for ABORTED the LostReason its ErrorInfo carries (LOST_REASON_...), else
// (NOT_FOUND) its message, which says why the sidecar does not know it.
function lostReason(err) {
  const r = errorInfo(err)?.lost_reason;
  if (r) {
    return r.startsWith('LOST_REASON_') ? r : `LOST_REASON_${r}`;
  }
  return err.details || err.message || '';
}

// errorInfo returns the metadata of the google.rpc.ErrorInfo in a status's
// details (grpc-status-details-bin), or undefined. It reads the few
// protobuf fields it needs by hand: google.rpc.Status.details (3, Any),
// Any.type_url (1) and value (2), ErrorInfo.metadata (3, map entries of
// key 1 and value 2).
function errorInfo(err) {
  const bin = err.metadata?.get?.('grpc-status-details-bin')?.[0];
  if (!Buffer.isBuffer(bin)) {
    return undefined;
  }
  try {
    for (const any of fieldsOf(bin).filter(([n]) => n === 3)) {
      const f = fieldsOf(any[1]);
      const url = f.find(([n]) => n === 1)?.[1].toString();
      const value = f.find(([n]) => n === 2)?.[1];
      if (url?.endsWith('/google.rpc.ErrorInfo') && value) {
        const meta = {};
        for (const [n, entry] of fieldsOf(value)) {
          if (n === 3) {
            const e = fieldsOf(entry);
            meta[e.find(([k]) => k === 1)?.[1].toString() ?? ''] = e.find(([k]) => k === 2)?.[1].toString() ?? '';
          }
        }
        return meta;
      }
    }
  } catch {
    // not what the sidecar sends: no ErrorInfo
  }
  return undefined;
}

// fieldsOf splits a protobuf message into [field number, value] pairs:
// length-delimited values as Buffers, varints as numbers.
function fieldsOf(buf) {
  const out = [];
  let i = 0;
  const varint = () => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      if (i >= buf.length) {
        throw new RangeError('truncated varint');
      }
      const b = buf[i++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) {
        return v;
      }
    }
  };
  while (i < buf.length) {
    const key = varint();
    const n = Math.floor(key / 8);
    switch (key & 7) {
      case 0:
        out.push([n, varint()]);
        break;
      case 1:
        i += 8;
        break;
      case 2: {
        const len = varint();
        if (i + len > buf.length) {
          throw new RangeError('truncated field');
        }
        out.push([n, buf.subarray(i, i + len)]);
        i += len;
        break;
      }
      case 5:
        i += 4;
        break;
      default:
        throw new RangeError(`wire type ${key & 7}`);
    }
  }
  return out;
}

// ms checks an option in milliseconds (absent, or a finite number >= 0).
function checkMs(what, v) {
  if (v !== undefined && v !== null && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) {
    throw new TypeError(`zklock: ${what} must be a number of milliseconds >= 0, not ${v}`);
  }
}

// holder turns a Contender into a Holder.
function holder(c) {
  return {
    owner: c.owner,
    token: BigInt(c.fencingToken),
    mode: c.mode === 'MODE_SHARED' ? 'shared' : 'exclusive',
    node: c.node,
    joined: timestamp(c.createTime),
    reentered: c.reentered,
  };
}

// unary calls method with req and a deadline timeout ms away; signal, if
// given, cancels the call.
function unary(api, method, req, timeout, signal) {
  return new Promise((resolve, reject) => {
    const call = api[method](req, { deadline: Date.now() + timeout }, (err, resp) => {
      signal?.removeEventListener('abort', cancel);
      return err ? reject(err) : resolve(resp);
    });
    const cancel = () => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
  });
}

// The shortest wait of keepAlive between renews.
const MIN_RENEW_WAIT = 100;

// sleep resolves after ms, or at once when any of the promises settles.
function sleep(ms, ...wake) {
  let timer;
  return Promise.race([new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
  }), ...wake]).finally(() => clearTimeout(timer));
}

/**
 * Takes locks through one zklockd.
 */
class Client {
  #api;
  #closed = false;
  #live = new Set(); // what close() ends: waits for a grant, leases, observations

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
   * `permits: N` (N > 1) makes the name a semaphore of N permits: at most N
   * holders at once, each with a token of its own; every contender must ask
   * for the same N (else LockError FAILED_PRECONDITION, naming both).
   * `reenter: leaseId` takes the lock again through a lease that holds it
   * (say, $ZKLOCK_LEASE from `zklock run`): granted at once, same token,
   * an id of its own; the lock stays held until every such lease ended.
   * `detach: true` makes the lease outlive its stream: it lives `ttl`
   * milliseconds (default the sidecar's, 15 s unless configured) after
   * its grant and each renew, and ends with release or when ttl passes
   * without a renew.
   *
   * Other failures reject with LockError: INVALID_ARGUMENT for a bad name,
   * UNAVAILABLE when zklockd cannot be reached (the message names the
   * address) or has no ZooKeeper session; for a reenter, NOT_FOUND (an
   * unknown or released lease) or ABORTED (a lost one).
   */
  lock(name, options = {}) {
    const { wait, ttl, shared = false, owner = '', detach = false, permits = 0, reenter = '', signal, onQueued } = options;
    try {
      checkMs('wait', wait);
      checkMs('ttl', ttl);
      if (ttl !== undefined && ttl !== null && !detach) {
        throw new TypeError('zklock: ttl is for detached leases (detach: true)');
      }
      if (!Number.isInteger(permits) || permits < 0) {
        throw new TypeError(`zklock: permits must be an integer >= 0, not ${permits}`);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal?.aborted) {
      return Promise.reject(signal.reason);
    }
    if (this.#closed) {
      return Promise.reject(closedError());
    }
    const req = { lock: name, owner, detach, permits, reenter };
    // A re-entry without `shared` keeps the re-entered lease's mode.
    if (shared) {
      req.mode = 'MODE_SHARED';
    } else if (!reenter) {
      req.mode = 'MODE_EXCLUSIVE';
    }
    if (wait !== undefined && wait !== null) {
      req.wait = duration(wait);
    }
    if (ttl !== undefined && ttl !== null) {
      req.ttl = duration(ttl);
    }
    return new Promise((resolve, reject) => {
      const call = this.#api.Acquire(req);
      let lease = null;
      let failed = false;
      const fail = (err) => {
        if (!failed) {
          failed = true;
          this.#live.delete(onClose);
          signal?.removeEventListener('abort', onAbort);
          call.cancel();
          reject(err);
        }
      };
      // close() ends the wait, or the lease once granted.
      const onClose = () => (lease ? lease._close() : fail(closedError()));
      this.#live.add(onClose);
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
          lease = new Lease(this, name, call, ev.granted, detach, () => this.#live.delete(onClose));
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

  /**
   * Renews the detached lease `leaseId` (one this process or another took)
   * by its ttl, and resolves to its new expiry (a Date, on the sidecar's
   * clock). Rejects with LeaseLostError if the lease was lost or the
   * sidecar does not know it, with LockError otherwise (UNAVAILABLE while
   * the sidecar's contact with ZooKeeper is in doubt: retry within the
   * ttl, the lease may still be held).
   *
   * @param {string} leaseId
   * @param {object} [options]
   * @param {number} [options.timeout] milliseconds (default 10000).
   * @param {AbortSignal} [options.signal] cancels the call: it rejects
   *   with LockError CANCELLED.
   */
  async renew(leaseId, options = {}) {
    if (this.#closed) {
      throw closedError();
    }
    let resp;
    try {
      resp = await unary(this.#api, 'Renew', { leaseIds: [leaseId] }, options.timeout ?? 10000, options.signal);
    } catch (err) {
      if (err.code === grpc.status.ABORTED || err.code === grpc.status.NOT_FOUND) {
        throw new LeaseLostError(null, lostReason(err));
      }
      throw toLockError(this.addr, err);
    }
    if (resp.leases.length !== 1) {
      throw new LockError('UNKNOWN', `zklock: renew of one lease answered ${resp.leases.length}`);
    }
    return timestamp(resp.leases[0].expiresAt);
  }

  /**
   * Releases the lease `leaseId` (one this process or another took,
   * detached or not) and resolves once ZooKeeper deleted its node.
   * Releasing twice succeeds. Rejects with LeaseLostError if the lease was
   * lost, with LockError otherwise (NOT_FOUND for a lease the sidecar does
   * not know).
   *
   * @param {string} leaseId
   * @param {object} [options]
   * @param {number} [options.timeout] milliseconds (default 10000).
   */
  async release(leaseId, options = {}) {
    if (this.#closed) {
      throw closedError();
    }
    try {
      await unary(this.#api, 'Release', { leaseId }, options.timeout ?? 10000);
    } catch (err) {
      if (err.code === grpc.status.ABORTED) {
        throw new LeaseLostError(null, lostReason(err));
      }
      throw toLockError(this.addr, err);
    }
  }

  /**
   * Describes the lock `name` as ZooKeeper holds it: resolves to
   * { holders, waiters, permits }, holders and waiters in queue order
   * (see observe for a holder's fields).
   */
  async describe(name, options = {}) {
    if (this.#closed) {
      throw closedError();
    }
    let resp;
    try {
      resp = await unary(this.#api, 'Describe', { lock: name }, options.timeout ?? 10000);
    } catch (err) {
      throw toLockError(this.addr, err);
    }
    return { holders: resp.holders.map(holder), waiters: resp.waiters.map(holder), permits: resp.permits };
  }

  /**
   * Follows who holds the lock `name`: an async iterable of states
   * { holders, queueLength, permits }, the first the present one, then one
   * each time the set of holders changes (a release followed at once by a
   * grant may come as one change). A holder is { owner, token (BigInt),
   * mode ('exclusive' or 'shared'), node, joined (Date), reentered (0 in
   * observed states) }. It sees the holders of every zklockd and of
   * Curator and Kazoo clients on the lock's path.
   *
   * The iteration ends without error when `signal` aborts (or the loop
   * breaks), and throws LockError otherwise: UNAVAILABLE when the sidecar
   * ends it (it lost its ZooKeeper session or shuts down: observe again),
   * INVALID_ARGUMENT for a bad name.
   */
  observe(name, options = {}) {
    const api = this.#api;
    const addr = this.addr;
    const live = this.#live;
    const isClosed = () => this.#closed;
    const { signal } = options;
    return {
      async* [Symbol.asyncIterator]() {
        if (signal?.aborted || isClosed()) {
          return;
        }
        const call = api.Observe({ lock: name });
        call.on('error', () => {}); // the loop below sees every error
        let ended = false; // by signal or close
        const onAbort = () => {
          ended = true;
          call.cancel();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        live.add(onAbort);
        try {
          for await (const resp of call) {
            yield { holders: resp.holders.map(holder), queueLength: resp.queueLength, permits: resp.permits };
          }
        } catch (err) {
          if (ended) {
            return;
          }
          throw toLockError(addr, err);
        } finally {
          signal?.removeEventListener('abort', onAbort);
          live.delete(onAbort);
          call.cancel();
        }
        if (ended) {
          return;
        }
        throw new LockError('UNAVAILABLE', `zklock: observing ${name}: the sidecar ended the stream`);
      },
    };
  }

  /**
   * Waits until the caller leads the election `name`, and resolves to its
   * Lease: the leader holds the exclusive lock `name`, and `value`, its
   * owner label, is what followers see of it (leader, observeLeader), such
   * as the address where it serves. Campaigns are served first come first
   * served; release the lease to resign. Options as for lock.
   */
  campaign(name, value, options = {}) {
    return this.lock(name, { ...options, owner: value });
  }

  /**
   * Resolves to who leads the election `name` now (the lock's first
   * holder, whose owner is the value it campaigned with), or null.
   */
  async leader(name, options = {}) {
    const { holders } = await this.describe(name, options);
    return holders[0] ?? null;
  }

  /**
   * Follows who leads the election `name`: an async iterable of the
   * present leader (a holder, or null when none), then of each new one. It
   * ends as observe's does. A leader that resigns and is followed at once
   * by the next may be reported as the next alone.
   */
  observeLeader(name, options = {}) {
    const states = this.observe(name, options);
    return {
      async* [Symbol.asyncIterator]() {
        let last; // the leader's node; undefined before the first
        for await (const s of states) {
          const leader = s.holders[0] ?? null;
          const node = leader ? leader.node : '';
          if (node !== last) {
            last = node;
            yield leader;
          }
        }
      },
    };
  }

  /**
   * Closes the client. Release the leases first: close() ends what is left
   * so that no lease of this client still believes it holds its lock. A
   * lease not released is lost (LeaseLostError, reason 'client closed';
   * 'lost' is emitted): a stream-bound one's stream is cancelled, which
   * makes the sidecar release it at once; a detached one lives on at the
   * sidecar until its ttl passes (renew or release it by id through
   * another client), but this client can no longer renew it. A lock()
   * still waiting rejects with LockError CANCELLED, and observations end
   * without error. Calls after close() reject with LockError CANCELLED.
   * Calling it again does nothing.
   */
  close() {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    for (const end of [...this.#live]) {
      end();
    }
    this.#api.close();
  }
}

// closedError is what a call of a closed client rejects with.
function closedError() {
  return new LockError('CANCELLED', 'zklock: the client was closed');
}

/**
 * A held lock. Release it when done; it is lost if the sidecar says so, its
 * stream breaks or its client is closed (a detached lease: when renew or
 * release finds it lost, or keepAlive sees its expiry pass without a
 * confirmed renew).
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
  #wakers = new Set(); // keepAlive's waits, ended by release and loss
  #forget; // tells the client the lease needs no closing any more

  /** @internal */
  constructor(client, name, call, granted, detached, forget) {
    super();
    this.#client = client;
    this.#call = call;
    this.#forget = forget;
    /** The name of the lock. */
    this.name = name;
    /** The lease id: a secret, the only way to renew or release the lease. */
    this.id = granted.leaseId;
    /**
     * The fencing token, a BigInt (an int64: it may exceed
     * Number.MAX_SAFE_INTEGER). It strictly increases across successive
     * holders of the lock.
     */
    this.token = BigInt(granted.fencingToken);
    /** Whether the lease outlives its stream (lock's `detach`). */
    this.detached = detached;
    /**
     * When a detached lease expires unless renewed (a Date, on the
     * sidecar's clock); null for a lease bound to its stream.
     */
    this.expiresAt = timestamp(granted.expiresAt);
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
   * Takes the lease's lock again, as Curator's re-entrant InterProcessMutex
   * does, where a second lock() would wait for the lease itself: resolves
   * at once to a new Lease with the same token and an id of its own, to be
   * released on its own. The lock stays held until this lease and every
   * lease that re-entered it have been released, and a loss ends them all.
   * Options as for lock (without `shared`, the new lease has this one's
   * mode; `permits`, if given, must be this one's). A lost lease rejects
   * with its LeaseLostError.
   */
  reenter(options = {}) {
    if (this.#lostError) {
      return Promise.reject(this.#lostError);
    }
    return this.#client.lock(this.name, { ...options, reenter: this.id });
  }

  /**
   * Renews a detached lease by its ttl; resolves to its new expiry (also
   * in expiresAt). Rejects with LeaseLostError (and the lease is lost from
   * then on: 'lost' is emitted) if the sidecar found it lost or does not
   * know it; with LockError UNAVAILABLE while the sidecar's contact with
   * ZooKeeper is in doubt (retry within the ttl). A lease bound to its
   * stream has nothing to renew: it rejects with an Error.
   */
  async renew(options = {}) {
    if (!this.detached) {
      throw new Error(`zklock: lease of ${this.name} is not detached: its stream keeps it`);
    }
    if (this.#lostError) {
      throw this.#lostError;
    }
    if (this.#releasing) {
      throw new Error(`zklock: lease of ${this.name} was released`);
    }
    let expiresAt;
    try {
      expiresAt = await this.#client.renew(this.id, options);
    } catch (err) {
      if (err instanceof LeaseLostError) {
        if (this.#releasing && !this.#lostError) {
          // released meanwhile: the sidecar forgot it
          throw new Error(`zklock: lease of ${this.name} was released`);
        }
        this._lose(err.reason);
        throw this.#lostError;
      }
      throw err;
    }
    if (this.#lostError) {
      throw this.#lostError; // lost meanwhile (keepAlive saw the expiry pass)
    }
    this.expiresAt = expiresAt;
    return this.expiresAt;
  }

  /**
   * Renews a detached lease until `signal` aborts or the lease is released
   * (it then resolves), or until it is lost (it rejects with the
   * LeaseLostError, and 'lost' is emitted). It renews when a third of the
   * time left before expiry has passed, at most every 100 ms; after a renew
   * that failed without an answer (say, UNAVAILABLE while the sidecar's
   * contact with ZooKeeper is in doubt, or a sidecar that is gone or does
   * not answer) it tries again within a second. Each renew may take until
   * the expiry. Once the expiry passes without a confirmed renew, the lease
   * is lost (reason 'its ttl passed without a confirmed renew'): the lock
   * may be another's by then. Do not await it before working with the
   * lease:
   *
   *   const kept = lease.keepAlive({ signal });
   */
  async keepAlive(options = {}) {
    if (!this.detached) {
      throw new Error(`zklock: lease of ${this.name} is not detached: its stream keeps it`);
    }
    const { signal } = options;
    let failed = false;
    for (;;) {
      if (this.#lostError) {
        throw this.#lostError;
      }
      if (this.#releasing) {
        return;
      }
      const expires = this.expiresAt;
      const left = expires - Date.now();
      if (left <= 0) {
        this._lose('its ttl passed without a confirmed renew');
        throw this.#lostError;
      }
      if (signal?.aborted) {
        return;
      }
      let wait = left / 3;
      if (failed) {
        wait = Math.min(wait, 1000);
      }
      await this.#sleep(Math.min(Math.max(wait, MIN_RENEW_WAIT), left), signal);
      if (this.#lostError || this.#releasing || signal?.aborted || expires - Date.now() <= 0) {
        continue; // settled at the top (an expiry passed means lost)
      }
      try {
        await this.renew({ timeout: expires - Date.now(), signal });
        failed = false;
      } catch (err) {
        if (err instanceof LeaseLostError) {
          throw err;
        }
        failed = true; // the top settles a release, an abort or the expiry
      }
    }
  }

  // #sleep resolves after ms, or sooner when signal aborts or the lease
  // is released or lost.
  #sleep(ms, signal) {
    return new Promise((resolve) => {
      if (signal?.aborted || this.#releasing || this.#lostError) {
        resolve();
        return;
      }
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }

  /**
   * Releases the lock and resolves once the sidecar confirmed that
   * ZooKeeper deleted its node (and the stream ended with Released).
   * Releasing again returns the same promise. If the lease was lost, it
   * rejects with LeaseLostError, whatever the sidecar answers. Other
   * failures reject with LockError; the stream is closed then, which makes
   * the sidecar release the lease anyway (not a detached one: it lives
   * until its ttl passes).
   *
   * @param {object} [options]
   * @param {number} [options.timeout] milliseconds to wait for the
   *   sidecar's answer (default 10000).
   */
  release(options = {}) {
    if (!this.#releasing) {
      this.#releasing = this.#release(options.timeout ?? 10000);
      this.#wake();
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
        await this.#client.release(this.id, { timeout });
      } catch (err) {
        if (err instanceof LeaseLostError) {
          this._lose(err.reason);
        }
        throw this.#lostError ?? err;
      }
      // The sidecar sends Released, then ends the stream (a detached
      // lease's ended after Granted).
      await sleep(Math.max(0, deadline - Date.now()), this.#ended);
      if (this.#lostError) {
        throw this.#lostError; // lost while releasing
      }
    } finally {
      this.#call.cancel();
      this.#forget();
    }
  }

  #wake() {
    for (const wake of this.#wakers) {
      wake();
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
    // A detached lease's stream ends after Granted: the lease lives on.
    if (!this.#releasing && !this.detached) {
      this._lose(st.code === grpc.status.OK ? 'stream ended' : `stream broke: ${grpc.status[st.code] ?? st.code}`);
    }
    this.#resolveEnded();
  }

  /** @internal: its client was closed. */
  _close() {
    if (!this.#releasing) {
      this._lose('client closed');
    }
    this.#call.cancel();
  }

  /** @internal */
  _lose(reason) {
    if (this.#lostError) {
      return;
    }
    this.#lostError = new LeaseLostError(this.name, reason);
    this.#forget();
    this.#wake();
    this.#rejectLost(this.#lostError);
    this.emit('lost', this.#lostError);
  }
}

module.exports = { Client, Lease, LockError, NotGrantedError, LeaseLostError, DEFAULT_ADDR };
