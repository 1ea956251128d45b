// The frame splitter: frames cut at any byte boundary come out whole and in order; empty and
// oversize lengths are refused as soon as the length is read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CodecError, FrameDecoder, decodeMessage, encodeMessage } from '../../src/transport/index.js';
import { messageArbs } from './helpers.js';

test('frames: a stream cut into arbitrary chunks yields the same frames in order', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(...Object.values(messageArbs)), { minLength: 1, maxLength: 10 }), fc.array(fc.nat({ max: 64 }), { maxLength: 40 }), (messages, cuts) => {
      const frames = messages.map((m) => {
        const e = encodeMessage(m);
        return Array.isArray(e) ? Buffer.concat(e) : e;
      });
      const stream = Buffer.concat(frames);
      const decoder = new FrameDecoder(1 << 20);
      const out: Buffer[] = [];
      let offset = 0;
      for (const cut of cuts) {
        const end = Math.min(stream.length, offset + cut);
        decoder.push(stream.subarray(offset, end), (f) => out.push(Buffer.from(f)) > 0);
        offset = end;
      }
      decoder.push(stream.subarray(offset), (f) => out.push(Buffer.from(f)) > 0);
      assert.deepStrictEqual(out, frames);
      assert.deepStrictEqual(out.map((f) => decodeMessage(f)), messages);
      assert.equal(decoder.bufferedBytes, 0);
    }),
    { numRuns: 200 },
  );
});

test('frames: an oversize length is refused before its bytes arrive; an empty frame too', () => {
  const decoder = new FrameDecoder(1024);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1025, 0);
  assert.throws(() => decoder.push(header, () => true), (err: unknown) => err instanceof CodecError && /exceeds/.test(err.message));
  assert.throws(() => new FrameDecoder(1024).push(Buffer.alloc(4), () => true), /empty frame/);
  // Split across chunks: refused on the chunk that completes the length.
  const split = new FrameDecoder(1024);
  split.push(header.subarray(0, 2), () => true);
  assert.throws(() => split.push(header.subarray(2), () => true), /exceeds/);
});
