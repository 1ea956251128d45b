// After a large snapshot replaces the one before, the server asks V8 to collect so the old
// snapshot's bytes (the store's previous base) are returned now, not at the next snapshot
// (src/server/memory-release.ts; issue 11's memory goal): first by an allocation over V8's
// allowance for outside memory (marked incrementally, short pauses), and with gc() only if the
// bytes are still held after a while.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { RELEASE_MIN_BYTES, memoryReleaser } from '../../src/server/memory-release.js';

test('a large replaced snapshot asks for one collection, at most once per interval; a small one asks for none', async () => {
  let now = 0;
  const forcedCalls: unknown[] = [];
  const r = memoryReleaser({ now: () => now, gc: (o) => forcedCalls.push(o), arrayBuffers: () => 0, checkMs: 60_000 });
  try {
    r.snapshotReplaced(RELEASE_MIN_BYTES - 1);
    await tick();
    assert.equal(r.released, 0, 'small snapshots are left to the collector');
    r.snapshotReplaced(RELEASE_MIN_BYTES);
    r.snapshotReplaced(RELEASE_MIN_BYTES);
    await tick();
    await tick();
    assert.equal(r.released, 1, 'two reports in one turn: one collection');
    now += 1000;
    r.snapshotReplaced(RELEASE_MIN_BYTES);
    await tick();
    assert.equal(r.released, 1, 'not again within the interval');
    now += 5000;
    r.snapshotReplaced(RELEASE_MIN_BYTES);
    await tick();
    assert.equal(r.released, 2);
    assert.deepEqual(forcedCalls, [], 'nothing forced before the check');
  } finally {
    r.close();
  }
});

test('a dropped 256 MiB buffer is returned by the allocation that asks, with no gc()', async () => {
  const forcedCalls: unknown[] = [];
  // Bounds far above the ~0.5 s the marking takes alone, for a CI that runs two files at once.
  const r = memoryReleaser({ gc: (o) => forcedCalls.push(o), checkMs: 5500 });
  try {
    let big: Uint8Array | null = new Uint8Array(256 * 1024 * 1024).fill(1);
    assert.equal(big[big.length - 1], 1);
    // Old, as a base is: it survived collections since it was made.
    for (let i = 0; i < 3; i++) await new Promise((res) => setTimeout(res, 50));
    const before = process.memoryUsage().arrayBuffers;
    big = null;
    r.snapshotReplaced(256 * 1024 * 1024);
    await tick();
    // V8 marks beside the program and frees the bytes when it is done: wait for it, bounded.
    const deadline = Date.now() + 5000;
    while (process.memoryUsage().arrayBuffers > before - 200 * 1024 * 1024 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    assert.ok(process.memoryUsage().arrayBuffers <= before - 200 * 1024 * 1024, `array buffers ${process.memoryUsage().arrayBuffers} after, ${before} before`);
    assert.equal(r.released, 1);
    // The check then finds the bytes gone and forces nothing.
    await new Promise((res) => setTimeout(res, 5700));
    assert.deepEqual(forcedCalls, [], 'gc() was not needed');
    assert.equal(r.forced, 0);
  } finally {
    r.close();
  }
});

test('when the bytes are still held after the check\'s wait, gc() is called, once', async () => {
  const forcedCalls: unknown[] = [];
  const told: number[] = [];
  const r = memoryReleaser({ gc: (o) => forcedCalls.push(o), arrayBuffers: () => 1 << 30, checkMs: 20, onForced: (held) => told.push(held) });
  try {
    r.snapshotReplaced(RELEASE_MIN_BYTES);
    await tick();
    await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(forcedCalls, [{ type: 'major', execution: 'async' }]);
    assert.deepEqual({ released: r.released, forced: r.forced, told }, { released: 1, forced: 1, told: [1 << 30] });
  } finally {
    r.close();
  }
});
