'use strict';

// What the test files share: the zklockd they run against, each test's
// time bound, a client closed at the test's end, and an onQueued probe.

const { Client } = require('..');

const HOW = 'run these through the Go test: go test -run TestNodeClient ./e2e/';
const ADDR = process.env.ZKLOCK_ADDR;
if (!ADDR) {
  throw new Error(`$ZKLOCK_ADDR is not set: ${HOW}`);
}

const T = { timeout: 60_000 }; // each test's bound; every wait inside is for an event

// client returns a Client of addr closed when the test t ends.
function client(t, addr = ADDR) {
  const c = new Client(addr);
  t.after(() => c.close());
  return c;
}

// queuedAt returns an onQueued callback and a promise of the first position
// it is called with.
function queuedAt() {
  let seen;
  const first = new Promise((resolve) => {
    seen = resolve;
  });
  return { onQueued: (position) => seen(position), first };
}

module.exports = { HOW, ADDR, T, client, queuedAt };
