// After a large snapshot replaces the one before, the server asks V8 for one major GC so the
// old snapshot's bytes (the store's previous base) are returned now, not at the next snapshot
// (src/server/memory-release.ts; issue 11's memory goal).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { RELEASE_MIN_BYTES, memoryReleaser } from '../../src/server/memory-release.js';

test('a large replaced snapshot asks for one major GC, at most once per interval; a small one asks for none', async () => {
  let now = 0;
  const r = memoryReleaser(() => now);
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
  } finally {
    r.close();
  }
});

test('a dropped 256 MiB buffer is returned by the collection it asks for', async () => {
  const r = memoryReleaser();
  try {
    let big: Uint8Array | null = new Uint8Array(256 * 1024 * 1024).fill(1);
    assert.equal(big[big.length - 1], 1);
    const before = process.memoryUsage().arrayBuffers;
    big = null;
    r.snapshotReplaced(256 * 1024 * 1024);
    await tick();
    // The collection runs as a task of its own: wait until the bytes are gone, bounded.
    const deadline = Date.now() + 5000;
    while (process.memoryUsage().arrayBuffers > before - 200 * 1024 * 1024 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    assert.ok(process.memoryUsage().arrayBuffers <= before - 200 * 1024 * 1024, `array buffers ${process.memoryUsage().arrayBuffers} after, ${before} before`);
    assert.equal(r.released, 1);
  } finally {
    r.close();
  }
});
