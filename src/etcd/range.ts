// etcd's Range over the store's revisions (src/kv/state-machine.ts scan()): one key or a key
// range, at a revision, with limit, count, keys-only, count-only, sort by any target and order,
// and the min/max create and mod revision filters, as etcd applies them: filter, then sort, then
// limit; `count` is every key in the range at that revision; `more` says the limit cut some.
import { KvError, type KvStateMachine, type StoredRecord } from '../kv/index.js';
import { status } from '@grpc/grpc-js';
import { ETCD_ERRORS, EtcdError } from './errors.js';
import { int64, keyRange, keyValueOf, type KeyRange, type KeyValue } from './wire.js';

export interface RangeRequest {
  key: Buffer;
  range_end: Buffer;
  limit: string | number;
  revision: string | number;
  sort_order: string;
  sort_target: string;
  serializable: boolean;
  keys_only: boolean;
  count_only: boolean;
  min_mod_revision: string | number;
  max_mod_revision: string | number;
  min_create_revision: string | number;
  max_create_revision: string | number;
}

export interface RangeResult {
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

export interface RangeOptions {
  readonly range: KeyRange;
  readonly limit: number;
  readonly revision: number;
  readonly sortOrder: 'NONE' | 'ASCEND' | 'DESCEND';
  readonly sortTarget: 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';
  readonly keysOnly: boolean;
  readonly countOnly: boolean;
  readonly minMod: number;
  readonly maxMod: number;
  readonly minCreate: number;
  readonly maxCreate: number;
}

const ORDERS = ['NONE', 'ASCEND', 'DESCEND'] as const;
const TARGETS = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] as const;

/** Checks a RangeRequest as the loader decoded it. */
export function rangeOptions(req: RangeRequest): RangeOptions {
  const sortOrder = ORDERS.find((o) => o === req.sort_order);
  const sortTarget = TARGETS.find((t) => t === req.sort_target);
  if (sortOrder === undefined || sortTarget === undefined) throw new EtcdError(status.INVALID_ARGUMENT, 'raftkv: unknown sort order or target');
  return {
    range: keyRange(req.key, req.range_end, ETCD_ERRORS.emptyKey),
    limit: int64(req.limit, 'limit', 0),
    revision: int64(req.revision, 'revision', 0),
    sortOrder,
    sortTarget,
    keysOnly: req.keys_only === true,
    countOnly: req.count_only === true,
    minMod: int64(req.min_mod_revision, 'min_mod_revision', 0),
    maxMod: int64(req.max_mod_revision, 'max_mod_revision', 0),
    minCreate: int64(req.min_create_revision, 'min_create_revision', 0),
    maxCreate: int64(req.max_create_revision, 'max_create_revision', 0),
  };
}

/**
 * The answer of a range as of `o.revision` (0: now). `maxBytes` bounds the answer (keys and
 * values); past it the range fails with ResourceExhausted rather than building a huge reply.
 */
export function runRange(kv: KvStateMachine, o: RangeOptions, maxBytes: number): RangeResult {
  const revision = o.revision > 0 ? o.revision : kv.revision;
  const hasFilters = o.minMod > 0 || o.maxMod > 0 || o.minCreate > 0 || o.maxCreate > 0;
  const keyOrder = o.sortTarget === 'KEY' && o.sortOrder !== 'DESCEND';
  // etcd: a target other than the key with no order means ascending.
  const descending = o.sortOrder === 'DESCEND';
  const streamsInOrder = keyOrder && !hasFilters;
  let items: StoredRecord[] = [];
  let count = 0;
  const keep = (rec: StoredRecord): boolean => {
    count++;
    if (o.countOnly) return true;
    if (streamsInOrder && o.limit > 0 && items.length > o.limit) return true;
    items.push(rec);
    return true;
  };
  try {
    if (o.range.type === 'key') {
      kv.checkRevision(revision);
      const found = findRecord(kv, o.range.key, revision);
      if (found !== null) keep(found);
    } else {
      kv.scan(o.range.start, o.range.end, keep, revision);
    }
  } catch (err) {
    throw mapKvError(err);
  }
  if (o.countOnly) return { kvs: [], more: false, count };
  if (hasFilters) {
    items = items.filter(
      (r) =>
        (o.minMod === 0 || r.modRevision >= o.minMod) &&
        (o.maxMod === 0 || r.modRevision <= o.maxMod) &&
        (o.minCreate === 0 || r.createRevision >= o.minCreate) &&
        (o.maxCreate === 0 || r.createRevision <= o.maxCreate),
    );
  }
  if (!keyOrder || descending) {
    const by = sortKey(o.sortTarget);
    items.sort((a, b) => {
      const c = by(a, b);
      return descending ? -c : c;
    });
  }
  const more = o.limit > 0 && items.length > o.limit;
  if (more) items = items.slice(0, o.limit);
  let bytes = 0;
  const kvs: KeyValue[] = [];
  for (const rec of items) {
    bytes += kvReplyBytes(rec, o.keysOnly);
    if (bytes > maxBytes) throw replyTooLarge(`the range's answer would pass --max-response-bytes (${maxBytes}); ask for fewer keys (limit) or keys_only`);
    kvs.push(keyValueOf(rec, o.keysOnly));
  }
  return { kvs, more, count };
}

/** What one record adds to an answer at most: its key (UTF-8), its value unless keys-only, the fields around them. */
export function kvReplyBytes(rec: StoredRecord, keysOnly = false): number {
  return rec.key.length * 3 + (keysOnly ? 0 : rec.valueLength) + 40;
}

/** An answer over --max-response-bytes, refused before it is built (an oversized Range's error). */
export function replyTooLarge(why: string): EtcdError {
  return new EtcdError(status.RESOURCE_EXHAUSTED, `raftkv: ${why}`);
}

function sortKey(target: RangeOptions['sortTarget']): (a: StoredRecord, b: StoredRecord) => number {
  const byKey = (a: StoredRecord, b: StoredRecord): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  switch (target) {
    case 'KEY':
      return byKey;
    case 'VERSION':
      return (a, b) => a.version - b.version || byKey(a, b);
    case 'CREATE':
      return (a, b) => a.createRevision - b.createRevision || byKey(a, b);
    case 'MOD':
      return (a, b) => a.modRevision - b.modRevision || byKey(a, b);
    case 'VALUE':
      // One character per byte (stored-record.ts): string order is byte order.
      return (a, b) => (a.bytes < b.bytes ? -1 : a.bytes > b.bytes ? 1 : byKey(a, b));
  }
}

/** The key's stored record as of `revision` (checked by the caller). */
export function findRecord(kv: KvStateMachine, key: string, revision: number): StoredRecord | null {
  let found: StoredRecord | null = null;
  kv.scan(key, null, (rec) => {
    if (rec.key === key) found = rec;
    return false;
  }, revision);
  return found;
}

export function mapKvError(err: unknown): unknown {
  if (err instanceof KvError) {
    if (err.code === 'COMPACTED') return ETCD_ERRORS.compacted();
    if (err.code === 'FUTURE_REVISION') return ETCD_ERRORS.futureRevision();
    return new EtcdError(status.INVALID_ARGUMENT, `raftkv: ${err.message}`);
  }
  return err;
}
