// Transactions (etcd style): every compare target and op, both branches, in-order effects within
// a branch, atomicity, and the JSON form of POST /v1/txn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KvError, decodeBase64, encodeBase64, txnFromJson, txnResultToJson, type TxnCompare, type TxnOp, type TxnResult } from '../../src/kv/index.js';
import { Driver, bytes } from './helpers.js';

function txn(d: Driver, compare: TxnCompare[], success: TxnOp[], failure: TxnOp[] = []): TxnResult {
  const r = d.apply({ type: 'txn', compare, success, failure });
  assert.equal(r.type, 'txn');
  return r as TxnResult;
}

test('txn with no compares runs the success branch', () => {
  const d = new Driver();
  const r = txn(d, [], [{ type: 'put', key: 'a', value: bytes('1') }, { type: 'put', key: 'b', value: bytes('2') }]);
  assert.equal(r.succeeded, true);
  assert.equal(r.index, 1);
  assert.deepEqual(r.responses, [{ type: 'put', key: 'a' }, { type: 'put', key: 'b' }]);
  assert.equal(d.sm.get('a')?.modIndex, 1);
  assert.equal(d.sm.get('b')?.modIndex, 1, 'every write of a txn carries the txn entry index');
});

test('txn compare on value: = != < > against an existing key, and false for a missing key', () => {
  const d = new Driver();
  d.put('k', 'm');
  const check = (op: '=' | '!=' | '<' | '>', v: string, key = 'k'): boolean =>
    txn(d, [{ key, target: 'value', op, value: bytes(v) }], []).succeeded;
  assert.equal(check('=', 'm'), true);
  assert.equal(check('=', 'n'), false);
  assert.equal(check('!=', 'n'), true);
  assert.equal(check('!=', 'm'), false);
  assert.equal(check('<', 'n'), true, "'m' < 'n'");
  assert.equal(check('<', 'm'), false);
  assert.equal(check('>', 'l'), true);
  assert.equal(check('>', 'mm'), false, 'a proper prefix sorts first');
  for (const op of ['=', '!=', '<', '>'] as const) assert.equal(check(op, 'x', 'missing'), false, `value ${op} on a missing key`);
});

test('txn compare on version, createIndex, modIndex; a missing key counts as 0', () => {
  const d = new Driver();
  d.put('x', '0'); // 1
  d.put('k', 'a'); // 2
  d.put('k', 'b'); // 3
  const holds = (c: TxnCompare): boolean => txn(d, [c], []).succeeded;
  assert.equal(holds({ key: 'k', target: 'version', op: '=', value: 2 }), true);
  assert.equal(holds({ key: 'k', target: 'version', op: '>', value: 2 }), false);
  assert.equal(holds({ key: 'k', target: 'createIndex', op: '=', value: 2 }), true);
  assert.equal(holds({ key: 'k', target: 'createIndex', op: '<', value: 2 }), false);
  assert.equal(holds({ key: 'k', target: 'modIndex', op: '=', value: 3 }), true);
  assert.equal(holds({ key: 'k', target: 'modIndex', op: '!=', value: 3 }), false);
  assert.equal(holds({ key: 'k', target: 'modIndex', op: '<', value: 4 }), true);
  assert.equal(holds({ key: 'nope', target: 'version', op: '=', value: 0 }), true);
  assert.equal(holds({ key: 'nope', target: 'createIndex', op: '>', value: 0 }), false);
});

test('txn runs the failure branch when any compare fails, and the success branch not at all', () => {
  const d = new Driver();
  d.put('lock', 'held');
  const r = txn(
    d,
    [{ key: 'lock', target: 'version', op: '=', value: 1 }, { key: 'lock', target: 'value', op: '=', value: bytes('free') }],
    [{ type: 'put', key: 'won', value: bytes('yes') }],
    [{ type: 'get', key: 'lock' }, { type: 'put', key: 'lost', value: bytes('yes') }],
  );
  assert.equal(r.succeeded, false);
  assert.equal(d.sm.get('won'), null);
  assert.deepEqual(d.sm.get('lost')?.value, bytes('yes'));
  assert.deepEqual(r.responses[0], { type: 'get', key: 'lock', record: { key: 'lock', value: bytes('held'), createIndex: 1, modIndex: 1, version: 1, createRevision: 2, modRevision: 2, lease: 0 } });
});

test('txn ops run in order and see earlier ops: put, get, delete, get, range', () => {
  const d = new Driver();
  d.put('p/a', '1');
  const r = txn(d, [], [
    { type: 'put', key: 'p/b', value: bytes('2') },
    { type: 'get', key: 'p/b' },
    { type: 'delete', key: 'p/a' },
    { type: 'delete', key: 'p/zz' },
    { type: 'get', key: 'p/a' },
    { type: 'put', key: 'p/b', value: bytes('3') },
    { type: 'range', prefix: 'p/', limit: 10 },
  ]);
  assert.deepEqual(r.responses, [
    { type: 'put', key: 'p/b' },
    { type: 'get', key: 'p/b', record: { key: 'p/b', value: bytes('2'), createIndex: 2, modIndex: 2, version: 1, createRevision: 3, modRevision: 3, lease: 0 } },
    { type: 'delete', key: 'p/a', deleted: true },
    { type: 'delete', key: 'p/zz', deleted: false },
    { type: 'get', key: 'p/a', record: null },
    { type: 'put', key: 'p/b' },
    { type: 'range', prefix: 'p/', items: [{ key: 'p/b', value: bytes('3'), createIndex: 2, modIndex: 2, version: 2, createRevision: 3, modRevision: 3, lease: 0 }], more: false },
  ]);
});

test('txn compares see the state before the txn, not its own writes (atomic check-then-act)', () => {
  const d = new Driver();
  // Both compares are evaluated up front: a write in the branch cannot affect them.
  const r = txn(d, [{ key: 'k', target: 'version', op: '=', value: 0 }], [{ type: 'put', key: 'k', value: bytes('a') }]);
  assert.equal(r.succeeded, true);
  const again = txn(d, [{ key: 'k', target: 'version', op: '=', value: 0 }], [{ type: 'put', key: 'k', value: bytes('b') }]);
  assert.equal(again.succeeded, false);
  assert.deepEqual(d.sm.get('k')?.value, bytes('a'));
});

test('property: a txn equals its branch applied as separate commands, in one index', () => {
  // Atomicity in a deterministic machine means: the effects are exactly those of the chosen
  // branch, nothing of the other branch, all stamped with the txn's index.
  fc.assert(
    fc.property(
      fc.array(fc.record({ key: fc.constantFrom('a', 'b', 'c'), value: fc.constantFrom('1', '2') }), { maxLength: 4 }),
      fc.constantFrom('a', 'b', 'c'),
      fc.nat({ max: 2 }),
      (setup, ckey, cversion) => {
        const d = new Driver();
        for (const s of setup) d.put(s.key, s.value);
        const before = d.sm.get(ckey)?.version ?? 0;
        const r = txn(d, [{ key: ckey, target: 'version', op: '=', value: cversion }], [{ type: 'delete', key: 'a' }, { type: 'put', key: 'b', value: bytes('S') }], [{ type: 'put', key: 'c', value: bytes('F') }]);
        assert.equal(r.succeeded, before === cversion);
        if (r.succeeded) {
          assert.equal(d.sm.get('a'), null);
          assert.equal(d.sm.get('b')?.modIndex, d.index);
          assert.notDeepEqual(d.sm.get('c')?.value, bytes('F'));
        } else {
          assert.equal(d.sm.get('c')?.modIndex, d.index);
          assert.notDeepEqual(d.sm.get('b')?.value, bytes('S'));
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('txnFromJson parses the JSON form, with base64 values', () => {
  const cmd = txnFromJson(
    {
      compare: [
        { key: 'k', target: 'value', op: '=', value: '/wA=', encoding: 'base64' },
        { key: 'k', target: 'version', op: '>', value: 2 },
      ],
      success: [{ type: 'put', key: 'k', value: 'héllo' }, { type: 'range', prefix: 'k' }],
      failure: [{ type: 'get', key: 'k' }, { type: 'delete', key: 'k' }],
    },
    42,
    'c/1',
  );
  assert.deepEqual(cmd, {
    type: 'txn',
    time: 42,
    idempotencyKey: 'c/1',
    compare: [
      { key: 'k', target: 'value', op: '=', value: new Uint8Array([0xff, 0x00]) },
      { key: 'k', target: 'version', op: '>', value: 2 },
    ],
    success: [{ type: 'put', key: 'k', value: bytes('héllo') }, { type: 'range', prefix: 'k', limit: 1000 }],
    failure: [{ type: 'get', key: 'k' }, { type: 'delete', key: 'k' }],
  });
});

test('txnFromJson rejects malformed bodies with BAD_REQUEST and oversize keys with KEY_TOO_LARGE', () => {
  const code = (body: unknown): string => {
    try {
      txnFromJson(body, 1);
    } catch (err) {
      assert.ok(err instanceof KvError);
      return err.code;
    }
    return 'accepted';
  };
  assert.equal(code(null), 'BAD_REQUEST');
  assert.equal(code([]), 'BAD_REQUEST');
  assert.equal(code({ compare: {} }), 'BAD_REQUEST');
  assert.equal(code({ extra: 1 }), 'BAD_REQUEST');
  assert.equal(code({ compare: [{ key: 'k', target: 'size', op: '=', value: 1 }] }), 'BAD_REQUEST');
  assert.equal(code({ compare: [{ key: 'k', target: 'version', op: '>=', value: 1 }] }), 'BAD_REQUEST');
  assert.equal(code({ compare: [{ key: 'k', target: 'version', op: '=', value: -1 }] }), 'BAD_REQUEST');
  assert.equal(code({ compare: [{ key: 'k', target: 'version', op: '=', value: '1' }] }), 'BAD_REQUEST');
  assert.equal(code({ success: [{ type: 'put', key: 'k' }] }), 'BAD_REQUEST');
  assert.equal(code({ success: [{ type: 'put', key: 'k', value: 'v', encoding: 'hex' }] }), 'BAD_REQUEST');
  assert.equal(code({ success: [{ type: 'put', key: 'k', value: '***', encoding: 'base64' }] }), 'BAD_REQUEST');
  assert.equal(code({ success: [{ type: 'get', key: 'k', value: 'v' }] }), 'BAD_REQUEST');
  assert.equal(code({ success: [{ type: 'range', prefix: 'k', limit: 0 }] }), 'BAD_REQUEST');
  assert.equal(code({ success: [{ type: 'scan', key: 'k' }] }), 'BAD_REQUEST');
  assert.equal(code({ success: [{ type: 'get', key: '' }] }), 'BAD_KEY');
  assert.equal(code({ success: [{ type: 'get', key: 'x'.repeat(4097) }] }), 'KEY_TOO_LARGE');
  assert.equal(code({ success: Array.from({ length: 129 }, () => ({ type: 'get', key: 'k' })) }), 'BAD_REQUEST');
  assert.equal(code({}), 'accepted', 'an empty transaction is allowed');
});

test('txnResultToJson renders values as UTF-8 text or base64', () => {
  const result: TxnResult = {
    type: 'txn',
    index: 7,
    revision: 4,
    succeeded: true,
    responses: [
      { type: 'get', key: 't', record: { key: 't', value: bytes('text'), createIndex: 1, modIndex: 2, version: 2, createRevision: 2, modRevision: 3, lease: 0 } },
      { type: 'get', key: 'b', record: { key: 'b', value: new Uint8Array([0xff]), createIndex: 3, modIndex: 3, version: 1, createRevision: 4, modRevision: 4, lease: 0 } },
      { type: 'get', key: 'm', record: null },
    ],
  };
  assert.deepEqual(txnResultToJson(result), {
    succeeded: true,
    index: 7,
    revision: 4,
    responses: [
      { type: 'get', key: 't', record: { key: 't', value: 'text', createIndex: 1, modIndex: 2, version: 2, createRevision: 2, modRevision: 3, lease: 0 } },
      { type: 'get', key: 'b', record: { key: 'b', value: '/w==', encoding: 'base64', createIndex: 3, modIndex: 3, version: 1, createRevision: 4, modRevision: 4, lease: 0 } },
      { type: 'get', key: 'm', record: null },
    ],
  });
});

test('base64 round-trips any bytes and matches Node', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      const text = encodeBase64(b);
      assert.equal(text, Buffer.from(b).toString('base64'));
      assert.deepEqual(decodeBase64(text), b);
    }),
  );
});
