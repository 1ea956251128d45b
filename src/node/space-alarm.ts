// The runtime's full-disk alarm (runtime.ts; API.md, "Health and limits": a full disk raises the NO_SPACE alarm
// instead of stopping the node, and it clears once space is back). Three causes keep it raised,
// each set and cleared where it arises: the storage's early warning (RaftStorage.watchSpace), a
// Ready's write waiting for space, and an automatic snapshot that did not fit.
import { NoSpaceError } from '../storage/errors.js';

/**
 * Retries of a Ready's write after ENOSPC: soon at first, then at most every 2 s, so space an
 * operator frees is used within seconds.
 */
export const NO_SPACE_RETRY_MS = { first: 100, max: 2000 } as const;
/**
 * Retries of an automatic snapshot that did not fit: a snapshot rewrites the whole state, so it
 * is tried less eagerly than a WAL write; the log keeps every entry meanwhile.
 */
export const SNAPSHOT_RETRY_MS = { first: 1000, max: 10_000 } as const;

export const SPACE_ALARM_CAUSES = ['storage', 'write', 'snapshot'] as const;
export type SpaceAlarmCause = (typeof SPACE_ALARM_CAUSES)[number];

/** Raised while any cause is; `onChange` hears every change of `isRaised`, and only those. */
export class SpaceAlarm {
  private readonly causes = new Set<SpaceAlarmCause>();
  private readonly onChange: (isRaised: boolean) => void;

  constructor(onChange: (isRaised: boolean) => void) {
    this.onChange = onChange;
  }

  get isRaised(): boolean {
    return this.causes.size > 0;
  }

  has(cause: SpaceAlarmCause): boolean {
    return this.causes.has(cause);
  }

  set(cause: SpaceAlarmCause, isActive: boolean): void {
    const before = this.isRaised;
    if (isActive) this.causes.add(cause);
    else this.causes.delete(cause);
    if (this.isRaised !== before) this.onChange(this.isRaised);
  }
}

/** The next wait of a backoff `schedule` after one of `previousMs` (0: the first). */
export function nextBackoffMs(previousMs: number, schedule: { readonly first: number; readonly max: number }): number {
  return Math.min(schedule.max, Math.max(schedule.first, previousMs * 2));
}

/** A full disk, from FileStorage or any RaftStorage that reports it with the same code. */
export function isNoSpace(err: unknown): boolean {
  return err instanceof NoSpaceError || (err as { code?: unknown } | null)?.code === 'NO_SPACE';
}
