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

test('property: SortedKeys matches a sorted-array model through inserts, deferred adds, deletes and seeks', () => {
  // A chunk load of 4 makes a few hundred operations split and merge chunks many times over.
  // Keys with units ≥ 0xD800 (where JavaScript's order is not compareKeys's) test the sort of
  // deferred adds in both of its orders.
  const keyArb = fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 300 }).map((n) => `k${n.toString(36)}`) },
    { weight: 1, arbitrary: fc.constantFrom('k\uffff', 'k😀', 'k\ue000', 'k\ud7ff', 'ké', '😀', '\uffff') },
  );
  const opArb = fc.tuple(fc.constantFrom('insert', 'add', 'delete', 'seek'), keyArb);
  fc.assert(
    fc.property(
      fc.array(opArb, { minLength: 50, maxLength: 600 }),
      keyArb,
      fc.integer({ min: 1, max: 8 }),
      (ops, seek, chunkLoad) => {
        const sk = new SortedKeys(chunkLoad);
        const model = new Set<string>();
        for (const [op, key] of ops) {
          if (op === 'insert') {
            assert.equal(sk.insert(key), !model.has(key));
            model.add(key);
          } else if (op === 'add') {
            // add() is for keys the caller knows are absent (the store checks its Map first).
            if (!model.has(key)) sk.add(key);
            model.add(key);
          } else if (op === 'delete') {
            assert.equal(sk.delete(key), model.has(key));
            model.delete(key);
          } else {
            assert.equal(sk.size, model.size);
            assert.deepEqual(walk(sk, key, 5), [...model].sort(compareKeys).filter((k) => compareKeys(k, key) >= 0).slice(0, 5));
          }
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

test('keys add()ed are placed in code point order when the index is next read: a batch into an empty index, and into a full one', () => {
  const sk = new SortedKeys(4);
  const first = ['m', 'b', '😀', 'z', '\uffff', 'a', 'c', 'é'];
  for (const k of first) sk.add(k);
  assert.equal(sk.size, first.length);
  assert.deepEqual(sk.toArray(), [...first].sort(compareKeys));
  const more = ['d', 'aa', '\ue000', 'zz', 'n'];
  for (const k of more) sk.add(k);
  assert.deepEqual([...sk], [...first, ...more].sort(compareKeys));
  assert.equal(sk.delete('😀'), true);
  assert.equal(sk.insert('b'), false);
  assert.ok(sk.chunkSizes().every((n) => n > 0 && n <= 8));
});
