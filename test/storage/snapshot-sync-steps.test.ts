// A large snapshot file is made durable in steps while it is written (src/storage/snapshot-file.ts,
// SYNC_STEP_BYTES), not by one fsync of the whole file at the end, so the WAL's syncs on the same
// disk never wait behind hundreds of MB; and what is read back is what was written.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { readSnapshotFile, writeSnapshotFile } from '../../src/storage/snapshot-file.js';
import { snapshotAt } from './conformance.js';
import { TempDirs } from './helpers.js';

const dirs = new TempDirs();
after(() => dirs.removeAll());

test('a 40 MiB snapshot is synced at 16 and 32 MiB while written, then whole; a small one only whole', async () => {
  const dir = dirs.make();
  // The FileHandle class, reached through a handle: its datasync and sync are what the writer calls.
  const probe = await open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void>; sync: () => Promise<void> };
  await probe.close();
  const original = { datasync: proto.datasync, sync: proto.sync };
  let datasyncs = 0;
  let syncs = 0;
  proto.datasync = function (this: unknown) {
    datasyncs++;
    return original.datasync.call(this);
  };
  proto.sync = function (this: unknown) {
    syncs++;
    return original.sync.call(this);
  };
  try {
    const big = snapshotAt(100, 2, 40 << 20);
    const file = await writeSnapshotFile(dir, big);
    assert.equal(datasyncs, 2, 'one step at 16 MiB and one at 32 MiB');
    assert.equal(syncs, 2, 'then the whole file and its directory at the end');
    assert.deepEqual(Buffer.from((await readSnapshotFile(file.path)).data), Buffer.from(big.data));
    datasyncs = 0;
    syncs = 0;
    await writeSnapshotFile(dir, snapshotAt(101, 2, 1 << 20));
    assert.equal(datasyncs, 0);
    assert.equal(syncs, 2);
  } finally {
    proto.datasync = original.datasync;
    proto.sync = original.sync;
  }
});
