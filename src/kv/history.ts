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

export class History {
  private list: HistoryEvent[] = [];
  private compacted = 0;
  private totalBytes = 0;

  /** Events in revision order (several may share a revision: one transaction). Never edited in place. */
  get events(): readonly HistoryEvent[] {
    return this.list;
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
    const from = this.lowerBound(revision);
    let dropped = 0;
    for (let i = 0; i < from; i++) dropped += historyEventBytes(this.list[i]!);
    this.list = this.list.slice(from);
    this.totalBytes -= dropped;
    this.compacted = revision;
  }

  /** Replaces the whole history (a restore). */
  reset(events: HistoryEvent[], compactRevision: number): void {
    this.list = events;
    this.compacted = compactRevision;
    let bytes = 0;
    for (const ev of events) bytes += historyEventBytes(ev);
    this.totalBytes = bytes;
  }

  /** Position of the first event at or after `revision` in `events`. */
  lowerBound(revision: number, events: readonly HistoryEvent[] = this.list): number {
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
    const events = this.list;
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
    const events = this.list;
    for (let i = events.length - 1; i >= 0; i--) {
      const ev = events[i]!;
      if (ev.revision <= revision) break;
      if (includes(ev.key)) out.set(ev.key, ev.prev);
    }
    return out;
  }
}
