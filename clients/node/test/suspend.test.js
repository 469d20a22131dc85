'use strict';
// A lease through a sidecar whose ZooKeeper stops answering is suspended,
// not lost, and resumed when ZooKeeper answers again within the session.
// $ZKLOCK_PAUSE_ZK ("ADDR PID") names a zklockd (20 s session) and the
// process of its ZooKeeper server, which serves nobody else: the Go test
// TestNodeClient (e2e/node_test.go) starts them and runs these.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { once } = require('node:events');

const { Client } = require('..');

test('a lease is suspended while ZooKeeper does not answer, and resumed after', { timeout: 60_000 }, async (t) => {
  const spec = process.env.ZKLOCK_PAUSE_ZK;
  if (!spec) {
    throw new Error('$ZKLOCK_PAUSE_ZK is not set: run these through the Go test: go test -run TestNodeClient ./e2e/');
  }
  const [addr, pid] = spec.split(' ');
  const zk = Number(pid);
  const c = new Client(addr);
  t.after(() => c.close());
  const lease = await c.lock('node/suspend');
  const lost = [];
  lease.on('lost', (err) => lost.push(err));

  const suspended = once(lease, 'suspended');
  process.kill(zk, 'SIGSTOP');
  let paused = true;
  t.after(() => paused && process.kill(zk, 'SIGCONT'));
  await suspended; // a third of the session without an answer
  assert.equal(lease.isLost, false, 'suspended is not lost');

  const resumed = once(lease, 'resumed');
  process.kill(zk, 'SIGCONT');
  paused = false;
  await resumed;
  assert.deepEqual(lost, []);
  assert.equal(lease.isLost, false);
  await lease.release(); // still held: the release is confirmed
});
