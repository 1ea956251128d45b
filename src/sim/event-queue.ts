// The discrete-event scheduler: a binary min-heap of events ordered by (time, insertion sequence),
// so that two events at the same simulated millisecond always run in the order they were
// scheduled and a run replays exactly. Event objects are pooled: the hot loop schedules and pops
// tens of thousands of them per simulated minute without allocating.
import type { Message } from '../raft/index.js';

export const EVENT_KINDS = {
  tick: 0,
  deliver: 1,
  syncDone: 2,
  restart: 3,
  fault: 4,
  client: 5,
  heal: 6,
  livenessDeadline: 7,
  fullCheck: 8,
  read: 9,
  probe: 10,
  membership: 11,
  timer: 12,
  resume: 13,
} as const;
export type EventKind = (typeof EVENT_KINDS)[keyof typeof EVENT_KINDS];

export class SimEvent {
  time = 0;
  seq = 0;
  kind: EventKind = 0;
  /** The node the event concerns (the receiver, for a delivery), or -1. */
  slot = -1;
  /** The node's incarnation when scheduled: an event for an earlier life is stale. */
  incarnation = 0;
  /** The sender, for a delivery. */
  from = -1;
  message: Message | null = null;
  /** What a runtime timer (the node's clock port) runs, unless cancelled meanwhile. */
  timer: SimTimer | null = null;
}

/** A timer of a node's runtime; cancelling flags it (its event object may be reused by then). */
export interface SimTimer {
  readonly fire: () => void;
  isCancelled: boolean;
}

export class EventQueue {
  private heap: SimEvent[] = [];
  private pool: SimEvent[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.heap.length;
  }

  /** Schedules an event; fill in the returned object's fields before the next schedule/pop. */
  schedule(time: number, kind: EventKind, slot: number, incarnation: number): SimEvent {
    const e = this.pool.pop() ?? new SimEvent();
    e.time = time;
    e.seq = this.nextSeq++;
    e.kind = kind;
    e.slot = slot;
    e.incarnation = incarnation;
    e.from = -1;
    e.message = null;
    e.timer = null;
    this.push(e);
    return e;
  }

  /** Removes and returns the earliest event; hand it back with release() once handled. */
  pop(): SimEvent | undefined {
    const heap = this.heap;
    const n = heap.length;
    if (n === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (n > 1) this.siftDown(last);
    return top;
  }

  /** Visits every pending event in no particular order (the playground draws messages in flight). */
  forEachPending(visit: (e: SimEvent) => void): void {
    for (const e of this.heap) visit(e);
  }

  peekTime(): number {
    return this.heap.length === 0 ? Number.POSITIVE_INFINITY : this.heap[0]!.time;
  }

  release(e: SimEvent): void {
    e.message = null;
    e.timer = null;
    this.pool.push(e);
  }

  private push(e: SimEvent): void {
    const heap = this.heap;
    let i = heap.length;
    heap.push(e);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!before(e, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = e;
  }

  /** Places `e` (the former last element) starting from the root. */
  private siftDown(e: SimEvent): void {
    const heap = this.heap;
    const n = heap.length;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && before(heap[right]!, heap[child]!)) child = right;
      const c = heap[child]!;
      if (!before(c, e)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = e;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
