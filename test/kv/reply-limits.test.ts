// Bounded replies and the store's size (API.md "Health and limits"): a listing stops before its
// JSON passes maxBytes, a transaction whose reply could pass its replyLimit is refused before any
// write, the same on every replica, and sizeBytes follows every write, delete and restore.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  HISTORY_EVENT_OVERHEAD_BYTES,
  IDEMPOTENCY_RECORD_OVERHEAD_BYTES,
  LEASE_OVERHEAD_BYTES,
  KV_RECORD_OVERHEAD_BYTES,
  KvStateMachine,
  listJsonBytes,
  recordJsonBytes,
  recordToJson,
  txnResultJsonBytes,
  utf8Length,
  type Command,
  type KvResult,
  type TxnOp,
  type TxnResult,
} from '../../src/kv/index.js';
import { Driver, bytes, commandArb, entryOf, keyArb, txnOpArb, valueArb } from './helpers.js';

const jsonBytes = (x: unknown): number => new TextEncoder().encode(JSON.stringify(x)).length;

function store(records: readonly [string, Uint8Array][]): Driver {
  const d = new Driver();
  // The leases txnOpArb's puts may name.
  for (const id of [1, 2, 3]) d.apply({ type: 'leaseGrant', id, ttlSeconds: 10 });
  for (const [k, v] of records) d.put(k, v);
  return d;
}

// Some values large, so a record more or less decides whether a reply fits.
const storeArb = fc.array(fc.tuple(keyArb, fc.oneof(valueArb, fc.uint8Array({ minLength: 100, maxLength: 400 }))), { maxLength: 12 });

test('property: a listing never passes maxBytes, and stops only where the next record would not fit', () => {
  fc.assert(
    fc.property(storeArb, fc.constantFrom('', 'a', 'b/'), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 700 }), (records, prefix, limit, maxBytes) => {
      const sm = store(records).sm;
      const all = sm.list(prefix, limit);
      const page = sm.list(prefix, limit, maxBytes);
      assert.deepEqual(page.items, all.items.slice(0, page.items.length), 'a prefix of the unbounded listing');
      if (page.items.length < all.items.length) {
        assert.equal(page.more, true);
        // Counted with "more":false, the longer ending, hence the extra byte.
        assert.ok(listJsonBytes([...page.items, all.items[page.items.length]!], false) > maxBytes, 'the next record did not fit');
      } else {
        assert.equal(page.more, all.more);
      }
      if (page.items.length > 0) {
        assert.ok(jsonBytes({ items: page.items.map(recordToJson), more: page.more }) <= maxBytes);
        assert.equal(page.oversizedKey, undefined);
      } else {
        // With limit ≥ 1, an empty page of a non-empty listing means its first record alone did not fit.
        assert.equal(page.oversizedKey, all.items[0]?.key, 'the record that alone does not fit is named');
      }
    }),
    { numRuns: 1500, seed: 4242 },
  );
});

test('a listing whose first record alone exceeds maxBytes is empty, says more, and names that record', () => {
  const sm = store([['big', new Uint8Array(1000)], ['small', bytes('s')]]).sm;
  assert.deepEqual(sm.list('', 10, 500), { items: [], more: true, oversizedKey: 'big' });
  assert.equal(sm.list('s', 10, 500).items.length, 1);
});

test('the issue: 128 range reads over large values are refused with REPLY_TOO_LARGE, no write applied, on every replica', () => {
  const replicas = [new Driver(), new Driver()];
  const value = new Uint8Array(256 * 1024).fill(0x61);
  for (const d of replicas) for (let i = 0; i < 40; i++) d.put(`big/${String(i).padStart(2, '0')}`, value);
  // About 9 KB of command; unbounded, the reply would be 127 × 40 × 256 KiB ≈ 1.3 GB of JSON.
  const success: TxnOp[] = [{ type: 'put', key: 'written', value: bytes('no') }];
  for (let i = 0; i < 127; i++) success.push({ type: 'range', prefix: 'big/', limit: 10_000 });
  const cmd = { type: 'txn', compare: [], success, failure: [], replyLimit: 64 * 1024 * 1024 } as const;
  const results: KvResult[] = [];
  for (const d of replicas) {
    const before = d.sm.snapshot();
    const r = d.apply(cmd);
    results.push(r);
    assert.equal(r.type, 'rejected');
    assert.equal(r.type === 'rejected' && r.error, 'REPLY_TOO_LARGE');
    assert.equal(d.sm.get('written'), null, 'no write of the branch applied');
    assert.equal(d.sm.appliedIndex, 41);
    const after = new KvStateMachine();
    after.restore(d.sm.snapshot());
    const unchanged = new KvStateMachine();
    unchanged.restore(before);
    assert.deepEqual(after.list('', 100).items, unchanged.list('', 100).items);
  }
  assert.deepEqual(results[0], results[1], 'the same answer on every replica');
  // Within the limit the same transaction runs.
  const d = replicas[0]!;
  const small = d.apply({ ...cmd, success: [success[0]!, { type: 'range', prefix: 'big/', limit: 2 }] });
  assert.equal(small.type, 'txn');
  assert.ok(txnResultJsonBytes(small as TxnResult) <= cmd.replyLimit);
});

test('a range after a delete of the same branch reaches further into the store, and the bound counts that', () => {
  const d = store([['a', bytes('small')], ['b', new Uint8Array(10_000).fill(0x62)]]);
  const ops: TxnOp[] = [{ type: 'delete', key: 'a' }, { type: 'range', prefix: '', limit: 1 }];
  const r = d.apply({ type: 'txn', compare: [], success: ops, failure: [], replyLimit: 5000 });
  assert.equal(r.type === 'rejected' && r.error, 'REPLY_TOO_LARGE', 'the range would answer b, not a');
  assert.notEqual(d.sm.get('a'), null, 'and the delete did not happen');
});

test('a get after a put of the same branch answers the new record, and the bound counts that', () => {
  const d = store([['a', bytes('small')]]);
  const ops: TxnOp[] = [{ type: 'put', key: 'a', value: new Uint8Array(10_000).fill(0x61) }, { type: 'get', key: 'a' }];
  const r = d.apply({ type: 'txn', compare: [], success: ops, failure: [], replyLimit: 5000 });
  assert.equal(r.type === 'rejected' && r.error, 'REPLY_TOO_LARGE');
  assert.equal(d.sm.get('a')?.version, 1);
});

test('a txn without replyLimit (an older command) runs unbounded, as it first did', () => {
  const d = store([['a', new Uint8Array(1000)]]);
  const r = d.apply({ type: 'txn', compare: [], success: [{ type: 'get', key: 'a' }], failure: [] });
  assert.equal(r.type, 'txn');
});

test('property: a transaction that runs has a reply within its replyLimit; one refused changed nothing', () => {
  let ran = 0;
  let refused = 0;
  fc.assert(
    fc.property(storeArb, fc.array(txnOpArb, { maxLength: 8 }), fc.integer({ min: 0, max: 1500 }), (records, ops, replyLimit) => {
      const limited = store(records);
      const unlimited = store(records);
      const before = limited.sm.snapshot();
      const r = limited.apply({ type: 'txn', compare: [], success: ops, failure: [], replyLimit });
      const free = unlimited.apply({ type: 'txn', compare: [], success: ops, failure: [] }) as TxnResult;
      const actual = txnResultJsonBytes(free);
      if (r.type === 'txn') {
        ran++;
        assert.ok(actual <= replyLimit, `reply of ${actual} bytes ran under a limit of ${replyLimit}`);
        assert.deepEqual(r, free);
      } else {
        refused++;
        assert.equal(r.type === 'rejected' && r.error, 'REPLY_TOO_LARGE');
        // Nothing written: the state is the one before, at the next applied index.
        const again = new KvStateMachine();
        again.restore(before);
        assert.deepEqual(limited.sm.list('', 100), again.list('', 100));
      }
      // And the bound is not loose beyond reason: twice the real size, plus 1000 bytes, always runs.
      const roomy = store(records).apply({ type: 'txn', compare: [], success: ops, failure: [], replyLimit: 2 * actual + 1000 });
      assert.equal(roomy.type, 'txn');
    }),
    { numRuns: 1500, seed: 4243 },
  );
  assert.ok(ran > 300 && refused > 300, `ran ${ran}, refused ${refused}`);
});

function leaseKeyBytes(sm: KvStateMachine): number {
  let n = 0;
  for (const id of sm.leaseIds()) for (const key of sm.lease(id)!.keys) n += utf8Length(key);
  return n;
}

function expectedSize(sm: KvStateMachine): number {
  let n = 0;
  for (const rec of sm.list('', Number.MAX_SAFE_INTEGER).items) n += utf8Length(rec.key) + rec.value.length + KV_RECORD_OVERHEAD_BYTES;
  return n;
}

test('property: sizeBytes follows every write, delete and eviction, and a restore computes the same', () => {
  fc.assert(
    fc.property(fc.array(commandArb, { maxLength: 30 }), (cmds) => {
      const sm = new KvStateMachine({ idempotencyMaxRecords: 3 });
      cmds.forEach((cmd, i) => sm.apply(entryOf(i + 1, cmd)));
      const restored = new KvStateMachine({ idempotencyMaxRecords: 3 });
      restored.restore(sm.snapshot());
      assert.equal(sm.sizeBytes, restored.sizeBytes);
      const idempotency = sm.sizeBytes - expectedSize(sm) - sm.historyBytes - sm.leaseIds().length * LEASE_OVERHEAD_BYTES - leaseKeyBytes(sm);
      assert.ok(idempotency >= sm.idempotencyRecords * IDEMPOTENCY_RECORD_OVERHEAD_BYTES);
      if (sm.idempotencyRecords === 0) assert.equal(idempotency, 0);
    }),
    { numRuns: 800, seed: 4244 },
  );
});

test('sizeBytes counts keys in UTF-8, values, and a fixed overhead per key, and the history; a delete and a compaction give it all back', () => {
  const d = new Driver();
  assert.equal(d.sm.sizeBytes, 0);
  d.put('ключ', new Uint8Array(100));
  // An event costs its key, an overhead, and the value it replaced (kept only by the history).
  const event = (replacedBytes: number): number => 8 + replacedBytes + HISTORY_EVENT_OVERHEAD_BYTES;
  assert.equal(d.sm.sizeBytes, 8 + 100 + KV_RECORD_OVERHEAD_BYTES + event(0));
  d.put('ключ', new Uint8Array(10));
  assert.equal(d.sm.sizeBytes, 8 + 10 + KV_RECORD_OVERHEAD_BYTES + event(0) + event(100));
  d.del('ключ');
  assert.equal(d.sm.sizeBytes, event(0) + event(100) + event(10));
  d.apply({ type: 'compact', revision: d.sm.revision });
  assert.equal(d.sm.sizeBytes, event(10), 'the delete at the compact revision is kept, with the value it deleted');
  d.put('x', '');
  d.apply({ type: 'compact', revision: d.sm.revision });
  d.del('x');
  d.apply({ type: 'compact', revision: d.sm.revision });
  assert.equal(d.sm.sizeBytes, 1 + HISTORY_EVENT_OVERHEAD_BYTES);
  const big: Command = { type: 'put', key: 'k', value: new Uint8Array(5), time: 1, idempotencyKey: 'c/1' };
  d.sm.apply(entryOf(++d.index, big));
  assert.ok(d.sm.sizeBytes > 1 + 5 + KV_RECORD_OVERHEAD_BYTES + IDEMPOTENCY_RECORD_OVERHEAD_BYTES);
  assert.equal(recordJsonBytes(d.sm.get('k')!), jsonBytes(recordToJson(d.sm.get('k')!)));
});
