// A window onto a file (src/storage/file-window.ts): the bytes it shows are the file's, however
// the ranges asked for fall against what it read before; a file too short or a closed window is
// refused, never read past. And a store whose base reads through windows closes each one when
// its base is replaced. (That a store answers the same through a window as from memory is the
// windowed property test of test/kv/tiered-store.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileWindow } from '../../src/storage/file-window.js';
import { StorageCorruptionError } from '../../src/storage/errors.js';
import { KvStateMachine } from '../../src/kv/index.js';
import { entryOf, bytes } from '../kv/helpers.js';

function withDir(f: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-file-window-'));
  try {
    f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a window shows the file\'s bytes for any range: inside what it read, across its end, larger than its buffer, at the end', () => {
  withDir((dir) => {
    // 3 MiB of bytes that differ from their neighbours, behind a 100-byte prefix the window skips.
    const size = 3 << 20;
    const file = new Uint8Array(100 + size);
    for (let i = 0; i < file.length; i++) file[i] = (i * 2_654_435_761) >>> 24;
    const path = join(dir, 'data');
    writeFileSync(path, file);
    const w = new FileWindow(path, 100, size);
    const expect = (start: number, end: number): void => {
      const p = w.load(start, end);
      assert.deepEqual(Buffer.from(w.buf.subarray(p, p + end - start)), Buffer.from(file.subarray(100 + start, 100 + end)), `[${start}, ${end})`);
    };
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    // Random lookups, small and large.
    for (let i = 0; i < 300; i++) {
      const start = next(size);
      expect(start, Math.min(size, start + next(i % 10 === 0 ? 2 << 20 : 20_000)));
    }
    // A walk forward in steps that cross each read's end.
    for (let at = 0; at < size; ) {
      const end = Math.min(size, at + 1 + next(5_000));
      expect(at, end);
      at = end;
    }
    expect(size - 1, size);
    expect(size, size);
    expect(0, size);
    assert.ok(w.reads > 0);
    assert.throws(() => w.load(size - 1, size + 1), RangeError);
    assert.throws(() => w.load(-1, 3), RangeError);
    w.close();
    assert.ok(w.isClosed);
    assert.throws(() => w.load(0, size), /closed/);
  });
});

test('a window over more than the file holds is refused, naming the file and where it ends', () => {
  withDir((dir) => {
    const path = join(dir, 'short');
    writeFileSync(path, new Uint8Array(1000));
    assert.throws(() => new FileWindow(path, 100, 901), (err: unknown) => err instanceof StorageCorruptionError && err.file === path && err.offset === 1000);
    new FileWindow(path, 100, 900).close();
  });
});

test('a store reading its base through windows closes the old one each time its base is replaced', () => {
  withDir((dir) => {
    const windows: FileWindow[] = [];
    const moveToFile = (sm: KvStateMachine, snapshot: Uint8Array): boolean => {
      const path = join(dir, `snapshot-${windows.length}`);
      writeFileSync(path, snapshot);
      return sm.readBaseThrough(snapshot, (offset, length) => {
        const w = new FileWindow(path, offset, length);
        windows.push(w);
        return w;
      });
    };
    const sm = new KvStateMachine();
    let index = 0;
    const snapshots: Uint8Array[] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 50; i++) sm.apply(entryOf(++index, { type: 'put', key: `k${round}/${i}`, value: bytes(`v${index}`), time: index }));
      snapshots.push(sm.snapshot());
      assert.equal(moveToFile(sm, snapshots[round]!), true);
    }
    assert.equal(windows.length, 4, 'each snapshot became a base read through a window');
    assert.deepEqual(windows.map((w) => w.isClosed), [true, true, true, false]);
    // A restore replaces the base with bytes in memory: the window is closed.
    sm.restore(snapshots[1]!);
    assert.ok(windows.every((w) => w.isClosed));
    assert.deepEqual(sm.baseTier, { records: 100, windowed: false });
    assert.equal(moveToFile(sm, snapshots[1]!), true);
    assert.deepEqual(windows.map((w) => w.isClosed), [true, true, true, true, false]);
    assert.equal(sm.get('k1/49')?.modRevision !== undefined, true, 'the restored base is read through the new window');
    assert.equal(sm.get('k3/0'), null);
    // A base with no records needs no window, and the one before is closed.
    sm.restore(new KvStateMachine().snapshot());
    assert.equal(moveToFile(sm, new KvStateMachine().snapshot()), false);
    assert.equal(windows.length, 5);
    assert.ok(windows.every((w) => w.isClosed));
  });
});

test('a store moves its base to the file its snapshot was saved in, only for that snapshot\'s records, and checks the file first', () => {
  withDir((dir) => {
    const sm = new KvStateMachine();
    for (let i = 1; i <= 300; i++) sm.apply(entryOf(i, { type: 'put', key: `key/${String(i).padStart(3, '0')}`, value: bytes(`value ${i}`), time: i }));
    const saved = sm.snapshot();
    const before = sm.list('', 1000, Number.POSITIVE_INFINITY);
    // As a storage saves it: a header of its own, the bytes, a trailer.
    const path = join(dir, 'saved');
    writeFileSync(path, Buffer.concat([Buffer.alloc(17, 7), saved, Buffer.alloc(4)]));
    const opened: FileWindow[] = [];
    const open = (file: string, at: number) => (offset: number, length: number): FileWindow => {
      const w = new FileWindow(file, at + offset, length);
      opened.push(w);
      return w;
    };

    // Some other bytes than the base's: nothing is opened.
    assert.equal(sm.readBaseThrough(new Uint8Array(saved), open(path, 17)), false);
    assert.equal(opened.length, 0);
    // A file whose last record differs: opened, refused, closed.
    const altered = Buffer.concat([Buffer.alloc(17, 7), saved, Buffer.alloc(4)]);
    const lastValue = altered.lastIndexOf(Buffer.from('value 300'));
    altered[lastValue + 6] = 0x39;
    const alteredPath = join(dir, 'altered');
    writeFileSync(alteredPath, altered);
    assert.equal(sm.readBaseThrough(saved, open(alteredPath, 17)), false);
    assert.ok(opened[0]!.isClosed);
    assert.deepEqual(sm.baseTier, { records: 300, windowed: false });

    // The snapshot's own bytes and file: the base reads from the file, and reads the same.
    assert.equal(sm.readBaseThrough(saved, open(path, 17)), true);
    assert.deepEqual(sm.baseTier, { records: 300, windowed: true });
    assert.deepEqual(sm.list('', 1000, Number.POSITIVE_INFINITY), before);
    assert.ok(opened[1]!.reads > 0);
    assert.equal(sm.readBaseThrough(saved, open(path, 17)), false, 'once only');

    // A wrapper's snapshot (a header, then the store's bytes): the window covers the store's part.
    const wrapped = Buffer.concat([Buffer.from([9, 9, 9, 9, 9]), saved]);
    const restored = new KvStateMachine();
    restored.restore(wrapped.subarray(5));
    const wrappedPath = join(dir, 'wrapped');
    writeFileSync(wrappedPath, Buffer.concat([Buffer.alloc(40), wrapped]));
    assert.equal(restored.readBaseThrough(wrapped, open(wrappedPath, 40)), true);
    assert.deepEqual(restored.list('', 1000, Number.POSITIVE_INFINITY), before);

    // The next snapshot's base is in memory again, and the window is closed.
    sm.apply(entryOf(301, { type: 'put', key: 'key/301', value: bytes('value 301'), time: 301 }));
    sm.snapshot();
    assert.deepEqual(sm.baseTier, { records: 301, windowed: false });
    assert.ok(opened[1]!.isClosed);
    for (const w of opened) w.close();
  });
});

test('a restored store that moves its base to the file keeps its idempotency records, copied out of the snapshot\'s bytes', () => {
  withDir((dir) => {
    const source = new KvStateMachine();
    const first = new Map<string, unknown>();
    for (let i = 1; i <= 200; i++) {
      first.set(`c/${i}`, source.apply(entryOf(i, { type: 'put', key: `key/${i % 50}`, value: bytes(`value ${i}`), time: i, idempotencyKey: `c/${i}` })));
    }
    const saved = source.snapshot();
    const path = join(dir, 'saved');
    writeFileSync(path, saved);
    // A restart's restore: the idempotency records stay in the snapshot's bytes, decoded on demand.
    const restored = new KvStateMachine();
    const task = restored.beginRestore(saved);
    while (!task.step()) {
      // each step decodes a slice
    }
    const window = new FileWindow(path, 0, saved.length);
    assert.equal(restored.readBaseThrough(saved, () => window), true);
    // Scribbling over the snapshot's bytes now changes nothing the store answers from.
    saved.fill(0);
    for (let i = 1; i <= 200; i += 7) {
      const retry = restored.apply(entryOf(200 + i, { type: 'put', key: `key/${i % 50}`, value: bytes('again'), time: 300 + i, idempotencyKey: `c/${i}` }));
      assert.deepEqual(retry, first.get(`c/${i}`), `the retry of c/${i} gets the first answer`);
    }
    assert.equal(restored.get('key/1')?.value !== undefined, true);
    window.close();
  });
});

test('a file cut short under a store reading its base from it: the read throws, naming the file and offset', () => {
  withDir((dir) => {
    const sm = new KvStateMachine();
    for (let i = 1; i <= 2000; i++) sm.apply(entryOf(i, { type: 'put', key: `key/${String(i).padStart(4, '0')}`, value: bytes(`value ${i} ${'x'.repeat(100)}`), time: i }));
    // Compacted, the history no longer keeps the records in the overlay: reads go to the base.
    sm.apply(entryOf(2001, { type: 'compact', revision: sm.revision, time: 2001 }));
    const saved = sm.snapshot();
    const path = join(dir, 'saved');
    writeFileSync(path, saved);
    assert.equal(sm.readBaseThrough(saved, (offset, length) => new FileWindow(path, offset, length)), true);
    // A careless operator truncates the snapshot file the store reads from.
    const cut = Math.floor(saved.length / 2);
    truncateSync(path, cut);
    assert.throws(() => sm.get('key/1999'), (err: unknown) => err instanceof StorageCorruptionError && err.file === path && err.offset === cut);
  });
});

test('a store tells when it lets go of a base held in memory (the memory releaser), and only then', () => {
  withDir((dir) => {
    const source = new KvStateMachine();
    for (let i = 1; i <= 200; i++) source.apply(entryOf(i, { type: 'put', key: `key/${String(i).padStart(3, '0')}`, value: bytes(`value ${i}`), time: i }));
    const saved = source.snapshot();
    const sm = new KvStateMachine();
    const released: number[] = [];
    sm.onBaseReleased = (n) => released.push(n);
    sm.restore(saved);
    assert.deepEqual(released, [], 'an empty base held nothing');
    // A restored base moves to its file: the snapshot's whole buffer is let go.
    const path = join(dir, 'saved');
    writeFileSync(path, saved);
    const windows: FileWindow[] = [];
    assert.equal(
      sm.readBaseThrough(saved, (offset, length) => {
        const w = new FileWindow(path, offset, length);
        windows.push(w);
        return w;
      }),
      true,
    );
    assert.deepEqual(released, [saved.buffer.byteLength]);
    // A snapshot in memory replaces a base read from a file: no memory was let go.
    sm.apply(entryOf(201, { type: 'put', key: 'key/201', value: bytes('value 201'), time: 201 }));
    const next = sm.snapshot();
    assert.deepEqual(released, [saved.buffer.byteLength]);
    // And the next replaces that one, in memory: its buffer is let go.
    sm.apply(entryOf(202, { type: 'put', key: 'key/202', value: bytes('value 202'), time: 202 }));
    sm.snapshot();
    assert.deepEqual(released, [saved.buffer.byteLength, next.buffer.byteLength]);
    for (const w of windows) w.close();
  });
});
