// etcd's Watch service: one bidirectional stream carries many watches (create, cancel, progress
// requests in; created, events, progress and cancel notices out), each served by the node's one
// watch hub (src/server/watch.ts) through a sink that batches a watcher's events into one
// WatchResponse per pump of the hub. Back-pressure is the stream's: when grpc-js's buffer is
// full, every watch of the stream waits for 'drain' holding only its position. etcd's rules:
// start_revision 0 watches from the next revision; a start before the compaction gets `created`,
// then `canceled` with compact_revision; a create that cannot be served (bad key, permission, too
// many watches) gets `created` and `canceled` with a cancel_reason.
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { HistoryEvent } from '../kv/index.js';
import type { Principal } from '../server/auth.js';
import type { WatchFilter, WatchHandle, WatchRequest as HubWatchRequest, WatchSink } from '../server/watch.js';
import type { EtcdContext, ResponseHeader } from './context.js';
import { ETCD_ERRORS, EtcdError, toEtcdError, toServiceError } from './errors.js';
import { status } from '@grpc/grpc-js';
import { readAction } from './reads.js';
import { int64, keyRange, type KeyValue } from './wire.js';

interface WatchCreateRequest {
  key: Buffer;
  range_end: Buffer;
  start_revision: string | number;
  progress_notify: boolean;
  filters: string[];
  prev_kv: boolean;
  watch_id: string | number;
}

interface WatchRequest {
  request_union?: 'create_request' | 'cancel_request' | 'progress_request';
  create_request?: WatchCreateRequest;
  cancel_request?: { watch_id: string | number };
  progress_request?: Record<string, never>;
}

interface EventMessage {
  type: 'PUT' | 'DELETE';
  kv: KeyValue;
  prev_kv: KeyValue | null;
}

interface WatchResponse {
  header: ResponseHeader;
  watch_id: number;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: number;
  cancel_reason?: string;
  events?: EventMessage[];
}

type Call = ServerDuplexStream<WatchRequest, WatchResponse>;

/** A watcher's batch is sent once it holds this many events or bytes, or the hub is done for now. */
const BATCH_EVENTS = 1000;
const BATCH_BYTES = 1 << 20;
/** How often an etcd watch with progress_notify hears a progress notice when idle (etcd: 10 min). */
const PROGRESS_NOTIFY_MS = 10 * 60 * 1000;

export function watchService(ctx: EtcdContext): UntypedServiceImplementation {
  return { Watch: (call: Call) => new WatchStream(ctx, call).start() };
}

class WatchStream {
  private readonly watches = new Map<number, WatchHandle>();
  private nextId = 0;
  private principal: Principal | null = null;
  private isClosed = false;

  constructor(
    private readonly ctx: EtcdContext,
    private readonly call: Call,
  ) {}

  start(): void {
    try {
      this.principal = this.ctx.principal(this.call.metadata);
    } catch (err) {
      this.call.emit('error', toServiceError(err));
      return;
    }
    this.call.on('data', (req: WatchRequest) => {
      try {
        this.handle(req);
      } catch (err) {
        this.fail(err);
      }
    });
    this.call.on('drain', () => {
      // Requests are read again (see send) and every watch carries on from its position.
      this.call.resume();
      for (const h of [...this.watches.values()]) h.resume();
    });
    this.call.on('end', () => this.close(true));
    this.call.on('cancelled', () => this.close(false));
    this.call.on('close', () => this.close(false));
    this.call.on('error', () => this.close(false));
  }

  private fail(err: unknown): void {
    if (this.isClosed) return;
    this.close(false);
    this.call.emit('error', toServiceError(err));
  }

  private close(endCall: boolean): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const h of this.watches.values()) h.cancel();
    this.watches.clear();
    if (endCall) this.call.end();
  }

  private send(res: WatchResponse): boolean {
    if (this.isClosed || this.call.destroyed) return false;
    const accepted = this.call.write(res);
    // The client is not reading: read none of its requests either (progress requests, creates and
    // cancels each answer), so nothing it asks for piles up here; HTTP/2 holds it back instead.
    if (!accepted) this.call.pause();
    return accepted;
  }

  private handle(req: WatchRequest): void {
    if (this.isClosed) return;
    switch (req.request_union) {
      case 'create_request':
        this.create(req.create_request!);
        return;
      case 'cancel_request': {
        const id = int64(req.cancel_request!.watch_id, 'watch_id');
        const h = this.watches.get(id);
        if (h === undefined) return;
        h.cancel();
        this.watches.delete(id);
        this.send({ header: this.ctx.header(), watch_id: id, canceled: true });
        return;
      }
      case 'progress_request':
        // etcd answers only when every watch of the stream has caught up: the notice promises
        // that nothing before its revision is still to come.
        if ([...this.watches.values()].every((h) => h.isSynced())) this.send({ header: this.ctx.header(), watch_id: -1 });
        return;
      default:
        return;
    }
  }

  private create(c: WatchCreateRequest): void {
    const kv = this.ctx.parts.kv;
    const hub = this.ctx.parts.watches;
    let id = -1;
    try {
      const asked = int64(c.watch_id, 'watch_id', 0);
      if (asked > 0) {
        if (this.watches.has(asked)) throw new EtcdError(status.INVALID_ARGUMENT, 'mvcc: duplicate watch ID');
        id = asked;
      }
      if (this.watches.size >= this.ctx.limits.maxWatchesPerStream) throw ETCD_ERRORS.tooManyRequests();
      const range = keyRange(c.key, c.range_end, ETCD_ERRORS.emptyKey);
      this.ctx.authorize(this.principal, [readAction(range)]);
      const start = int64(c.start_revision, 'start_revision', 0);
      hub.checkCapacity();
      if (id < 0) {
        while (this.watches.has(this.nextId)) this.nextId++;
        id = this.nextId++;
      }
      const filter: WatchFilter = range.type === 'key' ? { key: range.key } : { start: range.start, end: range.end };
      const request: HubWatchRequest = {
        filter,
        start: { revision: start > 0 ? start : kv.revision + 1, k: 0 },
        prevValue: c.prev_kv === true,
        progressMs: c.progress_notify === true ? Math.min(PROGRESS_NOTIFY_MS, this.ctx.parts.cfg.watchProgressMs ?? 5000) : 60_000,
      };
      // `created` goes out before the hub can send the first event.
      this.send({ header: this.ctx.header(), watch_id: id, created: true });
      const sink = new EtcdWatchSink(this, id, c, this.ctx);
      this.watches.set(id, hub.watch(request, sink));
    } catch (err) {
      const e = toEtcdError(err);
      this.send({ header: this.ctx.header(), watch_id: id, created: true, canceled: true, cancel_reason: e.message });
    }
  }

  /** For the sink: write, and whether the stream takes more. */
  write(res: WatchResponse): boolean {
    return this.send(res);
  }

  forget(id: number): void {
    this.watches.delete(id);
  }

  end(): void {
    this.close(true);
  }
}

class EtcdWatchSink implements WatchSink {
  private pending: EventMessage[] = [];
  private pendingBytes = 0;
  private lastRevision = 0;
  private readonly noPut: boolean;
  private readonly noDelete: boolean;
  private readonly wantsProgress: boolean;
  private readonly wantsPrev: boolean;

  constructor(
    private readonly stream: WatchStream,
    private readonly id: number,
    c: WatchCreateRequest,
    private readonly ctx: EtcdContext,
  ) {
    this.noPut = c.filters.includes('NOPUT');
    this.noDelete = c.filters.includes('NODELETE');
    this.wantsProgress = c.progress_notify === true;
    this.wantsPrev = c.prev_kv === true;
  }

  event(ev: HistoryEvent, _k: number, _isLast: boolean): boolean {
    const isDelete = ev.record === null;
    if ((isDelete && this.noDelete) || (!isDelete && this.noPut)) return true;
    const key = Buffer.from(ev.key);
    const kv: KeyValue =
      ev.record === null
        ? { key, create_revision: 0, mod_revision: ev.revision, version: 0, value: Buffer.alloc(0), lease: 0 }
        : { key, create_revision: ev.record.createRevision, mod_revision: ev.record.modRevision, version: ev.record.version, value: Buffer.from(ev.record.bytes, 'latin1'), lease: ev.record.lease };
    const prev = this.wantsPrev && ev.prev !== null ? { key, create_revision: ev.prev.createRevision, mod_revision: ev.prev.modRevision, version: ev.prev.version, value: Buffer.from(ev.prev.bytes, 'latin1'), lease: ev.prev.lease } : null;
    this.pending.push({ type: isDelete ? 'DELETE' : 'PUT', kv, prev_kv: prev });
    this.pendingBytes += key.length * 2 + kv.value.length + (prev?.value.length ?? 0) + 64;
    this.lastRevision = ev.revision;
    if (this.pending.length >= BATCH_EVENTS || this.pendingBytes >= BATCH_BYTES) return this.send();
    return true;
  }

  flush(): boolean {
    return this.pending.length > 0 ? this.send() : true;
  }

  private send(): boolean {
    const events = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    return this.stream.write({ header: this.ctx.header(this.lastRevision), watch_id: this.id, events });
  }

  progress(_position: unknown, revision: number): boolean {
    if (!this.wantsProgress) return true;
    return this.stream.write({ header: this.ctx.header(revision), watch_id: this.id });
  }

  keepAlive(): boolean {
    return true;
  }

  compacted(compactRevision: number): void {
    this.flush();
    this.stream.forget(this.id);
    this.stream.write({ header: this.ctx.header(), watch_id: this.id, canceled: true, compact_revision: compactRevision, cancel_reason: ETCD_ERRORS.compacted().message });
  }

  end(): void {
    this.stream.end();
  }
}
