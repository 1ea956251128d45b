// One store listener for every lock waiter and election observer of a node (src/server/locks.ts,
// src/etcd/lock-service.ts), in the spirit of the watch hub (src/server/watch.ts). Each waiter
// once held its own kv.onChange listener, so apply called every one per command and each rescanned
// its line: apply's cost grew with the number of waiters. Now:
//   - kv.onChange holds ONE listener per store while anyone waits or observes (none otherwise); it
//     runs inside apply and only schedules one flush per tick (setImmediate);
//   - a flush reads the history events applied since the last one and finds the names they touch:
//     a key under `NAME/` belongs to the line of NAME, so each `/` in the key whose prefix has the
//     length of a watched name is looked up in a map (no work for keys under no watched name);
//   - for each touched name the line's first is read ONCE, and only these hear of it: the waiters
//     whose own key changed (it may be gone: the lease ended), the waiters whose key is now first
//     (the next holder), and the name's observers. The other waiters of the name sleep on: a
//     release with 2,000 in line wakes one.
// A history replaced whole (a compaction, or a snapshot installed over the store) may hide what
// changed: every name is then treated as touched and every waiter looks at its own key.
import type { HistoryEvent, KvStateMachine } from '../kv/index.js';
import { lineLeader, type Contender } from './locks.js';

/** Hears the first in line (undefined: nobody) after something under its name changed. */
export type LineListener = (leader: Contender | undefined) => void;

interface Line {
  /** Waiters by their own contender key (several requests may wait with the same lease). */
  readonly waiters: Map<string, Set<LineListener>>;
  readonly observers: Set<LineListener>;
  size: number;
}

export class LineHub {
  private readonly lines = new Map<string, Line>();
  /** How many watched names have each length: a `/` at another position cannot end one. */
  private readonly nameLengths = new Map<number, number>();
  private unsubscribe: (() => void) | null = null;
  private published = 0;
  private publishedEvents: readonly HistoryEvent[] = [];
  private isFlushScheduled = false;
  private waiterCount = 0;
  private woken = 0;

  constructor(private readonly kv: KvStateMachine) {}

  /** Lock and campaign requests waiting in line on this node now. */
  get waiting(): number {
    return this.waiterCount;
  }

  /** Waiters told of a change so far (each told once per flush at most): what a release costs. */
  get wakeups(): number {
    return this.woken;
  }

  /**
   * `listener` hears of every change to its own `key` and of the moment `key` is first in line
   * under `name` (and may hear more; it checks). The caller has checked the line already: only
   * what applies after this call is reported. Returns the cancel.
   */
  wait(name: string, key: string, listener: LineListener): () => void {
    const line = this.line(name);
    let set = line.waiters.get(key);
    if (set === undefined) line.waiters.set(key, (set = new Set()));
    set.add(listener);
    line.size++;
    this.waiterCount++;
    let isOn = true;
    return () => {
      if (!isOn) return;
      isOn = false;
      set.delete(listener);
      if (set.size === 0 && line.waiters.get(key) === set) line.waiters.delete(key);
      this.waiterCount--;
      this.release(name, line);
    };
  }

  /** `listener` hears the first in line after each change under `name/`. Returns the cancel. */
  observe(name: string, listener: LineListener): () => void {
    const line = this.line(name);
    line.observers.add(listener);
    line.size++;
    let isOn = true;
    return () => {
      if (!isOn) return;
      isOn = false;
      line.observers.delete(listener);
      this.release(name, line);
    };
  }

  private line(name: string): Line {
    let line = this.lines.get(name);
    if (line === undefined) {
      line = { waiters: new Map(), observers: new Set(), size: 0 };
      this.lines.set(name, line);
      this.nameLengths.set(name.length, (this.nameLengths.get(name.length) ?? 0) + 1);
    }
    if (this.unsubscribe === null) {
      // What is applied from now on is news; what came before, the caller has seen.
      this.published = this.kv.revision;
      this.publishedEvents = this.kv.eventsFrom(this.published + 1).events;
      this.unsubscribe = this.kv.onChange(() => this.scheduleFlush());
    }
    return line;
  }

  private release(name: string, line: Line): void {
    line.size--;
    if (line.size > 0 || this.lines.get(name) !== line) return;
    this.lines.delete(name);
    const n = this.nameLengths.get(name.length)! - 1;
    if (n === 0) this.nameLengths.delete(name.length);
    else this.nameLengths.set(name.length, n);
    if (this.lines.size === 0 && this.unsubscribe !== null) {
      this.unsubscribe();
      this.unsubscribe = null;
    }
  }

  private scheduleFlush(): void {
    if (this.isFlushScheduled) return;
    this.isFlushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.isFlushScheduled = false;
    if (this.unsubscribe === null) return;
    const kv = this.kv;
    // The events since the last flush only: a restored history still being decoded stays so.
    const { events, index } = kv.eventsFrom(this.published + 1);
    const head = kv.revision;
    // Touched names, each with the keys of it that changed (null: every waiter looks).
    const touched = new Map<string, Set<string> | null>();
    if (events !== this.publishedEvents || head < this.published) {
      for (const name of this.lines.keys()) touched.set(name, null);
    } else if (head > this.published) {
      for (let i = index; i < events.length; i++) this.touch(events[i]!.key, touched);
    }
    this.published = head;
    this.publishedEvents = events;
    for (const [name, keys] of touched) {
      const line = this.lines.get(name);
      if (line === undefined) continue;
      const leader = lineLeader(kv, name);
      const told = new Set<LineListener>();
      const tell = (set: Set<LineListener> | undefined): void => {
        if (set === undefined) return;
        for (const l of [...set]) {
          if (told.has(l)) continue;
          told.add(l);
          this.woken++;
          l(leader);
        }
      };
      if (keys === null) for (const set of [...line.waiters.values()]) tell(set);
      else for (const key of keys) tell(line.waiters.get(key));
      if (leader !== undefined) tell(line.waiters.get(leader.key));
      for (const o of [...line.observers]) o(leader);
    }
  }

  /** Records the watched names whose line holds `key` (every `NAME/` that starts it). */
  private touch(key: string, touched: Map<string, Set<string> | null>): void {
    for (let i = key.indexOf('/'); i >= 0; i = key.indexOf('/', i + 1)) {
      if (!this.nameLengths.has(i)) continue;
      const name = key.slice(0, i);
      if (!this.lines.has(name)) continue;
      let keys = touched.get(name);
      if (keys === null) continue;
      if (keys === undefined) touched.set(name, (keys = new Set()));
      keys.add(key);
    }
  }
}

const hubs = new WeakMap<KvStateMachine, LineHub>();

/** The one hub of a store: every waiter and observer of a node shares it, whichever API it came by. */
export function lineHubOf(kv: KvStateMachine): LineHub {
  let hub = hubs.get(kv);
  if (hub === undefined) hubs.set(kv, (hub = new LineHub(kv)));
  return hub;
}
