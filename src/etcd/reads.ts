// What the KV and Txn handlers share: the permission a read needs, the records a write replaced
// (from this node's history, once it has applied the write), and a deadline on a promise.
import { withDeadline as boundedBy } from '../server/deadline.js';
import type { StoredRecord } from '../kv/index.js';
import type { Action } from '../server/auth.js';
import type { EtcdContext } from './context.js';
import { ETCD_ERRORS } from './errors.js';
import { rangePrefix, type KeyRange } from './wire.js';

/** The permission a read of `r` needs (prefix permissions: the longest prefix the range shares). */
export function readAction(r: KeyRange): Action {
  return r.type === 'key' ? { type: 'read', key: r.key } : { type: 'read-range', prefix: rangePrefix(r) };
}

/**
 * The records the write at `revision` (log entry `index`) replaced, for keys `includes` accepts:
 * read from this node's history once it has applied the entry (a follower's write was applied by
 * the leader first).
 */
export async function prevRecords(ctx: EtcdContext, index: number, revision: number, deadline: number, includes: (key: string) => boolean): Promise<StoredRecord[]> {
  const { node, kv } = ctx.parts;
  if (node.appliedIndex < index) await withDeadline(node.waitApplied(index), deadline);
  const events = kv.events;
  const out: StoredRecord[] = [];
  for (let i = kv.eventIndexFrom(revision, events); i < events.length && events[i]!.revision === revision; i++) {
    const ev = events[i]!;
    if (ev.prev !== null && includes(ev.key)) out.push(ev.prev);
  }
  return out;
}

export function withDeadline<T>(p: Promise<T>, deadline: number): Promise<T> {
  return boundedBy(p, deadline, ETCD_ERRORS.timeout);
}
