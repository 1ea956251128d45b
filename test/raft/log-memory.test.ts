// What the in-memory log keeps alive (issue 11, memory): an entry kept in the log must not pin
// the frame, batch or read buffer it arrived in, and compacting the log (§7) must leave nothing
// of the compacted entries referenced by the log. Checked on the log itself, through the core
// with a real decoded AppendEntries frame, on a leader's proposals, and on a restart from a WAL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EntryArena, DEFAULT_ARENA_SLAB_BYTES } from '../../src/raft/entry-arena.js';
import { RaftLog } from '../../src/raft/log.js';
import { Raft, bootstrapState } from '../../src/raft/index.js';
import type { AppendEntries, Entry } from '../../src/raft/index.js';
import { FileStorage } from '../../src/storage/index.js';
import { decodeMessage, encodeMessage } from '../../src/transport/codec.js';
import { PAPER, appendEntries, configOf, nodeFrom } from './harness.js';

const ABC = ['a', 'b', 'c'];

/** `count` entries from `first`, each `size` bytes, all views into ONE buffer of `bufferBytes`. */
function viewsIntoOneBuffer(first: number, term: number, count: number, size: number, bufferBytes: number): Entry[] {
  const buffer = new Uint8Array(bufferBytes);
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const data = buffer.subarray(i * size, (i + 1) * size);
    data.fill((first + i) & 0xff);
    out.push({ index: first + i, term, type: 'normal', data });
  }
  return out;
}

function distinctBuffers(entries: readonly Entry[]): Set<ArrayBufferLike> {
  return new Set(entries.map((e) => e.data.buffer));
}

test('log: an entry that is a view into a much larger buffer is kept as a copy with the same bytes', () => {
  const big = 8 * DEFAULT_ARENA_SLAB_BYTES;
  const incoming = viewsIntoOneBuffer(1, 1, 10, 300, big);
  const log = new RaftLog(null, []);
  log.append(incoming);
  for (let i = 1; i <= 10; i++) {
    const kept = log.entryAt(i)!;
    assert.notEqual(kept.data.buffer, incoming[0]!.data.buffer, `entry ${i} still points into the ${big}-byte buffer`);
    assert.ok(kept.data.buffer.byteLength <= DEFAULT_ARENA_SLAB_BYTES, `entry ${i} pins ${kept.data.buffer.byteLength} bytes`);
    assert.deepEqual([kept.index, kept.term, kept.type], [i, 1, 'normal']);
    assert.deepEqual(kept.data, incoming[i - 1]!.data);
  }
  // Entries arriving together share a slab: no ArrayBuffer per entry.
  assert.equal(distinctBuffers(log.slice(1, 11)).size, 1);
});

test('log: compaction leaves no kept entry pointing into the slabs of the entries it dropped', () => {
  const slab = 4096;
  const log = new RaftLog(null, [], { slabBytes: slab });
  for (let i = 1; i <= 1000; i++) log.appendOne({ index: i, term: 1, type: 'normal', data: new Uint8Array(100).fill(i & 0xff) });
  const before = distinctBuffers(log.slice(1, 1001));
  // 40 entries of 100 bytes per 4 KiB slab.
  assert.equal(before.size, 25);
  log.compact(990, 1);
  const after = distinctBuffers(log.slice(991, 1001));
  assert.equal(after.size, 1, 'the last ten entries live in the newest slab alone');
  for (const b of after) assert.ok(b.byteLength === slab);
  for (let i = 991; i <= 1000; i++) assert.deepEqual(log.entryAt(i)!.data, new Uint8Array(100).fill(i & 0xff));
});

test('arena: an empty entry pins no buffer, a large entry that owns its buffer is kept as is, a large view is copied to its size', () => {
  const arena = new EntryArena(64 * 1024);
  const empty: Entry = { index: 1, term: 1, type: 'normal', data: new Uint8Array(0) };
  assert.equal(arena.keep(empty), empty);
  // An empty view of a large buffer (a no-op entry read back from a WAL segment) pins it all.
  const emptyView: Entry = { index: 1, term: 1, type: 'normal', data: new Uint8Array(1 << 20).subarray(5, 5) };
  const keptEmpty = arena.keep(emptyView);
  assert.equal(keptEmpty.data.length, 0);
  assert.equal(keptEmpty.data.buffer.byteLength, 0);
  const owned: Entry = { index: 2, term: 1, type: 'normal', data: new Uint8Array(10_000).fill(7) };
  assert.equal(arena.keep(owned), owned);
  const backing = new Uint8Array(1 << 20).fill(9);
  const view: Entry = { index: 3, term: 1, type: 'config', data: backing.subarray(100, 10_100) };
  const kept = arena.keep(view);
  assert.notEqual(kept, view);
  assert.equal(kept.data.buffer.byteLength, 10_000);
  assert.equal(kept.type, 'config');
  assert.deepEqual(kept.data, view.data);
  // A Buffer's slice() is a view: the copy must not be one.
  const buf = Buffer.alloc(1 << 20, 3);
  const fromBuffer = arena.keep({ index: 4, term: 1, type: 'normal', data: buf.subarray(0, 20_000) });
  assert.notEqual(fromBuffer.data.buffer, buf.buffer);
  buf.fill(4);
  assert.equal(fromBuffer.data[0], 3);
  assert.deepEqual(arena.stats(), { slabsAllocated: 0, entriesCopied: 0, entriesCopiedAlone: 2, entriesKeptAsIs: 3 });
});

test('§5.3 a follower keeps the entries of a decoded AppendEntries frame without keeping the frame', () => {
  const b = nodeFrom('b', ABC, { terms: [1], currentTerm: 2 }, PAPER);
  const payload = viewsIntoOneBuffer(2, 2, 50, 256, 50 * 256);
  const wire = encodeMessage(appendEntries('a', 'b', 2, 1, 1, payload, 1));
  // As the transport hands it over: a frame inside a larger socket chunk.
  const frame = Buffer.concat([Buffer.alloc(1000), ...(Array.isArray(wire) ? wire : [wire]), Buffer.alloc(200_000)]);
  const framed = frame.subarray(1000, frame.length - 200_000);
  const m = decodeMessage(framed) as AppendEntries;
  assert.equal(m.entries[0]!.data.buffer, frame.buffer, 'the codec decodes views (codec.test.ts)');
  const out = b.stepOut(m);
  assert.equal(b.raft.lastIndex, 51);
  for (let i = 2; i <= 51; i++) {
    const kept = b.raft.log.entryAt(i)!;
    assert.notEqual(kept.data.buffer, frame.buffer, `entry ${i} pins the socket chunk`);
    assert.deepEqual(kept.data, payload[i - 2]!.data);
  }
  // What goes to storage is what the log keeps.
  assert.equal(out.entries.length, 50);
  for (const e of out.entries) assert.notEqual(e.data.buffer, frame.buffer);
});

test('§5.3 a leader keeps a proposal that is a view into a forwarded batch as a copy', () => {
  const a = nodeFrom('a', ['a'], { terms: [1], currentTerm: 1 }, PAPER);
  a.raft.campaign();
  a.drain();
  assert.equal(a.raft.role, 'leader');
  const batch = new Uint8Array(1 << 20).fill(5);
  const index = a.raft.proposeBatch([batch.subarray(10, 310), batch.subarray(400, 700)]);
  for (const i of [index, index + 1]) {
    const kept = a.raft.log.entryAt(i)!;
    assert.notEqual(kept.data.buffer, batch.buffer);
    assert.equal(kept.data.length, 300);
    assert.ok(kept.data.every((x) => x === 5));
  }
});

test('§7 a restart does not keep the WAL read buffers: recovered entries are copied once, a record at a time, into slabs (or a buffer of its own) the core keeps', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-log-memory-'));
  try {
    const segmentBytes = 256 * 1024;
    let storage = await FileStorage.open(dir, { segmentBytes, logger: { warn: () => {} } });
    const founding = bootstrapState(configOf(['a']));
    storage.setHardState(founding.hardState);
    storage.append(founding.entries);
    const payload = viewsIntoOneBuffer(2, 1, 200, 300, 200 * 300);
    storage.append(payload);
    // A leader's no-op (§8): empty data.
    storage.append([{ index: 202, term: 1, type: 'normal', data: new Uint8Array(0) }]);
    await storage.sync();
    // A batch larger than a slab's share (1/16 of it): one record, copied into a buffer of its own.
    const large = viewsIntoOneBuffer(203, 1, 300, 300, 300 * 300);
    storage.append(large);
    await storage.sync();
    await storage.close();
    storage = await FileStorage.open(dir, { segmentBytes, logger: { warn: () => {} } });
    const state = await storage.load();
    assert.equal(state.entries.length, 502);
    // Storage copies each entry out of the segment it read, into slabs (Buffers, as the core's own)...
    for (let i = 1; i <= 200; i++) {
      const data = state.entries[i]!.data;
      assert.equal(data.buffer.byteLength, DEFAULT_ARENA_SLAB_BYTES, `entry ${i + 1} is not in a slab`);
      assert.ok(Buffer.isBuffer(data), `entry ${i + 1}'s bytes are not a Buffer`);
    }
    assert.equal(state.entries[201]!.data.buffer.byteLength, 0, 'the no-op pins nothing');
    const r = new Raft({ id: 'a', random: () => 0.5 }, state);
    // ...and the core keeps those slabs as they are: no second copy, the same bytes.
    for (let i = 2; i <= 201; i++) {
      const kept = r.log.entryAt(i)!;
      assert.equal(kept.data.buffer, state.entries[i - 1]!.data.buffer, `entry ${i} was copied again`);
      assert.deepEqual([...kept.data], [...payload[i - 2]!.data]);
    }
    assert.equal(r.log.entryAt(202)!.data.length, 0);
    assert.equal(r.log.entryAt(202)!.data.buffer.byteLength, 0, 'the no-op pins nothing');
    // The large batch: one copy of its record (headers and all), far smaller than the segment
    // read, its entries views of it that the core keeps too.
    const block = state.entries[202]!.data.buffer;
    assert.ok(block.byteLength >= 300 * 300 && block.byteLength < 300 * 300 + 300 * 32, `the large record's copy is ${block.byteLength} bytes`);
    for (let i = 203; i <= 502; i++) {
      const kept = r.log.entryAt(i)!;
      assert.equal(state.entries[i - 1]!.data.buffer, block, `entry ${i} is not in its record's copy`);
      assert.ok(Buffer.isBuffer(kept.data), `entry ${i}'s bytes are not a Buffer`);
      assert.equal(kept.data.buffer, block, `entry ${i} was copied again`);
      assert.deepEqual([...kept.data], [...large[i - 203]!.data]);
    }
    // A view into anything else (a socket chunk, a batch) is still copied out.
    const batch = viewsIntoOneBuffer(503, 1, 3, 300, 900);
    r.log.append(batch);
    for (let i = 503; i <= 505; i++) assert.notEqual(r.log.entryAt(i)!.data.buffer, batch[0]!.data.buffer, `entry ${i} pins its batch`);
    await storage.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('log: with a host allocator the kept entries are views of its arrays (a Node host: Buffers)', () => {
  const sizes: number[] = [];
  const log = new RaftLog(null, [], { slabBytes: 64 * 1024, allocate: (n) => (sizes.push(n), Buffer.alloc(n)) });
  const incoming = viewsIntoOneBuffer(1, 1, 3, 300, 1 << 20);
  log.append(incoming);
  log.appendOne({ index: 4, term: 1, type: 'normal', data: new Uint8Array(1 << 20).subarray(0, 20_000).fill(1) });
  for (let i = 1; i <= 4; i++) assert.ok(Buffer.isBuffer(log.entryAt(i)!.data), `entry ${i} is not a Buffer`);
  assert.deepEqual(log.entryAt(2)!.data, Buffer.from(incoming[1]!.data));
  assert.deepEqual(sizes, [64 * 1024, 20_000], 'one slab for the small entries, one right-sized buffer for the large');
});
