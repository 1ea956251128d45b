// The idempotency table (Raft dissertation §6.3): a retried command is applied once and answers
// its first result; records expire by log-carried time and the table's bound evicts the oldest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Driver, bytes } from './helpers.js';
import type { KvResult } from '../../src/kv/result.js';

test('§6.3 a retry with the same idempotency key is not applied again and returns the first result', () => {
  const d = new Driver();
  const first = d.put('k', 'a', { idempotencyKey: 'c1/1' });
  assert.deepEqual(first, { type: 'put', index: 1, revision: 2 });
  d.put('k', 'b');
  const retry = d.put('k', 'a', { idempotencyKey: 'c1/1' });
  assert.deepEqual(retry, { type: 'put', index: 1, revision: 2 }, 'the first answer, with the first index and revision');
  assert.deepEqual(d.sm.get('k'), { key: 'k', value: bytes('b'), createIndex: 1, modIndex: 2, version: 2, createRevision: 2, modRevision: 3, lease: 0 }, 'the retry wrote nothing');
  assert.equal(d.sm.appliedIndex, 3);
});

test('§6.3 a retried delete and a retried compare failure answer their first result', () => {
  const d = new Driver();
  d.put('k', 'a');
  assert.deepEqual(d.del('k', { idempotencyKey: 'c/1' }), { type: 'delete', index: 2, revision: 3, deleted: true });
  d.put('k', 'again');
  assert.deepEqual(d.del('k', { idempotencyKey: 'c/1' }), { type: 'delete', index: 2, revision: 3, deleted: true });
  assert.ok(d.sm.get('k') !== null, 'the retried delete did not delete the re-created key');

  const failed = d.put('k', 'x', { prevExist: false, idempotencyKey: 'c/2' });
  assert.equal(failed.type, 'compareFailed');
  d.del('k');
  assert.deepEqual(d.put('k', 'x', { prevExist: false, idempotencyKey: 'c/2' }), failed, 'still the first answer, though it would now succeed');
  assert.equal(d.sm.get('k'), null);
});

test('§6.3 a retried transaction applies once', () => {
  const d = new Driver();
  const cmd = { type: 'txn' as const, compare: [], success: [{ type: 'put' as const, key: 'n', value: bytes('1') }], failure: [], idempotencyKey: 'c/9' };
  const first = d.apply(cmd);
  const again = d.apply(cmd);
  assert.deepEqual(again, first);
  assert.equal(d.sm.get('n')?.version, 1);
});

test('different sequence numbers or clients are different requests', () => {
  const d = new Driver();
  d.put('k', 'a', { idempotencyKey: 'c1/1' });
  d.put('k', 'a', { idempotencyKey: 'c1/2' });
  d.put('k', 'a', { idempotencyKey: 'c2/1' });
  assert.equal(d.sm.get('k')?.version, 3);
  assert.equal(d.sm.idempotencyRecords, 3);
});

test('records expire by log-carried time: a retry after the TTL is applied again', () => {
  const d = new Driver({ idempotencyTtlMs: 1000 });
  d.time = 10_000;
  d.put('k', 'a', { idempotencyKey: 'c/1' });
  d.time = 10_999;
  d.put('other', 'x');
  assert.deepEqual(d.put('k', 'a', { idempotencyKey: 'c/1' }), { type: 'put', index: 1, revision: 2 }, 'within the TTL: deduplicated');
  d.time = 11_000;
  d.put('other', 'y'); // carries the clock past the record's age
  assert.equal(d.sm.idempotencyRecords, 0);
  assert.deepEqual(d.put('k', 'a', { idempotencyKey: 'c/1' }), { type: 'put', index: 5, revision: 5 });
  assert.equal(d.sm.get('k')?.version, 2);
});

test('the log clock never runs backwards: an earlier leader time neither expires nor revives records', () => {
  const d = new Driver({ idempotencyTtlMs: 1000 });
  d.time = 50_000;
  d.put('k', 'a', { idempotencyKey: 'c/1' });
  d.time = 49_000; // a new leader whose clock is behind
  d.put('k', 'b', { idempotencyKey: 'c/2' });
  assert.equal(d.sm.logClock, 50_000);
  d.time = 50_999;
  d.put('z', 'z');
  assert.equal(d.sm.idempotencyRecords, 2, 'c/2 was stamped with the log clock (50000), not 49000');
  d.time = 51_000;
  d.put('z', 'z');
  assert.equal(d.sm.idempotencyRecords, 0);
});

test('expiry depends only on applied entries: wall-clock time passing changes nothing', async () => {
  const d = new Driver({ idempotencyTtlMs: 1 });
  d.put('k', 'a', { idempotencyKey: 'c/1' });
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(d.put('k', 'a', { idempotencyKey: 'c/1' }), { type: 'put', index: 1, revision: 2 });
});

test('the bound evicts the oldest records first', () => {
  const d = new Driver({ idempotencyMaxRecords: 3 });
  for (let seq = 1; seq <= 5; seq++) d.put(`k${seq}`, 'v', { idempotencyKey: `c/${seq}` });
  assert.equal(d.sm.idempotencyRecords, 3);
  // c/1 and c/2 were evicted: retries are applied again (index 6, 7); c/3..c/5 are remembered.
  assert.deepEqual(d.put('k1', 'v', { idempotencyKey: 'c/1' }), { type: 'put', index: 6, revision: 7 });
  assert.equal(d.sm.get('k1')?.version, 2);
  assert.deepEqual(d.put('k5', 'v', { idempotencyKey: 'c/5' }), { type: 'put', index: 5, revision: 6 });
  assert.equal(d.sm.get('k5')?.version, 1);
});

test('the idempotency table survives snapshot and restore', () => {
  const d = new Driver({ idempotencyTtlMs: 1000 });
  d.time = 5_000;
  d.put('k', 'a', { idempotencyKey: 'c/1' });
  const restored = new Driver({ idempotencyTtlMs: 1000 });
  restored.sm.restore(d.sm.snapshot());
  restored.index = d.index;
  restored.time = 5_500;
  assert.deepEqual(restored.put('k', 'a', { idempotencyKey: 'c/1' }), { type: 'put', index: 1, revision: 2 });
  assert.equal(restored.sm.logClock, 5_500);
  restored.time = 6_000;
  assert.deepEqual(restored.put('k', 'a', { idempotencyKey: 'c/1' }), { type: 'put', index: 3, revision: 3 }, 'expiry resumes from the restored clock');
});

test('the table\'s size estimate stays the sum of its records through evictions, expiry and reset', async () => {
  const { IdempotencyTable, idempotencyRecordBytes } = await import('../../src/kv/idempotency.js');
  const table = new IdempotencyTable(2000, 10_000);
  const live = new Map<string, number>();
  const check = (): void => {
    // What a snapshot would capture: every key, oldest first, with its result.
    const view = table.capture();
    const expected = view.keys.reduce((n, key) => n + idempotencyRecordBytes(key, view.resultOf(key)), 0);
    view.end();
    assert.equal(table.bytes, expected);
  };
  // More than the bound (evictions, past the 1024-record compaction of the order array), results
  // of different sizes, and the clock moving so that records expire in bulk.
  for (let i = 0; i < 7000; i++) {
    table.observe(i * 3);
    const key = `c${i % 97}/${i}`;
    const result = i % 5 === 0 ? { type: 'rejected' as const, error: 'COMPARE_FAILED' as const, message: 'x'.repeat(i % 300), index: i } : { type: 'put' as const, index: i, revision: i * 7 };
    table.remember(key, result);
    live.set(key, i);
    if (i % 997 === 0) check();
  }
  check();
  assert.ok(table.size <= 2000);
  const rows = (): [string, number, KvResult][] => {
    const view = table.capture();
    const out = view.keys.map((key, i): [string, number, KvResult] => [key, view.times[i]!, view.resultOf(key)]);
    view.end();
    return out;
  };
  const kept = rows();
  // What a restore hands over: the results in a Map, oldest first, and their times beside it.
  table.adopt(table.clock, new Map(kept.map(([key, , result]) => [key, result])), kept.map(([, time]) => time));
  assert.deepEqual(rows(), kept);
  check();
  table.observe(table.clock + 10_000);
  assert.equal(table.size, 0);
  assert.equal(table.bytes, 0);
});
