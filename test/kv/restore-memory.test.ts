// §7 and issue 11 (RSS at 1M keys): a restore keeps the snapshot's bytes as the store's base, and
// leaves the history and the idempotency table encoded in them (beginRestore). Once a newer
// snapshot has become the base, nothing may hold those bytes any more: at 1M keys they are
// ~300 MB, and a member that kept them would hold two snapshots' worth for good. Checked with a
// WeakRef on the restored buffer across forced major GCs, for each part that reads from it: the
// base, a history still pending, and idempotency records never looked up (neither evicted nor
// decoded when the snapshot began).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { KvStateMachine } from '../../src/kv/index.js';
import { bytes, entryOf } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const OPTIONS = { idempotencyMaxRecords: 1000, idempotencyTtlMs: 10_000_000 };
const KEYS = 300;
const text = (v: Uint8Array | undefined): string | undefined => (v === undefined ? undefined : new TextDecoder().decode(v));

/** Collects garbage until `ref` is released, or gives up after a few rounds; true if it was. */
async function released(ref: WeakRef<ArrayBufferLike>): Promise<boolean> {
  for (let round = 0; round < 5; round++) {
    // A WeakRef's target stays alive until the current job ends: collect from a later turn.
    await new Promise((r) => setImmediate(r));
    gc();
    if (ref.deref() === undefined) return true;
  }
  return false;
}

/**
 * A store restored in slices from a snapshot of KEYS keys, each written with an idempotency key,
 * and a WeakRef to the buffer the restore read; the caller never sees the buffer itself.
 */
function restored(finishHistory: boolean): { sm: KvStateMachine; ref: WeakRef<ArrayBufferLike>; index: number } {
  const source = new KvStateMachine(OPTIONS);
  let index = 0;
  for (let i = 0; i < KEYS; i++) {
    source.apply(entryOf(++index, { type: 'put', key: `k${i}`, value: bytes(`value ${i}`), time: 1_000_000 + i, idempotencyKey: `client/${i}` }));
  }
  const data = source.snapshot().slice();
  const sm = new KvStateMachine(OPTIONS);
  const task = sm.beginRestore(data, 16);
  while (!task.step()) {
    // to the end of the restore's own part
  }
  assert.equal(sm.isLoadingInBackground, true, 'the history is left encoded');
  assert.equal(sm.idempotencyRecords, KEYS, 'the idempotency records were restored');
  if (finishHistory) while (!sm.loadInBackground()) {
    // decode the history now
  }
  return { sm, ref: new WeakRef(data.buffer), index };
}

for (const finishHistory of [false, true]) {
  test(`§7 a restored store lets go of the restored snapshot's bytes once a newer snapshot is its base (history ${finishHistory ? 'decoded' : 'still encoded'} when it began)`, async () => {
    const { sm, ref, index } = restored(finishHistory);
    // A few writes, none with an idempotency key already there: the encoded records stay encoded.
    for (let i = 0; i < 5; i++) sm.apply(entryOf(index + 1 + i, { type: 'put', key: `k${i}`, value: bytes(`new ${i}`), time: 2_000_000 + i }));
    assert.equal(sm.idempotencyRecords, KEYS, 'no idempotency record was evicted');
    assert.equal(await released(ref), false, 'the restored bytes are the base until a newer snapshot replaces it');

    const inProgress = sm.beginSnapshot();
    let data: Uint8Array | null = null;
    while (data === null) data = inProgress.step(256);
    assert.equal(await released(ref), true, 'nothing holds the restored snapshot once a newer one is the base');

    // Everything it held is still there, read from the new base and the decoded tables.
    assert.equal(sm.idempotencyRecords, KEYS);
    assert.equal(text(sm.get('k0')?.value), 'new 0');
    assert.equal(text(sm.get(`k${KEYS - 1}`)?.value), `value ${KEYS - 1}`);
    const again = new KvStateMachine(OPTIONS);
    again.restore(data);
    assert.equal(again.revision, sm.revision);
    assert.equal(again.idempotencyRecords, KEYS);
  });
}
