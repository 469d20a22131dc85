'use strict';
// End-to-end tests of the Node.js client's semaphores, re-entry, detached
// leases, observe and election helpers, against the zklockd at
// $ZKLOCK_ADDR that the Go test TestNodeClient (e2e/node_test.go) starts.

const { test } = require('node:test');
const assert = require('node:assert/strict');

const { Client, LockError, NotGrantedError, LeaseLostError } = require('..');

const { T, client, queuedAt } = require('./helpers');

// until resolves at the Date d (by this machine's clock, the sidecar's).
function until(d) {
  return new Promise((resolve) => {
    setTimeout(resolve, Math.max(0, d - Date.now()));
  });
}

// iterate returns the iterator of an async iterable, whose next() the test
// awaits one value at a time, and an AbortController ended with the test.
function iterate(t, make) {
  const ac = new AbortController();
  t.after(() => ac.abort());
  return { it: make(ac.signal)[Symbol.asyncIterator](), ac };
}

test('a semaphore of 2 holds two at once; the third waits; permits must agree', T, async (t) => {
  const c = client(t);
  // Not try-once: a try-once fails too while another contender joins, and
  // the one granted a moment ago may still be leaving the joining lock.
  const a = await c.lock('node/sem', { permits: 2, wait: 20_000, owner: 'a' });
  const b = await c.lock('node/sem', { permits: 2, wait: 20_000, owner: 'b' });
  assert.notEqual(a.token, b.token, 'each holder has a token of its own');
  assert.ok(b.token > a.token, `${b.token} after ${a.token}`);
  await assert.rejects(c.lock('node/sem', { permits: 2, wait: 0 }), NotGrantedError);

  const q = queuedAt();
  let granted = false;
  const third = c.lock('node/sem', { permits: 2, owner: 'c', onQueued: q.onQueued });
  third.then(() => {
    granted = true;
  }, () => {});
  assert.equal(typeof await q.first, 'number', 'the third is queued');
  const d = await c.describe('node/sem');
  assert.equal(d.permits, 2);
  assert.deepEqual(d.holders.map((h) => h.owner), ['a', 'b']);
  assert.deepEqual(d.holders.map((h) => h.token), [a.token, b.token]);

  await assert.rejects(c.lock('node/sem', { permits: 3, wait: 0 }), (err) => {
    assert.ok(err instanceof LockError, err);
    assert.equal(err.code, 'FAILED_PRECONDITION');
    assert.match(err.message, /semaphore of 2 permits, not a semaphore of 3 permits/);
    return true;
  });
  await assert.rejects(c.lock('node/sem', { permits: 1.5 }), TypeError);

  assert.equal(granted, false, 'the third waits while two hold');
  await a.release();
  const cLease = await third;
  assert.ok(cLease.token > b.token, `${cLease.token} after ${b.token}`);
  await b.release();
  await cLease.release();
});

test('a re-entered lock keeps its token and stays held until every lease is released', T, async (t) => {
  const c = client(t);
  const other = client(t);
  const first = await c.lock('node/reenter', { owner: 'outer' });
  const inner = await first.reenter();
  // As from $ZKLOCK_LEASE: by id.
  const byId = await c.lock('node/reenter', { reenter: first.id, wait: 0 });
  for (const l of [inner, byId]) {
    assert.equal(l.token, first.token, 'the same token');
    assert.notEqual(l.id, first.id, 'an id of its own');
    assert.equal(l.name, 'node/reenter');
  }
  const [h] = (await c.describe('node/reenter')).holders;
  assert.equal(h.reentered, 2);
  assert.equal(h.token, first.token);

  await first.release();
  await assert.rejects(other.lock('node/reenter', { wait: 0 }), NotGrantedError, 'held by the re-entries');
  await byId.release();
  await assert.rejects(other.lock('node/reenter', { wait: 0 }), NotGrantedError, 'held by the re-entry');
  await assert.rejects(c.lock('node/reenter', { reenter: first.id }), (err) => {
    assert.ok(err instanceof LockError, err);
    assert.equal(err.code, 'NOT_FOUND', 'a released lease cannot be re-entered');
    return true;
  });
  await inner.release();
  const next = await other.lock('node/reenter', { wait: 0 });
  assert.ok(next.token > first.token);
  await next.release();
});

test('a detached lease lives past its ttl while kept alive, and until released', T, async (t) => {
  const c = client(t);
  const other = client(t);
  const before = Date.now();
  const lease = await c.lock('node/detached', { detach: true, ttl: 2000 });
  assert.equal(lease.detached, true);
  assert.ok(lease.expiresAt instanceof Date);
  const firstExpiry = lease.expiresAt;
  assert.ok(firstExpiry - before >= 1900 && firstExpiry - before < 2000 + 10_000, `expires at ${firstExpiry.toISOString()}`);
  const lost = [];
  lease.on('lost', (err) => lost.push(err));

  const ac = new AbortController();
  const kept = lease.keepAlive({ signal: ac.signal });
  await until(firstExpiry.getTime() + 1000); // a second past the first expiry
  assert.ok(lease.expiresAt > firstExpiry, 'renewed');
  await assert.rejects(other.lock('node/detached', { wait: 0 }), NotGrantedError);
  const [h] = (await other.describe('node/detached')).holders;
  assert.equal(h.token, lease.token);
  ac.abort();
  assert.equal(await kept, undefined, 'keepAlive resolves when its signal aborts');

  // A second keepAlive resolves when the lease is released.
  const kept2 = lease.keepAlive();
  await lease.release();
  assert.equal(await kept2, undefined);
  await assert.rejects(lease.renew(), /released/);
  assert.deepEqual(lost, []);
  const next = await other.lock('node/detached', { wait: 0 });
  assert.ok(next.token > lease.token);
  await next.release();
});

test('a detached lease without keepAlive is lost when its ttl passes', T, async (t) => {
  const c = client(t);
  const { it } = iterate(t, (signal) => c.observe('node/detached-expires', { signal }));
  assert.deepEqual((await it.next()).value.holders, []);
  const lease = await c.lock('node/detached-expires', { detach: true, ttl: 1000 });
  const lost = [];
  lease.on('lost', (err) => lost.push(err));
  // The stream ended after Granted: that is no loss.
  assert.equal(lease.isLost, false);
  assert.deepEqual((await it.next()).value.holders.map((h) => h.token), [lease.token]);
  assert.deepEqual((await it.next()).value.holders, [], 'the sidecar deleted the node');

  await assert.rejects(lease.renew(), (err) => {
    assert.ok(err instanceof LeaseLostError, err);
    assert.equal(err.reason, 'LOST_REASON_LEASE_EXPIRED');
    assert.equal(err.lock, 'node/detached-expires');
    return true;
  });
  assert.equal(lease.isLost, true);
  assert.equal(lost.length, 1);
  assert.equal(lost[0], lease.lostError);
  await assert.rejects(lease.keepAlive(), (err) => err === lease.lostError);
  await assert.rejects(lease.release(), (err) => err === lease.lostError);
  await assert.rejects(c.renew(lease.id), LeaseLostError);
});

test('another client renews and releases a detached lease by its id', T, async (t) => {
  const holder = client(t);
  const other = client(t);
  const lease = await holder.lock('node/by-id', { detach: true, ttl: 3000 });
  const kept = lease.keepAlive();
  const lostEvent = new Promise((resolve) => lease.once('lost', resolve));

  const t0 = Date.now();
  const expires = await other.renew(lease.id);
  assert.ok(expires instanceof Date && expires - t0 >= 2900, `renewed at ${t0}, expires ${expires?.toISOString()}`);
  await other.release(lease.id);
  await other.release(lease.id); // releasing twice succeeds
  const next = await other.lock('node/by-id', { wait: 0 });
  assert.ok(next.token > lease.token);

  // The holder learns at its next renew.
  const err = await kept.then(() => assert.fail('keepAlive resolved'), (e) => e);
  assert.ok(err instanceof LeaseLostError, err);
  assert.equal(await lostEvent, err);
  await assert.rejects(other.renew(lease.id), LeaseLostError);
  await next.release();

  const bound = await holder.lock('node/by-id', { wait: 0 });
  await assert.rejects(bound.renew(), /not detached/);
  await bound.release();
  await assert.rejects(holder.lock('node/by-id', { ttl: 1000 }), TypeError, 'ttl without detach');
});

test('observe sees the holders change, in order, and ends when its signal aborts', T, async (t) => {
  const c = client(t);
  const { it, ac } = iterate(t, (signal) => c.observe('node/observe', { signal }));
  const next = async () => (await it.next()).value;
  assert.deepEqual(await next(), { holders: [], queueLength: 0, permits: 0 }, 'the present state first');

  const a = await c.lock('node/observe', { owner: 'a' });
  const s1 = await next();
  assert.equal(s1.holders.length, 1);
  assert.equal(s1.holders[0].owner, 'a');
  assert.equal(s1.holders[0].token, a.token);
  assert.equal(s1.holders[0].mode, 'exclusive');
  assert.ok(s1.holders[0].joined instanceof Date);
  assert.equal(s1.queueLength, 1);
  await a.release();
  assert.deepEqual((await next()).holders, []);

  const r1 = await c.lock('node/observe', { owner: 'r1', shared: true });
  assert.deepEqual((await next()).holders.map((h) => [h.owner, h.mode]), [['r1', 'shared']]);
  const r2 = await c.lock('node/observe', { owner: 'r2', shared: true });
  assert.deepEqual((await next()).holders.map((h) => h.owner), ['r1', 'r2']);
  await r1.release();
  assert.deepEqual((await next()).holders.map((h) => h.owner), ['r2']);
  await r2.release();
  assert.deepEqual((await next()).holders, []);

  ac.abort();
  assert.deepEqual(await it.next(), { done: true, value: undefined }, 'ends without error');

  // for await, and a bad name.
  await assert.rejects((async () => {
    for await (const s of c.observe('../bad')) {
      assert.fail(`a state ${s}`);
    }
  })(), (err) => err instanceof LockError && err.code === 'INVALID_ARGUMENT');
});

test('campaign, leader and observeLeader follow an election', T, async (t) => {
  const c = client(t);
  const candidate = client(t);
  assert.equal(await c.leader('node/elect'), null, 'no leader yet');
  const { it, ac } = iterate(t, (signal) => c.observeLeader('node/elect', { signal }));
  assert.equal((await it.next()).value, null, 'the present leader: none');

  const one = await c.campaign('node/elect', 'http://10.0.0.1:8080');
  const l1 = (await it.next()).value;
  assert.equal(l1.owner, 'http://10.0.0.1:8080');
  assert.equal(l1.token, one.token);
  const now = await candidate.leader('node/elect');
  assert.equal(now.owner, 'http://10.0.0.1:8080');
  assert.equal(now.token, one.token);

  const q = queuedAt();
  const two = candidate.campaign('node/elect', 'http://10.0.0.2:8080', { onQueued: q.onQueued });
  assert.equal(await q.first, 1);
  await one.release(); // resign
  const twoLease = await two;
  // The next leader, maybe after a moment with none.
  let l2 = (await it.next()).value;
  if (l2 === null) {
    l2 = (await it.next()).value;
  }
  assert.equal(l2.owner, 'http://10.0.0.2:8080');
  assert.equal(l2.token, twoLease.token);
  assert.equal((await c.leader('node/elect')).owner, 'http://10.0.0.2:8080');
  await twoLease.release();
  assert.equal((await it.next()).value, null);
  ac.abort();
  assert.equal((await it.next()).done, true);
});
