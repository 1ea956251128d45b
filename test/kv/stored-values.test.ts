// The store keeps values as one-byte strings (stored-record.ts): every byte value survives the
// round trip, large values too, and a stored value is a copy that shares nothing with the entry
// it came from (a Buffer's slice() would have been a view that keeps a whole frame alive).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvStateMachine, encodeCommand } from '../../src/kv/index.js';
import { bytesToLatin1, latin1ToBytes } from '../../src/kv/bytes.js';

test('bytes → one-byte string → bytes is the identity, for every byte and across the piece size', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.deepEqual(latin1ToBytes(bytesToLatin1(all)), all);
  assert.equal(bytesToLatin1(all).length, 256, 'one character per byte');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 20_000 }), (b) => {
      assert.deepEqual(latin1ToBytes(bytesToLatin1(b)), b);
    }),
    { seed: 20261204, numRuns: 200 },
  );
});

test('a Buffer (the native path) and a plain Uint8Array give the same one-byte string, views included', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const frame = Buffer.alloc(600, 0x41);
  frame.set(all, 100);
  const view = frame.subarray(100, 356);
  assert.equal(bytesToLatin1(view), bytesToLatin1(all), 'a Buffer view reads only its own bytes');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 20_000 }), fc.nat(64), (b, offset) => {
      const framed = Buffer.alloc(offset + b.length + 7, 0xee);
      framed.set(b, offset);
      const asBuffer = framed.subarray(offset, offset + b.length);
      assert.equal(bytesToLatin1(asBuffer), bytesToLatin1(b));
      assert.deepEqual(latin1ToBytes(bytesToLatin1(asBuffer)), b);
    }),
    { seed: 20261205, numRuns: 200 },
  );
});

test('a stored value is a copy: changing the entry (or the Buffer it is a view into) afterwards changes nothing', () => {
  const sm = new KvStateMachine();
  const frame = Buffer.alloc(4096);
  const cmd = encodeCommand({ type: 'put', key: 'k', value: Uint8Array.from([0, 1, 2, 0x80, 0xff]), time: 0 });
  frame.set(cmd, 100);
  // As the transport delivers it: the entry's data is a view into a larger frame.
  sm.apply({ index: 1, term: 1, type: 'normal', data: frame.subarray(100, 100 + cmd.length) });
  frame.fill(0x55);
  const rec = sm.get('k')!;
  assert.deepEqual(rec.value, Uint8Array.from([0, 1, 2, 0x80, 0xff]));
  // A record given out is the caller's own: writing into it does not reach the store.
  rec.value[0] = 9;
  assert.equal(sm.get('k')!.value[0], 0);
  // And a snapshot restored elsewhere holds the same bytes.
  const copy = new KvStateMachine();
  copy.restore(sm.snapshot());
  assert.deepEqual(copy.get('k')!.value, Uint8Array.from([0, 1, 2, 0x80, 0xff]));
});
