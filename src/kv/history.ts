// The store's history (MVCC, API.md "Coordination"): every change as an event, in revision order,
// from the last compaction on. It is what reads at a past revision and watches from a past
// revision are answered from, and it rides in snapshots, so every replica holds the same history
// at the same applied index.
//
// An event points at the record the key had after it (null: deleted) and the one it had before
// (null: it did not exist). Records are immutable and shared: the current record of a key is the
// `record` of its latest event, and each superseded record is the `prev` of the event after it,
// so history costs one small object per change plus the values it keeps from being collected.
//
// Compaction drops the events before a revision by replacing the array (never editing it in
// place): a snapshot being written, or a watcher reading, keeps the array it started with.
//
// A restart's restore leaves the history in the snapshot's bytes (resetPending) and the node
// serves at once: the events come later, a slice per turn (loadSlice), or all at once for the
// first reader of `events`. Meanwhile what is known without them (their number, revisions and
// cost) answers, new events follow them, and a compaction drops them by position.
import { utf8Length } from './limits.js';
import type { StoredRecord } from './stored-record.js';

export interface HistoryEvent {
  readonly revision: number;
  readonly key: string;
  /** The key's record after the change; null when it was deleted. */
  readonly record: StoredRecord | null;
  /** The key's record before the change; null when it did not exist. */
  readonly prev: StoredRecord | null;
}

/** What one event costs in `bytes` beyond its key and the value it keeps. */
export const HISTORY_EVENT_OVERHEAD_BYTES = 48;

/**
 * An event's cost: its key, a fixed overhead, and the value of the record it replaced. That
 * record is no longer current, so only the history keeps it (and a snapshot writes it once); the
 * record the event wrote is current, or the `prev` of a later event that pays for it.
 */
export function historyEventBytes(ev: HistoryEvent): number {
  return utf8Length(ev.key) + (ev.prev === null ? 0 : ev.prev.valueLength) + HISTORY_EVENT_OVERHEAD_BYTES;
}

/**
 * A restored history not decoded yet (History.resetPending): each event's revision and the
 * running sum of their costs are known, the events come from `step()`, a slice at a time.
 */
export interface PendingEvents {
  readonly count: number;
  /** `revisions[i]`: event i's revision. */
  readonly revisions: Float64Array;
  /** `costs[i]`: Σ historyEventBytes over events [0, i). */
  readonly costs: Float64Array;
  /** Decodes a slice; the events, all `count` of them, once the last slice is done, else null. */
  step(): HistoryEvent[] | null;
}

export class History {
  /** The events; while a restored history is pending, only those since the restore. */
  private list: HistoryEvent[] = [];
  private compacted = 0;
  private totalBytes = 0;
  /** The restored events still being decoded, or null. */
  private pending: PendingEvents | null = null;
  /** Of the pending events, those before this position were compacted while they were pending. */
  private pendingFrom = 0;

  /**
   * Events in revision order (several may share a revision: one transaction). Never edited in
   * place. A restored history still pending is decoded first, at once (loadSlice() does it a
   * slice at a time).
   */
  get events(): readonly HistoryEvent[] {
    this.complete();
    return this.list;
  }

  /** How many events there are, decoded or not. */
  get length(): number {
    return this.list.length + (this.pending === null ? 0 : this.pending.count - this.pendingFrom);
  }

  /** The revision of the oldest event; +Infinity if there is none. Decodes nothing. */
  get firstRevision(): number {
    const p = this.pending;
    if (p !== null && this.pendingFrom < p.count) return p.revisions[this.pendingFrom]!;
    return this.list[0]?.revision ?? Number.POSITIVE_INFINITY;
  }

  /** A restored history is still being decoded (loadSlice()). */
  get isPending(): boolean {
    return this.pending !== null;
  }

  /**
   * The events from `revision` on: `events[index]` is the first, and they run to the end of the
   * array. Decodes a pending history only if some of them are in it.
   */
  from(revision: number): { events: readonly HistoryEvent[]; index: number } {
    const p = this.pending;
    if (p !== null && this.pendingFrom < p.count && revision <= p.revisions[p.count - 1]!) this.complete();
    return { events: this.list, index: this.lowerBound(revision, this.list) };
  }

  /** Reads and watches before this revision answer COMPACTED; 0 until the first compaction. */
  get compactRevision(): number {
    return this.compacted;
  }

  /** Estimated memory of the events: each one's key, the value it replaced and a fixed overhead. */
  get bytes(): number {
    return this.totalBytes;
  }

  push(ev: HistoryEvent): void {
    this.list.push(ev);
    this.totalBytes += historyEventBytes(ev);
  }

  /** Drops the events before `revision`; `revision` must be above the current compaction. */
  compact(revision: number): void {
    const p = this.pending;
    if (p !== null) {
      // Pending events are dropped by position, and their cost is known without them.
      let at = this.pendingFrom;
      while (at < p.count && p.revisions[at]! < revision) at++;
      this.totalBytes -= p.costs[at]! - p.costs[this.pendingFrom]!;
      this.pendingFrom = at;
      // All compacted: nothing left to decode.
      if (at === p.count) {
        this.pending = null;
        this.pendingFrom = 0;
      }
    }
    const from = this.lowerBound(revision, this.list);
    let dropped = 0;
    for (let i = 0; i < from; i++) dropped += historyEventBytes(this.list[i]!);
    this.list = this.list.slice(from);
    this.totalBytes -= dropped;
    this.compacted = revision;
  }

  /** Replaces the whole history (a restore). */
  reset(events: HistoryEvent[], compactRevision: number): void {
    this.pending = null;
    this.pendingFrom = 0;
    this.list = events;
    this.compacted = compactRevision;
    let bytes = 0;
    for (const ev of events) bytes += historyEventBytes(ev);
    this.totalBytes = bytes;
  }

  /**
   * Replaces the whole history with `pending`'s events, to be decoded later (loadSlice(), or at
   * once by the first reader of `events`); events pushed meanwhile follow them.
   */
  resetPending(pending: PendingEvents, compactRevision: number): void {
    this.pending = pending.count === 0 ? null : pending;
    this.pendingFrom = 0;
    this.list = [];
    this.compacted = compactRevision;
    this.totalBytes = pending.costs[pending.count]!;
  }

  /** Decodes a slice of a pending history; true once nothing is pending. */
  loadSlice(): boolean {
    const p = this.pending;
    if (p === null) return true;
    const decoded = p.step();
    if (decoded === null) return false;
    if (decoded.length !== p.count) throw new Error(`history: ${p.count} events pending, ${decoded.length} decoded`);
    this.pending = null;
    // A new array: a reader holding the old one (the events since the restore) keeps it as it was.
    this.list = (this.pendingFrom === 0 ? decoded : decoded.slice(this.pendingFrom)).concat(this.list);
    this.pendingFrom = 0;
    return true;
  }

  private complete(): void {
    while (!this.loadSlice()) {
      // at once
    }
  }

  /** Position of the first event at or after `revision` in `events`. */
  lowerBound(revision: number, events: readonly HistoryEvent[] = this.events): number {
    let lo = 0;
    let hi = events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (events[mid]!.revision < revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * The key's record as of `revision`, given its current record: undone event by event from the
   * newest back to the first after `revision`. Costs the number of events since `revision`.
   */
  recordAt(key: string, revision: number, current: StoredRecord | null): StoredRecord | null {
    const events = this.events;
    let rec = current;
    for (let i = events.length - 1; i >= 0; i--) {
      const ev = events[i]!;
      if (ev.revision <= revision) break;
      if (ev.key === key) rec = ev.prev;
    }
    return rec;
  }

  /**
   * Every key under `prefix` changed after `revision`, with its record as of `revision` (null:
   * it did not exist then). Costs the number of events since `revision`.
   */
  changesAfter(revision: number, prefix: string): Map<string, StoredRecord | null> {
    return this.changesAfterWhere(revision, (key) => key.startsWith(prefix));
  }

  /** changesAfter() for the keys `includes` accepts (a key range of the etcd API). */
  changesAfterWhere(revision: number, includes: (key: string) => boolean): Map<string, StoredRecord | null> {
    const out = new Map<string, StoredRecord | null>();
    const events = this.events;
    for (let i = events.length - 1; i >= 0; i--) {
      const ev = events[i]!;
      if (ev.revision <= revision) break;
      if (includes(ev.key)) out.set(ev.key, ev.prev);
    }
    return out;
  }
}
