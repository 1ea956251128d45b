// What the KV and Txn handlers share: the permission a read needs, the records a write replaced
// (from this node's history, once it has applied the write), and a deadline on a promise.
import { withDeadline as boundedBy } from '../server/deadline.js';
import type { StoredRecord } from '../kv/index.js';
import type { Action } from '../server/auth.js';
import type { EtcdContext } from './context.js';
import { ETCD_ERRORS } from './errors.js';
import { kvReplyBytes, replyTooLarge } from './range.js';
import { rangePrefix, type KeyRange, type KeyValue } from './wire.js';

/** The permission a read of `r` needs (prefix permissions: the longest prefix the range shares). */
export function readAction(r: KeyRange): Action {
  return r.type === 'key' ? { type: 'read', key: r.key } : { type: 'read-range', prefix: rangePrefix(r) };
}

/**
 * What one answer may still hold of --max-response-bytes: every part of it (a range, the previous
 * values of a delete or put) is counted here BEFORE its values are copied, so an answer over the
 * limit is refused as an oversized Range is, not built and then dropped by the send limit.
 */
export class ReplyBudget {
  private spent = 0;

  constructor(readonly maxBytes: number) {}

  get left(): number {
    return Math.max(0, this.maxBytes - this.spent);
  }

  /** Counts `bytes` more; throws RESOURCE_EXHAUSTED (naming `what`) past the limit. */
  spend(bytes: number, what: string): void {
    this.spent += bytes;
    if (this.spent > this.maxBytes) throw replyTooLarge(`${what} would pass --max-response-bytes (${this.maxBytes}); delete fewer keys at once, or without prev_kv`);
  }

  /** Counts the keys and values of an answer already built (a range's, bounded by `left`). */
  spendKvs(kvs: readonly KeyValue[], what: string): void {
    let bytes = 0;
    for (const kv of kvs) bytes += kv.key.length + kv.value.length + 40;
    this.spend(bytes, what);
  }
}

/**
 * The records the write at `revision` (log entry `index`) replaced, for keys `includes` accepts:
 * read from this node's history once it has applied the entry (a follower's write was applied by
 * the leader first). Each is counted against `budget` as it is found: nothing is copied for an
 * answer that could not be sent.
 */
export async function prevRecords(ctx: EtcdContext, index: number, revision: number, deadline: number, includes: (key: string) => boolean, budget: ReplyBudget): Promise<StoredRecord[]> {
  const { node, kv } = ctx.parts;
  if (node.appliedIndex < index) await withDeadline(node.waitApplied(index), deadline);
  const { events, index: from } = kv.eventsFrom(revision);
  const out: StoredRecord[] = [];
  for (let i = from; i < events.length && events[i]!.revision === revision; i++) {
    const ev = events[i]!;
    if (ev.prev === null || !includes(ev.key)) continue;
    budget.spend(kvReplyBytes(ev.prev), 'the previous values (prev_kv) of this write');
    out.push(ev.prev);
  }
  return out;
}

export function withDeadline<T>(p: Promise<T>, deadline: number): Promise<T> {
  return boundedBy(p, deadline, ETCD_ERRORS.timeout);
}
