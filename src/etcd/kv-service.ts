// etcd's KV service (Range, Put, DeleteRange, Txn, Compact) over raftkv's one store: writes are
// proposed through the node's KvService (a follower forwards them as proposals, as the HTTP API
// does), reads are served from this node's applied state after a ReadIndex barrier
// (linearizable, the default) or at once (serializable).
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { encodeChecked, settle, unexpected } from '../server/kv-backend.js';
import { compareKeys, type KvResult } from '../kv/index.js';
import type { EtcdContext, ResponseHeader } from './context.js';
import { ETCD_ERRORS } from './errors.js';
import { unary, type CallInfo } from './handlers.js';
import { rangeOptions, runRange, mapKvError, findRecord, type RangeRequest } from './range.js';
import { int64, keyRange, keyText, keyValueOf, rangePrefix, type KeyValue } from './wire.js';
import { prevRecords, readAction, ReplyBudget } from './reads.js';
import { runTxn, type TxnRequest } from './txn.js';

export interface PutRequest {
  key: Buffer;
  value: Buffer;
  lease: string | number;
  prev_kv: boolean;
  ignore_value: boolean;
  ignore_lease: boolean;
}

export interface DeleteRangeRequest {
  key: Buffer;
  range_end: Buffer;
  prev_kv: boolean;
}

export function kvService(ctx: EtcdContext): UntypedServiceImplementation {
  return {
    Range: unary(ctx, (req: RangeRequest, call) => range(ctx, req, call)),
    Put: unary(ctx, (req: PutRequest, call) => put(ctx, req, call)),
    DeleteRange: unary(ctx, (req: DeleteRangeRequest, call) => deleteRange(ctx, req, call)),
    Txn: unary(ctx, (req: TxnRequest, call) => runTxn(ctx, req, call)),
    Compact: unary(ctx, (req: { revision: string | number }, call) => compact(ctx, req, call)),
  };
}

async function range(ctx: EtcdContext, req: RangeRequest, call: CallInfo): Promise<{ header: ResponseHeader; kvs: KeyValue[]; more: boolean; count: number }> {
  const o = rangeOptions(req);
  ctx.authorize(call.principal, [readAction(o.range)]);
  if (req.serializable !== true) await ctx.parts.service.readBarrier('linearizable', call.deadline);
  const kv = ctx.parts.kv;
  // The header's revision is the store's when read (etcd's), also for a read at an older one.
  const header = ctx.header();
  return { header, ...runRange(kv, o, ctx.parts.cfg.maxResponseBytes) };
}

async function put(ctx: EtcdContext, req: PutRequest, call: CallInfo): Promise<{ header: ResponseHeader; prev_kv: KeyValue | null }> {
  if (req.key.length === 0) throw ETCD_ERRORS.emptyKey();
  const key = keyText(req.key);
  ctx.authorize(call.principal, [{ type: 'write', key }]);
  let lease = int64(req.lease, 'lease', 0);
  let value: Uint8Array = req.value;
  const { service, kv } = ctx.parts;
  if (req.ignore_value && req.value.length > 0) throw ETCD_ERRORS.valueProvided();
  if (req.ignore_lease && lease !== 0) throw ETCD_ERRORS.leaseProvided();
  if (req.ignore_value || req.ignore_lease) {
    // Keep the key's current value or lease: a compare-and-set on its mod revision, retried while
    // other writers move it, so what is kept is what the key held when the write applied.
    for (let attempt = 0; ; attempt++) {
      await service.readBarrier('linearizable', call.deadline);
      const current = findRecord(kv, key, kv.revision);
      if (current === null) throw ETCD_ERRORS.keyNotFound();
      if (req.ignore_value) value = Buffer.from(current.bytes, 'latin1');
      if (req.ignore_lease) lease = current.lease;
      const data = encodeChecked(kv, {
        type: 'txn',
        time: Date.now(),
        compare: [{ key, target: 'modRevision', op: '=', value: current.modRevision }],
        success: [{ type: 'put', key, value, ...(lease !== 0 ? { lease } : {}) }],
        failure: [],
      });
      const result = settle((await service.write(data, true, call.deadline, call.principal?.name)) as KvResult | undefined);
      if (result.type !== 'txn') throw unexpected(result);
      if (result.succeeded) return { header: ctx.header(result.revision), prev_kv: req.prev_kv ? keyValueOf(current) : null };
      if (attempt >= 20 || Date.now() >= call.deadline) throw ETCD_ERRORS.timeout();
    }
  }
  const { index, revision } = await service.put(key, value, lease !== 0 ? { lease } : {}, undefined, call.deadline, call.principal?.name);
  let prev: KeyValue | null = null;
  if (req.prev_kv) {
    const rec = await prevRecords(ctx, index, revision, call.deadline, (k) => k === key, new ReplyBudget(ctx.parts.cfg.maxResponseBytes));
    prev = rec[0] === undefined ? null : keyValueOf(rec[0]);
  }
  return { header: ctx.header(revision), prev_kv: prev };
}

async function deleteRange(ctx: EtcdContext, req: DeleteRangeRequest, call: CallInfo): Promise<{ header: ResponseHeader; deleted: number; prev_kvs: KeyValue[] }> {
  const r = keyRange(req.key, req.range_end, ETCD_ERRORS.emptyKey);
  ctx.authorize(call.principal, r.type === 'key' ? [{ type: 'write', key: r.key }] : [{ type: 'write', key: rangePrefix(r) }, readAction(r)]);
  const { service, kv } = ctx.parts;
  let index: number;
  let revision: number;
  let deleted: number;
  if (r.type === 'key') {
    const out = await service.delete(r.key, {}, undefined, call.deadline, call.principal?.name);
    ({ index, revision } = out);
    deleted = out.deleted ? 1 : 0;
  } else {
    const data = encodeChecked(kv, { type: 'txn', time: Date.now(), compare: [], success: [{ type: 'deleteRange', start: r.start, end: r.end }], failure: [] });
    const result = settle((await service.write(data, false, call.deadline, call.principal?.name)) as KvResult | undefined);
    if (result.type !== 'txn') throw unexpected(result);
    const response = result.responses[0];
    if (response?.type !== 'deleteRange') throw unexpected(result);
    ({ index, revision } = result);
    deleted = response.deleted;
  }
  let prevKvs: KeyValue[] = [];
  if (req.prev_kv && deleted > 0) {
    const inRange = r.type === 'key' ? (k: string) => k === r.key : (k: string) => compareKeys(k, r.start) >= 0 && (r.end === null || compareKeys(k, r.end) < 0);
    prevKvs = (await prevRecords(ctx, index, revision, call.deadline, inRange, new ReplyBudget(ctx.parts.cfg.maxResponseBytes))).map((rec) => keyValueOf(rec));
  }
  return { header: ctx.header(revision), deleted, prev_kvs: prevKvs };
}

async function compact(ctx: EtcdContext, req: { revision: string | number }, call: CallInfo): Promise<{ header: ResponseHeader }> {
  ctx.authorize(call.principal, [{ type: 'admin' }]);
  const revision = int64(req.revision, 'revision', 0);
  const { kv, service } = ctx.parts;
  // etcd's answers for a compaction at or below the last one, or past the store.
  if (revision > kv.revision) throw ETCD_ERRORS.futureRevision();
  if (revision <= kv.compactRevision) throw ETCD_ERRORS.compacted();
  let data: Uint8Array;
  try {
    data = encodeChecked(kv, { type: 'compact', revision, time: Date.now() });
  } catch (err) {
    throw mapKvError(err);
  }
  const result = settle((await service.write(data, false, call.deadline, call.principal?.name)) as KvResult | undefined);
  if (result.type !== 'compact') throw unexpected(result);
  return { header: ctx.header(result.revision) };
}
