// The ordered key index against a model (a sorted array): random inserts, deletes and seeks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareKeys } from '../../src/kv/index.js';
import { SortedKeys } from '../../src/kv/sorted-keys.js';

function walk(sk: SortedKeys, start: string, max: number): string[] {
  const out: string[] = [];
  sk.forEachFrom(start, (k) => {
    out.push(k);
    return out.length < max;
  });
  return out;
}

test('property: SortedKeys matches a sorted-array model through inserts, deletes and seeks', () => {
  // A chunk load of 4 makes a few hundred operations split and merge chunks many times over.
  const keyArb = fc.integer({ min: 0, max: 300 }).map((n) => `k${n.toString(36)}`);
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), keyArb), { minLength: 50, maxLength: 600 }),
      keyArb,
      fc.integer({ min: 1, max: 8 }),
      (ops, seek, chunkLoad) => {
        const sk = new SortedKeys(chunkLoad);
        const model = new Set<string>();
        for (const [isInsert, key] of ops) {
          if (isInsert) assert.equal(sk.insert(key), !model.has(key));
          else assert.equal(sk.delete(key), model.has(key));
          if (isInsert) model.add(key);
          else model.delete(key);
        }
        const sorted = [...model].sort(compareKeys);
        assert.equal(sk.size, sorted.length);
        assert.deepEqual([...sk], sorted);
        assert.deepEqual(walk(sk, seek, 50), sorted.filter((k) => compareKeys(k, seek) >= 0).slice(0, 50));
        const sizes = sk.chunkSizes();
        assert.ok(sizes.every((n) => n > 0 && n <= 2 * chunkLoad), `chunk sizes within bounds: ${sizes.join(',')}`);
      },
    ),
    { numRuns: 100 },
  );
});

test('bulk deletes merge thin chunks back together', () => {
  const sk = new SortedKeys(8);
  for (let i = 0; i < 400; i++) sk.insert(`k${String(i).padStart(4, '0')}`);
  const before = sk.chunkSizes().length;
  for (let i = 0; i < 400; i++) if (i % 10 !== 0) sk.delete(`k${String(i).padStart(4, '0')}`);
  assert.equal(sk.size, 40);
  assert.ok(sk.chunkSizes().length < before / 2, `chunks ${before} → ${sk.chunkSizes().length}`);
});

test('fromSorted builds the same index and refuses unsorted or duplicate input', () => {
  const keys = Array.from({ length: 2000 }, (_, i) => `k${String(i).padStart(5, '0')}`);
  const sk = SortedKeys.fromSorted(keys);
  assert.ok(sk !== null);
  assert.deepEqual([...sk], keys);
  assert.equal(sk.insert('k00500'), false);
  assert.equal(sk.delete('k00500'), true);
  assert.equal(sk.size, 1999);
  assert.equal(SortedKeys.fromSorted(['b', 'a']), null);
  assert.equal(SortedKeys.fromSorted(['a', 'a']), null);
});

test('seeking past every key visits nothing; an empty index visits nothing', () => {
  const sk = new SortedKeys();
  assert.deepEqual(walk(sk, '', 10), []);
  sk.insert('a');
  assert.deepEqual(walk(sk, 'b', 10), []);
  assert.deepEqual(walk(sk, '', 10), ['a']);
});
