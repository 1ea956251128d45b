// The client side of GET /v1/watch (docs/client.md "Watch"): a Server-Sent Events reader and an
// async iterator of typed events that survives the loss of the node it reads from. Every event
// carries an id naming the position after it (server/watch.ts); the iterator remembers the id of
// the last event it delivered and, on a disconnect, asks the next endpoint to resume after it
// (Last-Event-ID), with backoff. So every change is delivered once, in revision order, across
// reconnects, as long as the history it needs is not compacted meanwhile (then the last event is
// `compacted` and the iteration ends).
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { backoffDelayMs } from './backoff.js';
import { errorFromResponse, RaftKvClientError } from './errors.js';
import type { TlsTrust } from './node-transport.js';
import { fromJsonValue } from './values.js';

/** What to watch: one key, or every key under a prefix ("" for all). */
export type WatchTarget = { readonly key: string } | { readonly prefix: string };

export interface WatchOptions {
  /** The first revision to deliver (replays history from there). @default the node's revision + 1: only new changes */
  readonly fromRevision?: number;
  /** Give `prevValue`, the value before the change, when there was one. @default false */
  readonly prevValue?: boolean;
  /** Ends the iteration (it returns; no error) and closes the connection. */
  readonly signal?: AbortSignal;
  /**
   * How often an idle watch gets a progress event (100 to 60000). A connection silent for three
   * of these (and a second) is taken for dead and replaced. @default the server's (5000)
   */
  readonly progressMs?: number;
}

export interface WatchPutEvent {
  readonly type: 'put';
  readonly key: string;
  readonly value: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly lease: number;
  /** With `prevValue: true`, when the key existed before. */
  readonly prevValue?: Uint8Array;
}

export interface WatchDeleteEvent {
  readonly type: 'delete';
  readonly key: string;
  /** The revision of the delete. */
  readonly modRevision: number;
  readonly prevValue?: Uint8Array;
}

/** Nothing matching changed up to `revision` (sent while the watch is idle). */
export interface WatchProgressEvent {
  readonly type: 'progress';
  readonly revision: number;
}

/** The history the watch needed is gone (compacted up to `compactRevision`): the last event. */
export interface WatchCompactedEvent {
  readonly type: 'compacted';
  readonly compactRevision: number;
}

export type WatchEvent = WatchPutEvent | WatchDeleteEvent | WatchProgressEvent | WatchCompactedEvent;

/** One Server-Sent Events message: its data lines joined, and the id it set (if any). */
export interface SseMessage {
  readonly id: string | undefined;
  readonly data: string;
}

/**
 * Server-Sent Events, parsed as the HTML standard says: lines end with CR, LF or CRLF; a blank
 * line dispatches; `data` lines join with LF; comments (`:`) are ignored. A message with an id
 * and no data is returned too (it moves the resume position). Bounded: a line longer than
 * `maxLineChars` is an error, not a growing buffer.
 */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private id: string | undefined = undefined;
  private hasId = false;

  constructor(private readonly maxLineChars = 16 << 20) {}

  feed(text: string): SseMessage[] {
    const out: SseMessage[] = [];
    this.buffer += text;
    let start = 0;
    for (;;) {
      const lf = this.buffer.indexOf('\n', start);
      const cr = this.buffer.indexOf('\r', start);
      let end = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
      if (end === -1) break;
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (end === cr && cr === this.buffer.length - 1) break;
      const line = this.buffer.slice(start, end);
      if (end === cr && this.buffer[cr + 1] === '\n') end++;
      start = end + 1;
      this.line(line, out);
    }
    this.buffer = this.buffer.slice(start);
    if (this.buffer.length > this.maxLineChars) throw new Error(`an event stream line is longer than ${this.maxLineChars} characters`);
    return out;
  }

  private line(line: string, out: SseMessage[]): void {
    if (line === '') {
      if (this.data.length > 0 || this.hasId) out.push({ id: this.id, data: this.data.join('\n') });
      this.data = [];
      this.id = undefined;
      this.hasId = false;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) {
      this.id = value;
      this.hasId = true;
    }
  }
}

/** A watch event from its JSON; null for a shape this client does not know (skipped). */
export function watchEventFromJson(text: string): WatchEvent | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const o = raw as Record<string, unknown>;
  const num = (f: string): number => (typeof o[f] === 'number' ? (o[f] as number) : 0);
  const prev = typeof o['prevValue'] === 'string' ? { prevValue: fromJsonValue(o['prevValue'], o['prevEncoding']) } : {};
  switch (o['type']) {
    case 'put':
      if (typeof o['key'] !== 'string' || typeof o['value'] !== 'string') return null;
      return { type: 'put', key: o['key'], value: fromJsonValue(o['value'], o['encoding']), createRevision: num('createRevision'), modRevision: num('modRevision'), version: num('version'), lease: num('lease'), ...prev };
    case 'delete':
      if (typeof o['key'] !== 'string') return null;
      return { type: 'delete', key: o['key'], modRevision: num('modRevision'), ...prev };
    case 'progress':
      return { type: 'progress', revision: num('revision') };
    case 'compacted':
      return { type: 'compacted', compactRevision: num('compactRevision') };
    default:
      return null;
  }
}

export interface WatchConnectionOptions {
  readonly endpoints: readonly string[];
  readonly token?: string;
  readonly tls: TlsTrust;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  /** A node must answer a watch request (its head) within this. */
  readonly connectTimeoutMs: number;
}

const MAX_ERROR_BODY = 64 << 10;

/** The events of a watch, from node to node across disconnects (RaftKvClient.watch). */
export async function* watchEvents(conn: WatchConnectionOptions, target: WatchTarget, opts: WatchOptions = {}): AsyncGenerator<WatchEvent, void, undefined> {
  const query = new URLSearchParams();
  if ('key' in target) {
    if (typeof target.key !== 'string' || target.key === '') throw new RaftKvClientError('BAD_KEY', 'the key must be a non-empty string', null);
    query.set('key', target.key);
  } else {
    if (typeof target.prefix !== 'string') throw new RaftKvClientError('BAD_REQUEST', 'the prefix must be a string', null);
    query.set('prefix', target.prefix);
  }
  if (opts.fromRevision !== undefined) {
    if (!Number.isSafeInteger(opts.fromRevision) || opts.fromRevision < 1) throw new RaftKvClientError('BAD_REQUEST', `fromRevision must be a whole number from 1, not ${opts.fromRevision}`, null);
    query.set('fromRevision', String(opts.fromRevision));
  }
  if (opts.prevValue === true) query.set('prevValue', '');
  if (opts.progressMs !== undefined) query.set('progressMs', String(opts.progressMs));
  const idleMs = (opts.progressMs ?? 5000) * 3 + 1000;
  const signal = opts.signal;
  let lastId: string | undefined;
  let failures = 0;
  let next = 0;
  while (!isAborted(signal)) {
    const endpoint = conn.endpoints[next % conn.endpoints.length]!;
    let res: IncomingMessage | null = null;
    let destroy = (): void => undefined;
    try {
      const params = new URLSearchParams(query);
      // Resuming: the position wins over fromRevision on the server; send only one of them.
      if (lastId !== undefined) params.delete('fromRevision');
      const opened = await open(endpoint, `/v1/watch?${params.toString()}`, conn, lastId, signal);
      res = opened.res;
      destroy = opened.destroy;
      if (res.statusCode !== 200) {
        const body = await readSome(res);
        const { code, message } = parseError(body, res.statusCode ?? 0);
        const status = res.statusCode ?? 0;
        // A request the nodes refuse (bad input, token, permissions) is refused by every node.
        if (status >= 400 && status < 500 && status !== 408 && status !== 429) throw errorFromResponse(status, code, `${endpoint}: ${message}`, endpoint);
      } else {
        const parser = new SseParser();
        res.setEncoding('utf8');
        res.socket.setTimeout(idleMs, () => destroy());
        for await (const chunk of res as AsyncIterable<string>) {
          for (const message of parser.feed(chunk)) {
            failures = 0;
            // An id-only message (the stream's start) moves the position without an event.
            if (message.data === '') {
              if (message.id !== undefined) lastId = message.id;
              continue;
            }
            const event = watchEventFromJson(message.data);
            if (message.id !== undefined) lastId = message.id;
            if (event === null) continue;
            yield event;
            if (event.type === 'compacted') return;
          }
        }
      }
    } catch (err) {
      if (err instanceof RaftKvClientError) throw err;
      // A connection lost or refused: the next endpoint, after a backoff.
    } finally {
      destroy();
    }
    if (isAborted(signal)) return;
    next++;
    await pause(backoffDelayMs(failures++, conn.backoffMs, conn.maxBackoffMs, undefined), signal);
  }
}

function open(endpoint: string, path: string, conn: WatchConnectionOptions, lastId: string | undefined, signal: AbortSignal | undefined): Promise<{ res: IncomingMessage; destroy: () => void }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, endpoint);
    const isTls = url.protocol === 'https:';
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (conn.token !== undefined) headers['authorization'] = `Bearer ${conn.token}`;
    if (lastId !== undefined) headers['last-event-id'] = lastId;
    const tls = conn.tls;
    // A connection of its own (no agent): a watch holds it for as long as it lives.
    const options = {
      method: 'GET',
      headers,
      agent: false as const,
      ...(isTls && tls.ca !== undefined ? { ca: tls.ca } : {}),
      ...(isTls && tls.cert !== undefined ? { cert: tls.cert, key: tls.key } : {}),
    };
    const req = isTls ? httpsRequest(url, options) : httpRequest(url, options);
    const onAbort = (): void => {
      req.destroy();
      reject(new Error('aborted'));
    };
    const destroy = (): void => {
      signal?.removeEventListener('abort', onAbort);
      clearTimeout(timer);
      req.destroy();
    };
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer from ${endpoint} within ${conn.connectTimeoutMs} ms`));
    }, conn.connectTimeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      res.on('error', () => undefined);
      resolve({ res, destroy });
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    req.end();
  });
}

async function readSome(res: IncomingMessage): Promise<string> {
  let text = '';
  res.setEncoding('utf8');
  for await (const chunk of res as AsyncIterable<string>) {
    text += chunk;
    if (text.length > MAX_ERROR_BODY) break;
  }
  return text;
}

function parseError(body: string, status: number): { code: string; message: string } {
  try {
    const e = (JSON.parse(body) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof e?.code === 'string') return { code: e.code, message: typeof e.message === 'string' ? e.message : e.code };
  } catch {
    // not JSON: described by its status
  }
  return { code: `HTTP_${status}`, message: `the watch was answered ${status}` };
}

function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
