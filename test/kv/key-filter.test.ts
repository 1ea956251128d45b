// The base's key filter (src/kv/key-filter.ts): a Bloom filter whose "no" must always be right
// (a key added is never said absent: the store would take a held key for a new one) and whose
// "maybe" for keys never added is rare (each one costs a read of the snapshot file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyFilter } from '../../src/kv/key-filter.js';

const utf8 = new TextEncoder();

test('the key filter never says a key it was given is absent, lets few others through, and takes 10-20 bits a key', () => {
  const n = 100_000;
  const filter = new KeyFilter(n);
  // Keys at an offset inside a larger buffer (add reads a range), ASCII and not.
  const added = Array.from({ length: n }, (_, i) => utf8.encode(i % 7 === 0 ? `ключ/${i}` : `key/${String(i).padStart(8, '0')}`));
  for (const key of added) {
    const buf = new Uint8Array(key.length + 3);
    buf.set(key, 3);
    filter.add(buf, 3, key.length);
  }
  for (const key of added) assert.equal(filter.mayHold(key, key.length), true, `${new TextDecoder().decode(key)} was added`);
  let passed = 0;
  const absent = 50_000;
  for (let i = 0; i < absent; i++) {
    const key = utf8.encode(`other/${i}`);
    if (filter.mayHold(key, key.length)) passed++;
  }
  assert.ok(passed / absent < 0.03, `${passed} of ${absent} keys never added passed`);
  assert.ok(filter.bytes * 8 >= 10 * n && filter.bytes * 8 <= 20 * n, `${filter.bytes} bytes for ${n} keys`);
  // Only the first `n` bytes of the buffer are the key.
  const key = utf8.encode('key/00000001');
  const longer = new Uint8Array(key.length + 5);
  longer.set(key);
  longer.fill(0x7a, key.length);
  assert.equal(filter.mayHold(longer, key.length), true);
});
