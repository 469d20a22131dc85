'use strict';
// index.d.ts compiles under strict TypeScript, and types the uses in
// types.ts as the client behaves (tsc --noEmit, typescript a dev
// dependency).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');

test('index.d.ts types the API', { timeout: 120_000 }, async () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const { code, out } = await new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', path.join(__dirname, 'tsconfig.json')], (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, out: stdout + stderr });
    });
  });
  assert.equal(code, 0, `tsc failed:\n${out}`);
});
