// etcd's Txn over raftkv's transaction command (src/kv/command.ts): the compares and the writes of
// both branches go through the log as one command, applied atomically at one revision. The reads
// of the branch that ran (Range ops, with everything etcd's Range takes: ranges, sort, limit,
// filters) are answered from this node's history at the transaction's revision once it has
// applied it, which is exactly what they saw in the transaction when no later op of the branch
// writes into their range. A read that a later op does overwrite is carried in the command itself
// when it reads one key (a `get`), and refused otherwise (docs/etcd-server-notes.md).
import { status } from '@grpc/grpc-js';
import { MAX_TXN_OPS, compareKeys, type CompareOp, type KvResult, type TxnCompare, type TxnOp, type TxnResponse as KvTxnResponse } from '../kv/index.js';
import type { Action } from '../server/auth.js';
import { encodeChecked, settle, unexpected } from '../server/kv-backend.js';
import type { EtcdContext, ResponseHeader } from './context.js';
import { ETCD_ERRORS, EtcdError } from './errors.js';
import type { CallInfo } from './handlers.js';
import type { DeleteRangeRequest, PutRequest } from './kv-service.js';
import { prevRecords, readAction, ReplyBudget, withDeadline } from './reads.js';
import { mapKvError, rangeOptions, runRange, type RangeOptions, type RangeRequest } from './range.js';
import { int64, keyRange, keyText, keyValueOf, rangePrefix, type KeyRange, type KeyValue } from './wire.js';

export interface RequestOp {
  request?: 'request_range' | 'request_put' | 'request_delete_range' | 'request_txn';
  request_range?: RangeRequest;
  request_put?: PutRequest;
  request_delete_range?: DeleteRangeRequest;
  request_txn?: TxnRequest;
}

export interface Compare {
  result: string;
  target: string;
  key: Buffer;
  target_union?: string;
  version?: string | number;
  create_revision?: string | number;
  mod_revision?: string | number;
  value?: Buffer;
  lease?: string | number;
  range_end: Buffer;
}

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

type ResponseOp =
  | { response_range: { header: ResponseHeader; kvs: KeyValue[]; more: boolean; count: number } }
  | { response_put: { header: ResponseHeader; prev_kv: KeyValue | null } }
  | { response_delete_range: { header: ResponseHeader; deleted: number; prev_kvs: KeyValue[] } };

/** One op of a branch as planned: what goes in the command, and how its answer is made. */
type Planned =
  | { readonly kind: 'read'; readonly options: RangeOptions }
  | { readonly kind: 'get'; readonly options: RangeOptions; readonly commandIndex: number }
  | { readonly kind: 'put'; readonly key: string; readonly prevKv: boolean }
  | { readonly kind: 'delete'; readonly range: KeyRange; readonly prevKv: boolean; readonly commandIndex: number };

const RESULTS: Record<string, CompareOp> = { EQUAL: '=', GREATER: '>', LESS: '<', NOT_EQUAL: '!=' };

function compareOf(c: Compare): TxnCompare {
  const op = RESULTS[c.result];
  if (op === undefined) throw new EtcdError(status.INVALID_ARGUMENT, 'raftkv: unknown compare result');
  if (c.key.length === 0) throw ETCD_ERRORS.emptyKey();
  if (c.range_end.length > 0) throw new EtcdError(status.UNIMPLEMENTED, 'raftkv: a compare over a key range (range_end) is not supported; compare single keys');
  const key = keyText(c.key);
  const num = (v: unknown, field: string): number => int64(v ?? 0, field, 0);
  switch (c.target) {
    case 'VALUE':
      return { key, target: 'value', op, value: c.value ?? Buffer.alloc(0) };
    case 'VERSION':
      return { key, target: 'version', op, value: num(c.version, 'version') };
    case 'CREATE':
      return { key, target: 'createRevision', op, value: num(c.create_revision, 'create_revision') };
    case 'MOD':
      return { key, target: 'modRevision', op, value: num(c.mod_revision, 'mod_revision') };
    case 'LEASE':
      return { key, target: 'lease', op, value: num(c.lease, 'lease') };
    default:
      throw new EtcdError(status.INVALID_ARGUMENT, 'raftkv: unknown compare target');
  }
}

function writesInto(op: TxnOp, r: KeyRange): boolean {
  const inRange = (k: string): boolean => (r.type === 'key' ? k === r.key : compareKeys(k, r.start) >= 0 && (r.end === null || compareKeys(k, r.end) < 0));
  if (op.type === 'put' || op.type === 'delete') return inRange(op.key);
  if (op.type !== 'deleteRange') return false;
  if (r.type === 'key') return compareKeys(r.key, op.start) >= 0 && (op.end === null || compareKeys(r.key, op.end) < 0);
  return (r.end === null || compareKeys(op.start, r.end) < 0) && (op.end === null || compareKeys(r.start, op.end) < 0);
}

/** A branch as the command's ops, the plan of its answers, and the permissions it needs. */
function planBranch(ops: readonly RequestOp[], actions: Action[]): { commandOps: TxnOp[]; plan: Planned[] } {
  const commandOps: TxnOp[] = [];
  const plan: Planned[] = [];
  const reads: { at: number; options: RangeOptions }[] = [];
  for (const op of ops) {
    switch (op.request) {
      case 'request_range': {
        const options = rangeOptions(op.request_range!);
        actions.push(readAction(options.range));
        reads.push({ at: commandOps.length, options });
        plan.push({ kind: 'read', options });
        break;
      }
      case 'request_put': {
        const p = op.request_put!;
        if (p.key.length === 0) throw ETCD_ERRORS.emptyKey();
        if (p.ignore_value || p.ignore_lease) throw new EtcdError(status.UNIMPLEMENTED, 'raftkv: ignore_value and ignore_lease are not supported inside a transaction');
        const key = keyText(p.key);
        const lease = int64(p.lease, 'lease', 0);
        actions.push({ type: 'write', key });
        commandOps.push({ type: 'put', key, value: p.value, ...(lease !== 0 ? { lease } : {}) });
        plan.push({ kind: 'put', key, prevKv: p.prev_kv === true });
        break;
      }
      case 'request_delete_range': {
        const d = op.request_delete_range!;
        const range = keyRange(d.key, d.range_end, ETCD_ERRORS.emptyKey);
        if (range.type === 'key') {
          actions.push({ type: 'write', key: range.key });
          commandOps.push({ type: 'delete', key: range.key });
        } else {
          actions.push(readAction(range), { type: 'write', key: rangePrefix(range) });
          commandOps.push({ type: 'deleteRange', start: range.start, end: range.end });
        }
        plan.push({ kind: 'delete', range, prevKv: d.prev_kv === true, commandIndex: commandOps.length - 1 });
        break;
      }
      case 'request_txn':
        throw new EtcdError(status.UNIMPLEMENTED, 'raftkv: nested transactions (request_txn) are not supported');
      default:
        throw new EtcdError(status.INVALID_ARGUMENT, 'raftkv: a request op names no request');
    }
  }
  // A read that a later write of the branch overwrites cannot be answered from the history at the
  // transaction's revision: carry it in the command as a `get` (one key, no options), or refuse.
  for (const read of reads) {
    const later = commandOps.slice(read.at);
    if (!later.some((op) => writesInto(op, read.options.range))) continue;
    const o = read.options;
    if (o.range.type !== 'key' || o.revision !== 0) {
      throw new EtcdError(status.UNIMPLEMENTED, 'raftkv: a range read followed in the same branch by a write into its range is not supported (read one key, or write first)');
    }
    const i = plan.findIndex((p) => p.kind === 'read' && p.options === o);
    commandOps.splice(read.at, 0, { type: 'get', key: o.range.key });
    for (const other of reads) if (other !== read && other.at >= read.at) other.at++;
    for (let j = i + 1; j < plan.length; j++) {
      const p = plan[j]!;
      if (p.kind === 'delete' || p.kind === 'get') plan[j] = { ...p, commandIndex: p.commandIndex + 1 };
    }
    plan[i] = { kind: 'get', options: o, commandIndex: read.at };
  }
  return { commandOps, plan };
}

export async function runTxn(ctx: EtcdContext, req: TxnRequest, call: CallInfo): Promise<{ header: ResponseHeader; succeeded: boolean; responses: ResponseOp[] }> {
  if (req.compare.length + req.success.length + req.failure.length > MAX_TXN_OPS) throw ETCD_ERRORS.tooManyOps();
  const actions: Action[] = [];
  const compare = req.compare.map(compareOf);
  for (const c of compare) actions.push({ type: 'read', key: c.key });
  const success = planBranch(req.success, actions);
  const failure = planBranch(req.failure, actions);
  ctx.authorize(call.principal, actions);
  const { kv, service, cfg } = ctx.parts;
  let data: Uint8Array;
  try {
    data = encodeChecked(kv, { type: 'txn', time: Date.now(), compare, success: success.commandOps, failure: failure.commandOps, replyLimit: cfg.maxResponseBytes });
  } catch (err) {
    throw mapKvError(err);
  }
  const grows = [...success.commandOps, ...failure.commandOps].some((op) => op.type === 'put');
  const result = settle((await service.write(data, grows, call.deadline, call.principal?.name)) as KvResult | undefined);
  if (result.type !== 'txn') throw unexpected(result);
  const plan = result.succeeded ? success.plan : failure.plan;
  // The reads and previous values come from this node's history: it must have applied the entry.
  const node = ctx.parts.node;
  if (node.appliedIndex < result.index) await withDeadline(node.waitApplied(result.index), call.deadline);
  const header = ctx.header(result.revision);
  const responses: ResponseOp[] = [];
  // One limit for the whole answer: its ranges and previous values together.
  const budget = new ReplyBudget(cfg.maxResponseBytes);
  for (const p of plan) {
    switch (p.kind) {
      case 'read': {
        const o = p.options.revision > 0 ? p.options : { ...p.options, revision: result.revision };
        const answer = runRange(kv, o, budget.left);
        budget.spendKvs(answer.kvs, "the transaction's answer");
        responses.push({ response_range: { header, ...answer } });
        break;
      }
      case 'get': {
        const got = result.responses[p.commandIndex] as KvTxnResponse | undefined;
        const rec = got?.type === 'get' ? got.record : null;
        const o = p.options;
        if (rec !== null && !o.countOnly) budget.spend(rec.key.length * 3 + (o.keysOnly ? 0 : rec.value.byteLength) + 40, "the transaction's answer");
        responses.push({ response_range: { header, kvs: rec === null || o.countOnly ? [] : [keyValueOf(rec, o.keysOnly)], more: false, count: rec === null ? 0 : 1 } });
        break;
      }
      case 'put': {
        let prev: KeyValue | null = null;
        if (p.prevKv) {
          const recs = await prevRecords(ctx, result.index, result.revision, call.deadline, (k) => k === p.key, budget);
          prev = recs[0] === undefined ? null : keyValueOf(recs[0]);
        }
        responses.push({ response_put: { header, prev_kv: prev } });
        break;
      }
      case 'delete': {
        const got = result.responses[p.commandIndex] as KvTxnResponse | undefined;
        const deleted = got?.type === 'delete' ? (got.deleted ? 1 : 0) : got?.type === 'deleteRange' ? got.deleted : 0;
        let prevKvs: KeyValue[] = [];
        if (p.prevKv && deleted > 0) {
          const r = p.range;
          const includes = r.type === 'key' ? (k: string) => k === r.key : (k: string) => compareKeys(k, r.start) >= 0 && (r.end === null || compareKeys(k, r.end) < 0);
          prevKvs = (await prevRecords(ctx, result.index, result.revision, call.deadline, includes, budget)).map((rec) => keyValueOf(rec));
        }
        responses.push({ response_delete_range: { header, deleted, prev_kvs: prevKvs } });
        break;
      }
    }
  }
  return { header, succeeded: result.succeeded, responses };
}
