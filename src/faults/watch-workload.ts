// The watch workload of a fault run (issue 12): writers put unique values under one prefix while
// watchers follow it over Server-Sent Events (GET /v1/watch), each reconnecting to another node
// after any break and resuming with the last event id it saw (Last-Event-ID). Checked after the
// run, for every watcher: every acknowledged write is seen (none skipped), exactly once, in
// revision order, with the value that was written, and nothing is seen that no writer attempted.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SseParser } from '../client/index.js';
import { errorCode, exchange, ExchangeError, newAgent, sleep } from '../harness/index.js';
import type { Random } from './random.js';
import type { WorkloadContext } from './workloads.js';

const REQUEST_TIMEOUT_MS = 1000;
const EXCHANGE_TIMEOUT_MS = 1500;
/** A watch that delivers nothing (not even a progress event or a comment) for this long is broken. */
const SILENCE_MS = 8000;

export interface SeenEvent {
  readonly revision: number;
  readonly type: string;
  readonly key: string;
  readonly value: string;
}

export interface WatcherRecord {
  readonly id: number;
  readonly events: SeenEvent[];
  reconnects: number;
  /** A `compacted` event or a refusal that ended the watch for good. */
  fatal: string | null;
}

export interface WatchWorkloadResult {
  readonly prefix: string;
  /** Acknowledged writes: key → the revision the write answered and its value. */
  readonly acked: Map<string, { revision: number; value: string }>;
  /** Every value a writer attempted, acknowledged or not. */
  readonly attempted: Set<string>;
  readonly watchers: WatcherRecord[];
  /** The revision the watchers started from. */
  startRevision: number;
}

/** Runs writers and watchers until ctx.isStopped(); then lets the watchers catch up (drain()). */
export function startWatchWorkload(
  ctx: WorkloadContext,
  rng: Random,
  watchers: number,
  runId: string,
): { writing: Promise<void>; done: Promise<void>; drain: (untilRevision: number, ms: number) => Promise<void>; result: WatchWorkloadResult } {
  const result: WatchWorkloadResult = { prefix: `watch/${runId}/`, acked: new Map(), attempted: new Set(), watchers: [], startRevision: 0 };
  let watchStop = false;
  const stoppers: (() => void)[] = [];
  let wrote = (): void => undefined;
  // Settles once the writer has finished its last write (acknowledged or given up on): only then
  // is the last acknowledged revision known.
  const writing = new Promise<void>((resolve) => (wrote = resolve));
  const done = (async () => {
    if (watchers === 0) {
      wrote();
      return;
    }
    result.startRevision = await currentRevision(ctx, rng);
    const watching = Array.from({ length: watchers }, (_, i) => {
      const record: WatcherRecord = { id: i, events: [], reconnects: 0, fatal: null };
      result.watchers.push(record);
      return watcher(ctx, rng.fork(5000 + i), result, record, () => watchStop, (stop) => stoppers.push(stop));
    });
    try {
      await writer(ctx, rng.fork(5100), result);
    } finally {
      wrote();
    }
    await Promise.race([Promise.all(watching), new Promise<void>((resolve) => stoppers.push(resolve))]);
  })();
  const drain = async (untilRevision: number, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline && result.watchers.some((w) => w.fatal === null && (w.events.at(-1)?.revision ?? 0) < untilRevision)) await sleep(100);
    watchStop = true;
    for (const stop of stoppers) stop();
  };
  return { writing, done, drain, result };
}

async function currentRevision(ctx: WorkloadContext, rng: Random): Promise<number> {
  for (;;) {
    const target = rng.pick(ctx.endpoints());
    try {
      const r = await exchange(target.url, `/v1/kv?prefix=${encodeURIComponent('watch/')}&limit=1`, { timeoutMs: EXCHANGE_TIMEOUT_MS, security: ctx.security, headers: { 'request-timeout': String(REQUEST_TIMEOUT_MS) } });
      const rev = Number(r.headers['raftkv-revision']);
      if (r.status === 200 && Number.isSafeInteger(rev)) return rev;
    } catch (err) {
      if (!(err instanceof ExchangeError)) throw err;
    }
    await sleep(100);
  }
}

async function writer(ctx: WorkloadContext, rng: Random, result: WatchWorkloadResult): Promise<void> {
  const agent = newAgent(ctx.security);
  try {
    for (let seq = 0; !ctx.isStopped(); seq++) {
      const key = `${result.prefix}${String(seq).padStart(7, '0')}`;
      const value = `v${seq}`;
      result.attempted.add(value);
      const idempotencyKey = `${result.prefix.replace(/\//g, '-')}w/${seq}`;
      const started = ctx.now();
      // One logical write, retried with its Idempotency-Key for up to 4 s.
      for (;;) {
        const target = rng.pick(ctx.endpoints());
        try {
          const r = await exchange(target.url, `/v1/kv/${encodeURIComponent(key)}`, {
            method: 'PUT',
            body: value,
            agent,
            timeoutMs: EXCHANGE_TIMEOUT_MS,
            security: ctx.security,
            headers: { 'request-timeout': String(REQUEST_TIMEOUT_MS), 'idempotency-key': idempotencyKey, 'content-type': 'application/octet-stream' },
          });
          if (r.status === 200) {
            result.acked.set(key, { revision: (JSON.parse(r.body.toString('utf8')) as { revision: number }).revision, value });
            break;
          }
          if (r.status === 401 || r.status === 403) ctx.onAuthRefusal(`PUT ${key}: ${r.status} ${errorCode(r)}`);
        } catch (err) {
          if (!(err instanceof ExchangeError)) throw err;
        }
        if (ctx.now() - started > 4000) break;
        await sleep(rng.int(20, 80));
      }
      await sleep(rng.int(5, 30));
    }
  } finally {
    agent.destroy();
  }
}

/** One watcher: follows the prefix, reconnecting with Last-Event-ID after every break. */
async function watcher(ctx: WorkloadContext, rng: Random, result: WatchWorkloadResult, record: WatcherRecord, isStopped: () => boolean, onStop: (stop: () => void) => void): Promise<void> {
  let lastId: string | null = null;
  let current: ClientRequest | null = null;
  onStop(() => current?.destroy());
  while (!isStopped() && record.fatal === null) {
    const target = rng.pick(ctx.endpoints());
    const path = `/v1/watch?prefix=${encodeURIComponent(result.prefix)}&fromRevision=${result.startRevision + 1}`;
    await new Promise<void>((resolve) => {
      const url = new URL(path, target.url);
      const headers: Record<string, string> = { accept: 'text/event-stream' };
      if (lastId !== null) headers['last-event-id'] = lastId;
      if (ctx.security !== null) headers['authorization'] = `Bearer ${ctx.security.token}`;
      const options = { method: 'GET', headers, ...(ctx.security !== null ? { ca: ctx.security.ca } : {}) };
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options);
      current = req;
      let silence: NodeJS.Timeout | null = null;
      const finish = (): void => {
        if (silence !== null) clearTimeout(silence);
        req.destroy();
        resolve();
      };
      const alive = (): void => {
        if (silence !== null) clearTimeout(silence);
        silence = setTimeout(finish, SILENCE_MS);
      };
      alive();
      req.on('error', finish);
      req.on('response', (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          res.resume();
          if (res.statusCode === 401 || res.statusCode === 403) ctx.onAuthRefusal(`watch ${target.id}: ${res.statusCode}`);
          finish();
          return;
        }
        res.setEncoding('utf8');
        const parser = new SseParser();
        res.on('data', (chunk: string) => {
          alive();
          for (const m of parser.feed(chunk)) {
            if (m.data !== '') {
              const event = JSON.parse(m.data) as { type: string; key?: string; value?: string; modRevision?: number; compactRevision?: number };
              if (event.type === 'put' || event.type === 'delete') {
                record.events.push({ revision: event.modRevision ?? -1, type: event.type, key: event.key ?? '', value: event.value ?? '' });
              } else if (event.type === 'compacted') {
                record.fatal = `compacted at ${event.compactRevision}`;
              }
            }
            if (m.id !== undefined) lastId = m.id;
          }
        });
        res.on('end', finish);
        res.on('error', finish);
      });
      req.end();
    });
    current = null;
    if (isStopped() || record.fatal !== null) break;
    record.reconnects++;
    await sleep(rng.int(50, 200));
  }
}

/** The watch workload's checks, one line per problem. */
export function checkWatches(r: WatchWorkloadResult): string[] {
  const problems: string[] = [];
  const valueAt = new Map<number, string>();
  for (const { revision, value } of r.acked.values()) valueAt.set(revision, value);
  for (const w of r.watchers) {
    if (w.fatal !== null) problems.push(`watcher ${w.id}: ${w.fatal}`);
    const seen = new Set<string>();
    let previous = 0;
    for (const e of w.events) {
      const id = `${e.revision}:${e.key}`;
      if (seen.has(id)) problems.push(`watcher ${w.id} saw ${e.key} at revision ${e.revision} twice`);
      seen.add(id);
      if (e.revision < previous) problems.push(`watcher ${w.id} saw revision ${e.revision} after ${previous}`);
      previous = Math.max(previous, e.revision);
      if (e.type === 'put' && !r.attempted.has(e.value)) problems.push(`watcher ${w.id} saw a value no writer attempted: ${e.key}=${e.value}`);
      const expected = valueAt.get(e.revision);
      if (expected !== undefined && e.value !== expected) problems.push(`watcher ${w.id} saw ${e.value} at revision ${e.revision}, where ${expected} was acknowledged`);
    }
    const revisions = new Set(w.events.map((e) => e.revision));
    const skipped = [...r.acked.values()].filter((a) => !revisions.has(a.revision));
    if (skipped.length > 0) problems.push(`watcher ${w.id} never saw ${skipped.length} acknowledged writes (e.g. revision ${skipped[0]!.revision} = ${skipped[0]!.value})`);
    if (problems.length > 20) break;
  }
  return problems.slice(0, 20);
}
