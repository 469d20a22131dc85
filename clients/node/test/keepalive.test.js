'use strict';
// End-to-end tests of keepAlive of a detached lease whose sidecar stops
// answering: killed (SIGKILL) and paused (SIGSTOP), the zklockds named by
// $ZKLOCK_KEEPALIVE_KILL and $ZKLOCK_KEEPALIVE_PAUSE ("ADDR PID" each),
// which the Go test TestNodeClient (e2e/node_test.go) starts for these
// tests alone.

const { test } = require('node:test');
const assert = require('node:assert/strict');

const { Client, LeaseLostError } = require('..');

const T = { timeout: 60_000 }; // each test's bound; every wait inside is for an event
const TTL = 2000;
const SLACK = 8000; // how long past the expiry keepAlive may take to say so, on a loaded machine

// keepAliveOutlives takes a detached lease through the zklockd named by
// env, keeps it alive, sends that zklockd sig, and checks that keepAlive
// declares the lease lost once its expiry passed without a confirmed renew.
async function keepAliveOutlives(t, env, sig) {
  const spec = process.env[env];
  if (!spec) {
    throw new Error(`$${env} is not set: run these through the Go test: go test -run TestNodeClient ./e2e/`);
  }
  const [addr, pid] = spec.split(' ');
  const c = new Client(addr);
  t.after(() => c.close());
  const lease = await c.lock(`node/keepalive/${sig}`, { detach: true, ttl: TTL });
  const lostEvents = [];
  lease.on('lost', (err) => lostEvents.push(err));
  const kept = lease.keepAlive();
  // A renew confirmed first: keepAlive was at work before the sidecar went.
  const first = lease.expiresAt;
  while (lease.expiresAt.getTime() === first.getTime()) {
    await Promise.race([kept, new Promise((resolve) => setTimeout(resolve, 50))]);
  }

  process.kill(Number(pid), sig);
  let timer;
  const bound = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`keepAlive still running ${TTL + SLACK} ms after the ${sig}: `
      + `it never declared the lease lost (expiry ${lease.expiresAt.toISOString()})`)), TTL + SLACK);
  });
  let err;
  try {
    err = await Promise.race([kept.then(() => assert.fail('keepAlive resolved'), (e) => e), bound]);
  } finally {
    clearTimeout(timer);
  }
  assert.ok(err instanceof LeaseLostError, err);
  assert.equal(err.code, 'ABORTED');
  assert.equal(err.reason, 'its ttl passed without a confirmed renew');
  assert.equal(err.lock, `node/keepalive/${sig}`);
  assert.ok(Date.now() >= lease.expiresAt.getTime(), 'declared lost no sooner than the expiry');
  assert.deepEqual(lostEvents, [err], "one 'lost' event, with keepAlive's error");
  assert.equal(lease.isLost, true);
  assert.equal(lease.lostError, err);
  await assert.rejects(lease.lost, (e) => e === err);
  await assert.rejects(lease.keepAlive(), (e) => e === err);
  await assert.rejects(lease.renew(), (e) => e === err);
  assert.equal(lostEvents.length, 1);
}

test('keepAlive declares a detached lease lost when its killed sidecar lets the ttl pass', T, async (t) => {
  await keepAliveOutlives(t, 'ZKLOCK_KEEPALIVE_KILL', 'SIGKILL');
});

test('keepAlive declares a detached lease lost when its paused sidecar lets the ttl pass', T, async (t) => {
  await keepAliveOutlives(t, 'ZKLOCK_KEEPALIVE_PAUSE', 'SIGSTOP');
});
