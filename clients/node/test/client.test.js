'use strict';
// End-to-end tests of the Node.js client against the zklockd at
// $ZKLOCK_ADDR. The Go test TestNodeClient (e2e/node_test.go) starts one
// and runs these; the tests of a lost lease stop (SIGTERM) and kill
// (SIGKILL) the zklockds named by $ZKLOCK_STOP_DAEMON and
// $ZKLOCK_KILL_DAEMON ("ADDR PID" each), which serve them alone.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const { once } = require('node:events');

const zklock = require('..');
const { Client, LockError, NotGrantedError, LeaseLostError } = zklock;

const { HOW, ADDR, T, client, queuedAt } = require('./helpers');

test('a lock excludes others; tokens are BigInts that grow', T, async (t) => {
  const c = client(t);
  const a = await c.lock('node/demo', { owner: 'node-a' });
  assert.equal(typeof a.token, 'bigint');
  assert.ok(a.token > 0n, `token ${a.token}`);
  assert.match(a.id, /^[0-9a-f]{32}$/);
  assert.equal(a.name, 'node/demo');
  await assert.rejects(c.lock('node/demo', { wait: 0 }), (err) => {
    assert.ok(err instanceof NotGrantedError, err);
    assert.ok(err instanceof LockError);
    assert.equal(err.code, 'DEADLINE_EXCEEDED');
    assert.match(err.message, /node\/demo is held by another/);
    return true;
  });
  await a.release();
  assert.equal(a.release(), a.release(), 'releasing again returns the same promise');
  await a.release();
  // release resolved once ZooKeeper deleted the node: a try-once gets it.
  const b = await c.lock('node/demo', { wait: 0 });
  assert.ok(b.token > a.token, `${b.token} after ${a.token}`);
  await b.release();
  assert.equal(a.isLost, false);
  assert.equal(b.isLost, false);
});

test('a wait that runs out rejects with NotGrantedError and leaves the queue', T, async (t) => {
  const c = client(t);
  const holder = await c.lock('node/wait');
  const start = Date.now();
  await assert.rejects(c.lock('node/wait', { wait: 300 }), (err) => {
    assert.ok(err instanceof NotGrantedError, err);
    assert.match(err.message, /node\/wait was not granted within 300 ms/);
    return true;
  });
  assert.ok(Date.now() - start >= 300, 'rejected before the wait ran out');
  await holder.release();
  // Were the timed-out waiter still queued, it would be granted now and
  // hold the lock for good.
  const next = await c.lock('node/wait', { wait: 20_000 });
  await next.release();
});

test('a waiter is queued, then granted when the holder releases', T, async (t) => {
  const c = client(t);
  const holder = await c.lock('node/queue');
  const q = queuedAt();
  const waiter = c.lock('node/queue', { onQueued: q.onQueued });
  assert.equal(await q.first, 1, 'one contender ahead');
  await holder.release();
  const lease = await waiter;
  assert.ok(lease.token > holder.token);
  await lease.release();
});

test('shared holds hold together, and keep an exclusive one out', T, async (t) => {
  const c = client(t);
  const r1 = await c.lock('node/rw', { shared: true, wait: 0 });
  const r2 = await c.lock('node/rw', { shared: true, wait: 0 });
  await assert.rejects(c.lock('node/rw', { wait: 0 }), NotGrantedError);
  await r1.release();
  await r2.release();
  const w = await c.lock('node/rw', { wait: 0 });
  await w.release();
});

test('an AbortSignal ends the wait and leaves the queue', T, async (t) => {
  const c = client(t);
  const aborted = new AbortController();
  aborted.abort();
  await assert.rejects(c.lock('node/abort', { signal: aborted.signal }), { name: 'AbortError' });

  const holder = await c.lock('node/abort');
  const ac = new AbortController();
  const q = queuedAt();
  const waiter = c.lock('node/abort', { signal: ac.signal, onQueued: q.onQueued });
  await q.first;
  ac.abort();
  await assert.rejects(waiter, { name: 'AbortError' });
  await holder.release();
  const next = await c.lock('node/abort', { wait: 20_000 });
  await next.release();
});

test('withLock releases after fn, whether fn returns or throws', T, async (t) => {
  const c = client(t);
  const other = client(t);
  const got = await c.withLock('node/with', async (lease) => {
    assert.equal(typeof lease.token, 'bigint');
    await assert.rejects(other.lock('node/with', { wait: 0 }), NotGrantedError);
    return 42;
  }, { owner: 'node-with' });
  assert.equal(got, 42);
  await (await other.lock('node/with', { wait: 0 })).release();

  const boom = new Error('boom');
  await assert.rejects(c.withLock('node/with', async () => {
    throw boom;
  }, { wait: 20_000 }), (err) => err === boom);
  const after = await other.lock('node/with', { wait: 20_000 });
  await after.release();
});

test('a bad name rejects with INVALID_ARGUMENT', T, async (t) => {
  const c = client(t);
  await assert.rejects(c.lock('../etc'), (err) => {
    assert.ok(err instanceof LockError, err);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, /\.\./);
    return true;
  });
  await assert.rejects(c.lock('node/x', { wait: -1 }), TypeError);
});

test('the address defaults to $ZKLOCK_ADDR', T, async (t) => {
  const c = new Client();
  t.after(() => c.close());
  assert.equal(c.addr, ADDR);
  const lease = await c.lock('node/default-addr', { wait: 0 });
  await lease.release();
});

test('an unreachable sidecar is named in the error', T, async (t) => {
  const addr = await closedPort();
  const c = client(t, addr);
  await assert.rejects(c.lock('node/unreachable'), (err) => {
    assert.ok(err instanceof LockError, err);
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(err.message, new RegExp(`cannot reach zklockd at ${addr}: connect ECONNREFUSED`));
    return true;
  });
});

test('the stream is the lock: a holder that dies gives it up at once', T, async (t) => {
  // A process that takes the lock and is killed without releasing it.
  const child = spawn(process.execPath, ['-e', `
    const { Client } = require(${JSON.stringify(path.join(__dirname, '..'))});
    new Client(process.env.ZKLOCK_ADDR).lock('node/crash').then((l) => console.log('held ' + l.token));
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const [line] = await once(child.stdout.setEncoding('utf8'), 'data');
  const held = /^held (\d+)/.exec(line);
  assert.ok(held, `the child printed ${line}`);
  const c = client(t);
  await assert.rejects(c.lock('node/crash', { wait: 0 }), NotGrantedError);
  child.kill('SIGKILL');
  // The sidecar's ZooKeeper session lives on: only the end of the
  // child's stream can free the lock.
  const lease = await c.lock('node/crash', { wait: 20_000 });
  assert.ok(lease.token > BigInt(held[1]));
  await lease.release();
});

test('close() ends its leases: the sidecar releases them at once, and they are lost', T, async (t) => {
  const c = new Client(ADDR);
  t.after(() => c.close());
  const other = client(t);
  const lease = await c.lock('node/close', { owner: 'closing' });
  const detached = await c.lock('node/close-detached', { detach: true, ttl: 60_000 });
  const kept = detached.keepAlive();
  const held = await other.lock('node/close-held');
  const q = queuedAt();
  const waiting = c.lock('node/close-held', { onQueued: q.onQueued });
  assert.equal(await q.first, 1);
  const observation = c.observe('node/close')[Symbol.asyncIterator]();
  assert.equal((await observation.next()).value.holders[0].token, lease.token);
  const lostEvents = [];
  lease.on('lost', (err) => lostEvents.push(err));
  const ac = new AbortController();
  t.after(() => ac.abort());
  const watch = other.observe('node/close', { signal: ac.signal })[Symbol.asyncIterator]();
  assert.equal((await watch.next()).value.holders[0].token, lease.token);

  c.close();
  // No lease of the closed client still believes it holds its lock.
  const err = await lease.lost.then(() => assert.fail('lost resolved'), (e) => e);
  assert.ok(err instanceof LeaseLostError, err);
  assert.equal(err.reason, 'client closed');
  assert.deepEqual(lostEvents, [err], "one 'lost' event");
  await assert.rejects(lease.release(), (e) => e === err);
  await assert.rejects(kept, (e) => e instanceof LeaseLostError && e.reason === 'client closed');
  assert.equal(detached.isLost, true);
  await assert.rejects(waiting, (e) => e instanceof LockError && e.code === 'CANCELLED');
  assert.deepEqual(await observation.next(), { value: undefined, done: true }, 'the observation ends without error');
  await assert.rejects(c.lock('node/close', { wait: 0 }), (e) => e instanceof LockError && e.code === 'CANCELLED');
  await assert.rejects(c.describe('node/close'), (e) => e instanceof LockError && e.code === 'CANCELLED');
  c.close(); // again: nothing

  // The sidecar released the stream-bound lease: another's try-once takes it.
  for (;;) {
    const { value } = await watch.next();
    if (value.holders.length === 0) {
      break;
    }
  }
  const next = await other.lock('node/close', { wait: 0 });
  assert.ok(next.token > lease.token);
  await next.release();
  await held.release();
  // The detached lease lives at the sidecar until its ttl, for whoever
  // has its id.
  await other.renew(detached.id);
  await other.release(detached.id);
});

// lose takes leases through the zklockd named by $env ("ADDR PID"), sends
// it sig, and checks what the leases and an observer say.
async function lose(t, env, sig, checkReason) {
  const spec = process.env[env];
  if (!spec) {
    throw new Error(`$${env} is not set: ${HOW}`);
  }
  const [addr, pid] = spec.split(' ');
  const c = client(t, addr);
  const lease = await c.lock(`node/lost/${sig}`);
  // One that releases from its 'lost' listener: release must not wait
  // for the listener.
  const other = await c.lock(`node/lost-self/${sig}`);
  const fromListener = new Promise((resolve) => {
    other.on('lost', () => resolve(other.release().then(() => 'resolved', (err) => err)));
  });
  const lostEvents = [];
  lease.on('lost', (err) => lostEvents.push(err));
  assert.equal(lease.isLost, false);
  const observer = c.observe(`node/lost/${sig}`)[Symbol.asyncIterator]();
  assert.equal((await observer.next()).value.holders[0].token, lease.token);

  process.kill(Number(pid), sig);
  const err = await lease.lost.then(() => assert.fail('lost resolved'), (e) => e);
  assert.ok(err instanceof LeaseLostError, err);
  assert.equal(err.code, 'ABORTED');
  checkReason(err.reason);
  assert.deepEqual(lostEvents, [err], "one 'lost' event, with the lost promise's error");
  assert.equal(lease.isLost, true);
  assert.equal(lease.lostError, err);
  await assert.rejects(lease.release(), (e) => e === err);
  const released = await fromListener;
  assert.ok(released instanceof LeaseLostError, `release from the 'lost' listener: ${released}`);
  // The sidecar ended the observation: observe again.
  await assert.rejects(observer.next(), (e) => {
    assert.ok(e instanceof LockError, e);
    assert.equal(e.code, 'UNAVAILABLE');
    return true;
  });
}

test('a sidecar that shuts down (SIGTERM) says the lease is lost', T, async (t) => {
  await lose(t, 'ZKLOCK_STOP_DAEMON', 'SIGTERM', (reason) => assert.equal(reason, 'LOST_REASON_SHUTDOWN'));
});

test('a sidecar killed (SIGKILL) loses the lease: its stream broke', T, async (t) => {
  await lose(t, 'ZKLOCK_KILL_DAEMON', 'SIGKILL', (reason) => assert.match(reason, /^stream broke: /));
});

// closedPort returns a loopback address nothing listens at (a moment ago).
async function closedPort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return `127.0.0.1:${port}`;
}
