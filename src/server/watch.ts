// Watch over Server-Sent Events (API.md "Coordination", docs/api.md "Watch"): GET /v1/watch
// streams the changes of one key or of a prefix, in revision order, each at most once, none
// skipped, from this node's own applied state (any node serves watches; nothing is forwarded).
//
// The hub reads the store's history (src/kv/history.ts) and never copies it. A watcher is only a
// POSITION in the history, (revision, k): the next event to look at is the k-th (from 0) of that
// revision's events. Two states:
//   - live: it has seen everything the hub has published. It sits in the hub's index (exact
//     keys in a map, prefixes in a list) and holds no events at all;
//   - pulling: it has events to send. It walks the history array from its position, writing
//     while the socket accepts (res.write() returning false stops it until 'drain'), and turns
//     live again when it reaches what the hub has published.
// A client that never reads therefore costs its position and at most one write's bytes beyond
// the socket's buffer, however much is written to the store. The history array it walks is
// replaced (never edited) by a compaction; the hub then moves every pulling watcher to the new
// array, and one whose position the compaction passed gets `compacted` and is ended at once, so
// it cannot keep the old array (and the values in it) from being collected.
//
// kv.onChange runs inside apply: it only schedules one flush per tick (setImmediate). A flush
// publishes the revisions applied since the last one: each new event wakes the live watchers of
// its key (one map lookup) and the live prefix watchers it falls under (a scan of those only).
//
// Where the events go is a WatchSink: the SSE response of GET /v1/watch here, or a stream of the
// etcd gRPC API (src/etcd/watch-service.ts), many watchers to one stream. The hub is the same.
//
// Event ids (the SSE `id:` field) name the position after the event, so a reconnect with
// Last-Event-ID resumes exactly there: `R` once the watcher has every event of revision R it
// will get (resume at R+1), `R.k` after the k-th event of revision R when more of R's events for
// this watcher follow (resume at the k+1-th). Progress events carry `id: R` too, and the stream
// opens with an id-only message naming where it starts (so the first reconnect is exact too).
import type { ServerResponse } from 'node:http';
import type { HistoryEvent, KvStateMachine } from '../kv/index.js';
import type { ParsedRequest } from './api-types.js';
import { ApiError } from './errors.js';
import { expectMethod, type Reply } from './http-util.js';
import { Counter, Gauge, type Registry } from './metrics.js';
import { PROGRESS_MS_MAX, PROGRESS_MS_MIN, eventId, filterMatches, idBefore, parseWatchRequest, watchEventJson, type WatchPosition, type WatchRequest } from './watch-wire.js';

export { PROGRESS_MS_MAX, PROGRESS_MS_MIN, eventId, filterMatches, idBefore, parseWatchRequest, positionAfterId, watchEventJson } from './watch-wire.js';
export type { WatchFilter, WatchPosition, WatchRequest } from './watch-wire.js';

export interface WatchHubOptions {
  /** Open watches this node serves at most; more are answered 503 OVERLOADED. @default 10000 */
  readonly maxWatchers?: number;
  /**
   * A watcher that has nothing to send gets a `progress` event this often; it doubles as the
   * keep-alive that the HTTP server's 70 s idle timeout needs. @default 5000
   */
  readonly progressMs?: number;
  /** False: watches answer 503 STARTING until start(). @default true */
  readonly isStarted?: boolean;
}

export const DEFAULT_WATCH_OPTIONS = { maxWatchers: 10_000, progressMs: 5000 } as const;
/** Events a pulling watcher looks at before it lets others run (a key watcher far behind scans). */
const EVENTS_PER_SLICE = 4096;
/** Rendered events kept for the other watchers of the same tick, at most this many characters. */
const RENDER_CACHE_CHARS = 8 << 20;
/** A watcher ended with `compacted` whose client does not read it is cut after this. */
const END_GRACE_MS = 10_000;

/**
 * Where one watcher's events go. `event` and `progress` return false when the consumer is full:
 * the hub stops writing to this watcher until resume() of its handle.
 */
export interface WatchSink {
  /** The k-th event (from 0) of its revision; isLast: the watcher gets no later event of that revision. */
  event(ev: HistoryEvent, k: number, isLast: boolean): boolean;
  /** Nothing was sent for a while: the watcher has seen everything before `position`, the store is at `revision`. */
  progress(position: WatchPosition, revision: number): boolean;
  /** Nothing was sent for a while and the watcher is still catching up. */
  keepAlive(): boolean;
  /** The watch ends: the history it needed was compacted (at `compactRevision`). */
  compacted(compactRevision: number): void;
  /** The watch ends: the node is stopping. */
  end(): void;
  /**
   * The hub is done writing for now (a batching sink sends what it holds). False: the consumer is
   * full, as event() says it; the watch waits for resume() like after any full write.
   */
  flush?(): boolean;
}

/** A watch the hub serves; the sink's owner resumes it (the consumer drained) or cancels it. */
export interface WatchHandle {
  resume(): void;
  cancel(): void;
  /** It has seen everything the hub has published (a progress notice would not skip anything). */
  isSynced(): boolean;
}

class Watcher {
  state: 'pulling' | 'live' | 'closed' = 'pulling';
  position: WatchPosition;
  /** While pulling: the history array walked and the index of `position` in it. */
  events: readonly HistoryEvent[] | null = null;
  index = 0;
  isBlocked = false;
  isScheduled = false;
  hasWritten = false;
  timer: NodeJS.Timeout | null = null;

  constructor(
    readonly request: WatchRequest,
    readonly sink: WatchSink,
  ) {
    this.position = request.start;
  }
}

export class WatchHub {
  private readonly maxWatchers: number;
  private readonly progressMs: number;
  private readonly all = new Set<Watcher>();
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly prefixes = new Set<Watcher>();
  private readonly pulling = new Set<Watcher>();
  /** Every event of a revision up to this one has been matched against the live watchers. */
  private published: number;
  /** The history array the watchers were last placed in; null while there are none. */
  private publishedEvents: readonly HistoryEvent[] | null = null;
  private isFlushScheduled = false;
  /**
   * Events rendered this tick (with and without prevValue): a thousand prefix watchers woken by
   * one write render it once. Emptied every flush and bounded in size; never the history's copy.
   */
  private rendered = new Map<HistoryEvent, string>();
  private renderedWithPrev = new Map<HistoryEvent, string>();
  private renderedChars = 0;
  private isClosed = false;
  /** Until the node has replayed its log (start()), a watch would see replay as news: 503. */
  private isStarted: boolean;
  private readonly unsubscribe: () => void;
  private readonly sent: Counter;
  private readonly cut: Counter;
  private readonly refused: Counter;

  constructor(
    private readonly kv: KvStateMachine,
    registry: Registry,
    options: WatchHubOptions = {},
  ) {
    this.maxWatchers = options.maxWatchers ?? DEFAULT_WATCH_OPTIONS.maxWatchers;
    this.progressMs = Math.min(PROGRESS_MS_MAX, Math.max(PROGRESS_MS_MIN, options.progressMs ?? DEFAULT_WATCH_OPTIONS.progressMs));
    this.published = kv.revision;
    this.isStarted = options.isStarted ?? true;
    registry.register(new Gauge('raftkv_watchers', 'Open watches on this node', () => this.all.size));
    this.sent = registry.register(new Counter('raftkv_watch_events_sent_total', 'Watch events written to watchers (progress events not counted)'));
    this.cut = registry.register(new Counter('raftkv_watch_compacted_total', 'Watches ended with a compacted event: the history they needed was compacted'));
    this.refused = registry.register(new Counter('raftkv_watch_refused_total', 'Watches refused because the node serves --max-watchers already'));
    this.unsubscribe = kv.onChange(() => this.scheduleFlush());
  }

  /** Open watches. */
  get size(): number {
    return this.all.size;
  }

  /** The route of GET /v1/watch (null for any other path), to chain into the API's extra routes. */
  route(r: ParsedRequest): Promise<Reply> | null {
    if (r.path !== '/v1/watch') return null;
    try {
      expectMethod(r.method, ['GET']);
      const request = parseWatchRequest(r.query, r.headers['last-event-id'], this.kv, this.progressMs);
      this.checkCapacity();
      return Promise.resolve({ status: 200, stream: (res, headers) => this.open(request, res, headers) });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The node serves: its state machine holds what it had applied before it stopped. */
  start(): void {
    this.isStarted = true;
  }

  /** Ends every watch (the node is stopping): clients reconnect elsewhere and resume by id. */
  close(): void {
    this.isClosed = true;
    this.unsubscribe();
    for (const w of [...this.all]) {
      this.remove(w);
      w.sink.end();
    }
  }

  /** Throws (ApiError) unless one more watch may open now: started, not stopping, under --max-watchers. */
  checkCapacity(): void {
    if (this.isClosed) throw new ApiError('NOT_READY', 'this node is stopping');
    if (!this.isStarted) throw new ApiError('STARTING', 'this node is starting');
    if (this.all.size >= this.maxWatchers) {
      this.refused.inc();
      throw new ApiError('OVERLOADED', `this node serves ${this.maxWatchers} watches already (--max-watchers); watch through another node or later`);
    }
  }

  /** Starts streaming to `res` (the API has checked the request, permissions included). */
  open(request: WatchRequest, res: ServerResponse, headers: Readonly<Record<string, string>>): void {
    try {
      this.checkCapacity();
    } catch (err) {
      const e = err as ApiError;
      res.writeHead(e.status, { ...headers, 'content-type': 'application/json', 'retry-after': String(e.retryAfter ?? 1) });
      res.end(JSON.stringify({ error: { code: e.code, message: e.message } }));
      return;
    }
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      // One watch per connection: when it ends, so does the connection (no idle socket left to
      // hold a stopping server open).
      connection: 'close',
    });
    res.socket?.setNoDelay(true);
    // The EventSource reconnection delay, and the id of where the watch starts: a client that
    // loses the connection before any event resumes there, not at another node's "now".
    res.write(`retry: 1000\nid: ${idBefore(request.start)}\n: watching\n\n`);
    const handle = this.watch(request, this.sseSink(request, res));
    res.once('close', () => handle.cancel());
    res.on('drain', () => handle.resume());
  }

  /**
   * Serves a watch into `sink` (capacity checked: ApiError when full or not serving). The caller
   * has checked the request and its permissions.
   */
  watch(request: WatchRequest, sink: WatchSink): WatchHandle {
    this.checkCapacity();
    const w = new Watcher(request, sink);
    this.all.add(w);
    w.timer = setInterval(() => this.tick(w), request.progressMs);
    w.timer.unref();
    this.pulling.add(w);
    this.pump(w);
    return {
      resume: () => {
        if (w.state === 'closed' || !w.isBlocked) return;
        w.isBlocked = false;
        this.pump(w);
      },
      cancel: () => this.remove(w),
      isSynced: () => w.state === 'live',
    };
  }

  /** The SSE stream of GET /v1/watch as a sink: ids that resume exactly (see the top of the file). */
  private sseSink(request: WatchRequest, res: ServerResponse): WatchSink & { readonly res: ServerResponse } {
    return {
      res,
      event: (ev, k, isLast) => res.write(`id: ${eventId(ev.revision, k, isLast)}\ndata: ${this.render(ev, request.prevValue)}\n\n`),
      progress: (position, revision) => res.write(`id: ${idBefore(position)}\ndata: {"type":"progress","revision":${revision}}\n\n`),
      keepAlive: () => res.write(': keep-alive\n\n'),
      compacted: (compactRevision) => {
        res.end(`data: {"type":"compacted","compactRevision":${compactRevision}}\n\n`);
        // A client that reads nothing would keep the bytes queued until the idle timeout; cut sooner.
        setTimeout(() => res.destroy(), END_GRACE_MS).unref();
      },
      end: () => res.end(),
    };
  }

  private remove(w: Watcher): void {
    if (w.state === 'closed') return;
    this.unindex(w);
    w.state = 'closed';
    w.events = null;
    this.pulling.delete(w);
    this.all.delete(w);
    if (w.timer !== null) clearInterval(w.timer);
  }

  private index(w: Watcher): void {
    const f = w.request.filter;
    if (!('key' in f)) {
      this.prefixes.add(w);
      return;
    }
    let set = this.byKey.get(f.key);
    if (set === undefined) this.byKey.set(f.key, (set = new Set()));
    set.add(w);
  }

  private unindex(w: Watcher): void {
    if (w.state !== 'live') return;
    const f = w.request.filter;
    if (!('key' in f)) {
      this.prefixes.delete(w);
      return;
    }
    const set = this.byKey.get(f.key);
    set?.delete(w);
    if (set?.size === 0) this.byKey.delete(f.key);
  }

  private scheduleFlush(): void {
    if (this.isFlushScheduled || this.isClosed) return;
    this.isFlushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Publishes the revisions applied since the last flush to the live watchers. */
  private flush(): void {
    this.isFlushScheduled = false;
    if (this.isClosed) return;
    this.forgetRendered();
    const kv = this.kv;
    if (this.all.size === 0) {
      // Nobody to publish to, nor to place in the history: `events` is not even read (after a
      // restart it would decode at once the history the store decodes in the background).
      this.published = kv.revision;
      this.publishedEvents = null;
      return;
    }
    const events = kv.events;
    if (events !== this.publishedEvents) {
      // A compaction or a restore replaced the history: pulling watchers move to the new array,
      // and any watcher whose position it passed (a live one only after a snapshot install
      // jumped past it) can no longer be served without a gap.
      this.publishedEvents = events;
      for (const w of [...this.all]) {
        if (this.positionOf(w).revision < kv.compactRevision) this.endCompacted(w);
        else if (w.state === 'pulling') this.relocate(w);
      }
    }
    const head = kv.revision;
    // No live watcher waits for a new event (pulling ones read the history themselves): nothing
    // to look up per event. A restart's replay and a node nobody watches pass here every flush.
    if (head <= this.published || (this.byKey.size === 0 && this.prefixes.size === 0)) {
      this.published = head;
      return;
    }
    const woken: Watcher[] = [];
    let i = kv.eventIndexFrom(this.published + 1, events);
    let first = i;
    for (; i < events.length; i++) {
      const ev = events[i]!;
      if (i > first && events[i - 1]!.revision !== ev.revision) first = i;
      const exact = this.byKey.get(ev.key);
      if (exact !== undefined) for (const w of exact) this.wake(w, ev.revision, i - first, events, i, woken);
      if (this.prefixes.size > 0) for (const w of this.prefixes) if (filterMatches(w.request.filter, ev.key)) this.wake(w, ev.revision, i - first, events, i, woken);
    }
    this.published = head;
    for (const w of woken) this.pump(w);
  }

  /** A live watcher has an event at (revision, k): it pulls from there (unless it starts later). */
  private wake(w: Watcher, revision: number, k: number, events: readonly HistoryEvent[], index: number, woken: Watcher[]): void {
    // A watcher that starts later (a future fromRevision, or a resume inside a revision this node
    // had not applied yet) wakes at its own position, never before it.
    if (w.position.revision > revision || (w.position.revision === revision && k < w.position.k)) return;
    this.unindex(w);
    w.state = 'pulling';
    w.position = { revision, k };
    w.events = events;
    w.index = index;
    this.pulling.add(w);
    woken.push(w);
  }

  /** Finds the watcher's position in the current history array (clamped to its revision's events). */
  private relocate(w: Watcher): void {
    const events = this.kv.events;
    const { revision, k } = w.position;
    const start = this.kv.eventIndexFrom(revision, events);
    const end = k === 0 ? start : this.kv.eventIndexFrom(revision + 1, events);
    w.events = events;
    w.index = Math.min(start + k, end);
  }

  /** Writes what the watcher has to send, while its socket accepts; live again once caught up. */
  private pump(w: Watcher): void {
    w.isScheduled = false;
    if (w.state !== 'pulling' || w.isBlocked) return;
    const kv = this.kv;
    if (w.position.revision < kv.compactRevision) {
      this.endCompacted(w);
      return;
    }
    if (w.events !== kv.events) this.relocate(w);
    const events = w.events!;
    const limit = this.published;
    const filter = w.request.filter;
    let i = w.index;
    let k = w.position.k;
    for (let examined = 0; ; examined++) {
      const ev = events[i];
      if (ev === undefined || ev.revision > limit) break;
      if (examined === EVENTS_PER_SLICE) {
        this.save(w, i, ev.revision, k);
        if (w.sink.flush?.() === false) {
          w.isBlocked = true;
          return;
        }
        w.isScheduled = true;
        setImmediate(() => this.pump(w));
        return;
      }
      const next = events[i + 1];
      const nextK = next !== undefined && next.revision === ev.revision ? k + 1 : 0;
      if (filterMatches(filter, ev.key)) {
        let isLast = true;
        for (let j = i + 1; j < events.length && events[j]!.revision === ev.revision; j++) {
          if (filterMatches(filter, events[j]!.key)) {
            isLast = false;
            break;
          }
        }
        const ok = w.sink.event(ev, k, isLast);
        w.hasWritten = true;
        this.sent.inc();
        if (!ok) {
          this.save(w, i + 1, next?.revision ?? ev.revision + 1, nextK);
          w.isBlocked = true;
          return;
        }
      }
      i++;
      k = nextK;
    }
    // Caught up with what is published: live, holding no events (and blocked, if the last batch
    // filled the consumer: a later event then waits for resume()).
    if (w.sink.flush?.() === false) w.isBlocked = true;
    if (w.position.revision <= limit) w.position = { revision: limit + 1, k: 0 };
    w.events = null;
    w.state = 'live';
    this.pulling.delete(w);
    this.index(w);
  }

  private render(ev: HistoryEvent, withPrevValue: boolean): string {
    const cache = withPrevValue ? this.renderedWithPrev : this.rendered;
    let text = cache.get(ev);
    if (text === undefined) {
      text = watchEventJson(ev, withPrevValue);
      if (this.renderedChars + text.length > RENDER_CACHE_CHARS) this.forgetRendered();
      cache.set(ev, text);
      this.renderedChars += text.length;
    }
    return text;
  }

  private forgetRendered(): void {
    if (this.renderedChars === 0) return;
    this.rendered = new Map();
    this.renderedWithPrev = new Map();
    this.renderedChars = 0;
  }

  /** Where the watcher is: a live one has seen all the hub published (or starts later). */
  private positionOf(w: Watcher): WatchPosition {
    return w.state === 'live' && w.position.revision <= this.published ? { revision: this.published + 1, k: 0 } : w.position;
  }

  private save(w: Watcher, index: number, revision: number, k: number): void {
    w.index = index;
    w.position = { revision, k };
  }

  private tick(w: Watcher): void {
    if (w.state === 'closed' || w.isBlocked) return;
    if (w.hasWritten) {
      w.hasWritten = false;
      return;
    }
    if (w.state === 'live') {
      // All through position.revision - 1 is seen: a resume from this id skips nothing.
      w.isBlocked = !w.sink.progress(this.positionOf(w), this.published);
    } else {
      w.isBlocked = !w.sink.keepAlive();
    }
  }

  private endCompacted(w: Watcher): void {
    this.remove(w);
    this.cut.inc();
    w.sink.compacted(this.kv.compactRevision);
  }
}
