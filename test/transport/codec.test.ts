// Codec round trips (property tests per message type), malformed input, and the entry cache
// that keeps payloads from being encoded once per follower.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CodecError, MessageEncoder, decodeMessage, encodeMessage, EntryEncodingCache } from '../../src/transport/index.js';
import { entry, messageArbs } from './helpers.js';
import type { AppendEntries, Message } from '../../src/raft/types.js';

function frameOf(encoded: Buffer | Buffer[]): Buffer {
  return Array.isArray(encoded) ? Buffer.concat(encoded) : encoded;
}

for (const [type, arb] of Object.entries(messageArbs)) {
  test(`codec: ${type} round-trips exactly`, () => {
    fc.assert(
      fc.property(arb, (m: Message) => {
        const decoded = decodeMessage(frameOf(encodeMessage(m)));
        assert.deepStrictEqual(decoded, m);
      }),
      { numRuns: 200 },
    );
  });
}

test('codec: every strict prefix of a frame is refused with a CodecError, never another error', () => {
  fc.assert(
    fc.property(fc.oneof(...Object.values(messageArbs)), fc.nat(), (m, cut) => {
      const frame = frameOf(encodeMessage(m));
      const end = cut % frame.length;
      assert.throws(() => decodeMessage(frame.subarray(0, end)), CodecError);
      // The same truncation with a length prefix that agrees: the body itself runs short.
      const lying = Buffer.from(frame.subarray(0, Math.max(end, 5)));
      lying.writeUInt32BE(lying.length - 4, 0);
      if (lying.length >= frame.length) return;
      // One prefix is whole: an AppendEntries cut just before leaderStable is the same message
      // in the first format (frame.ts, MESSAGE_FORMAT), which says nothing of the leader's sync.
      const first = m.type === 'AppendEntries' && (m.leaderStable ?? 0) > 0 ? frameOf(encodeMessage(m, 1)) : null;
      if (first !== null && lying.length === first.length) assert.deepStrictEqual(decodeMessage(lying), { ...m, leaderStable: 0 });
      else assert.throws(() => decodeMessage(lying), CodecError);
    }),
    { numRuns: 300 },
  );
});

test('codec: trailing bytes, unknown types, unknown flags and bad entry types are refused', () => {
  const rv = frameOf(encodeMessage({ type: 'RequestVoteResponse', from: 'a', to: 'b', term: 3, preVote: false, voteGranted: true }));
  const trailing = Buffer.concat([rv, Buffer.from([0])]);
  trailing.writeUInt32BE(trailing.length - 4, 0);
  assert.throws(() => decodeMessage(trailing), /trailing/);
  const unknownType = Buffer.from(rv);
  unknownType[4] = 99;
  assert.throws(() => decodeMessage(unknownType), /unknown message type/);
  const badFlags = Buffer.from(rv);
  badFlags[badFlags.length - 1] = 0x80;
  assert.throws(() => decodeMessage(badFlags), /flag/);
  const ae: AppendEntries = { type: 'AppendEntries', from: 'a', to: 'b', term: 1, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, seq: 0, entries: [entry(1, 1, 2)] };
  const aeFrame = frameOf(new MessageEncoder().encode(ae));
  // The entry's type byte sits before its 1-byte length and 2 data bytes.
  aeFrame[aeFrame.length - 4] = 7;
  assert.throws(() => decodeMessage(aeFrame), /entry type/);
});

test('codec: terms and indexes up to 2^53 - 1 survive; larger or negative ones are refused', () => {
  const max = Number.MAX_SAFE_INTEGER;
  const m: Message = { type: 'InstallSnapshotResponse', from: 'n1', to: 'n2', term: max, matchIndex: 2 ** 32, seq: 2 ** 31 - 1 };
  assert.deepStrictEqual(decodeMessage(frameOf(encodeMessage(m))), m);
  assert.throws(() => encodeMessage({ ...m, term: max + 1 }), CodecError);
  assert.throws(() => encodeMessage({ ...m, term: -1 }), CodecError);
  assert.throws(() => encodeMessage({ ...m, from: 'x'.repeat(256) }), CodecError);
  // A 9-byte varint is longer than any safe integer needs.
  const frame = frameOf(encodeMessage({ ...m, term: 0 }));
  const bodyStart = 5 + 3 + 3; // type, "n1", "n2"
  const overlong = Buffer.concat([frame.subarray(0, bodyStart), Buffer.alloc(8, 0xff), Buffer.from([0x01]), frame.subarray(bodyStart + 1)]);
  overlong.writeUInt32BE(overlong.length - 4, 0);
  assert.throws(() => decodeMessage(overlong), /varint/);
});

test('codec: decoded entry data and snapshot data are views into the frame, not copies', () => {
  const ae: AppendEntries = { type: 'AppendEntries', from: 'a', to: 'b', term: 1, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, seq: 0, entries: [entry(1, 1, 64), entry(2, 1, 64)] };
  const frame = frameOf(encodeMessage(ae));
  const decoded = decodeMessage(frame) as AppendEntries;
  for (const e of decoded.entries) assert.equal(e.data.buffer, frame.buffer);
  frame[frame.length - 1] = 0xee;
  assert.equal(decoded.entries[1]!.data[63], 0xee);
});

test('codec: the same Entry sent to two followers is encoded once and its payload never copied again', () => {
  const encoder = new MessageEncoder();
  const entries = Array.from({ length: 64 }, (_, i) => entry(i + 1, 1, 256));
  const toB = encoder.encode({ type: 'AppendEntries', from: 'a', to: 'b', term: 1, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, seq: 1, entries });
  const toC = encoder.encode({ type: 'AppendEntries', from: 'a', to: 'c', term: 1, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, seq: 1, entries });
  assert.equal(encoder.entryCache.stats().entriesEncoded, 64);
  assert.equal(encoder.entryCache.stats().hits, 64);
  assert.ok(Array.isArray(toB) && Array.isArray(toC));
  // A header of its own per follower, then ONE view of the shared encoded run.
  assert.equal(toB.length, 2);
  assert.equal(toC.length, 2);
  assert.notEqual(toB[0], toC[0]);
  assert.equal(toB[1]!.buffer, toC[1]!.buffer);
  assert.equal(toB[1]!.byteOffset, toC[1]!.byteOffset);
  // A follower further behind gets a different slice of the same bytes, still without copies.
  const tail = encoder.encode({ type: 'AppendEntries', from: 'a', to: 'd', term: 1, prevLogIndex: 10, prevLogTerm: 1, leaderCommit: 0, seq: 2, entries: entries.slice(10) }) as Buffer[];
  assert.equal(encoder.entryCache.stats().entriesEncoded, 64);
  assert.equal(tail.length, 2);
  assert.equal(tail[1]!.buffer, toB[1]!.buffer);
  const decoded = decodeMessage(Buffer.concat(tail)) as AppendEntries;
  assert.deepStrictEqual(decoded.entries, entries.slice(10));
});

test('entry cache: beyond its budget old slabs are released and their entries re-encoded correctly', () => {
  const cache = new EntryEncodingCache(64 * 1024, 16 * 1024);
  const entries = Array.from({ length: 100 }, (_, i) => entry(i + 1, 2, 1000));
  cache.encodeRun(entries, []);
  assert.equal(cache.stats().entriesEncoded, 100);
  assert.ok(cache.stats().slabBytes <= 64 * 1024, `slabs hold ${cache.stats().slabBytes} bytes`);
  const out: Buffer[] = [];
  cache.encodeRun(entries.slice(0, 5), out);
  assert.equal(cache.stats().entriesEncoded, 105, 'the oldest entries were evicted and encoded again');
  const m = decodeMessage(Buffer.concat([headerFor(5, out), ...out])) as AppendEntries;
  assert.deepStrictEqual(m.entries, entries.slice(0, 5));
  // A big entry gets a buffer of its own and still round-trips.
  const big = entry(101, 2, 40_000);
  const bigOut: Buffer[] = [];
  cache.encodeRun([big], bigOut);
  assert.deepStrictEqual((decodeMessage(Buffer.concat([headerFor(1, bigOut), ...bigOut])) as AppendEntries).entries, [big]);
});

/** The AppendEntries frame header for `count` entries whose encodings are `run`. */
function headerFor(count: number, run: readonly Buffer[]): Buffer {
  const encoded = encodeMessage({ type: 'AppendEntries', from: 'a', to: 'b', term: 1, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, seq: 0, entries: [] }) as Buffer;
  const header = Buffer.concat([encoded.subarray(0, encoded.length - 1), Buffer.from([count])]);
  header.writeUInt32BE(header.length - 4 + run.reduce((n, b) => n + b.length, 0), 0);
  return header;
}
