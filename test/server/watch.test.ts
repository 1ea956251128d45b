// The watch hub (src/server/watch.ts) in one process: the store applied by hand, the hub behind a
// bare node:http server, and streams read by SseReader. Checks the ids and resume positions, the
// matching of key and prefix watchers, replay, future starts, compaction, and that a client that
// reads nothing makes the hub hold a position, not a queue.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bytes, Driver } from '../kv/helpers.js';
import { errorReply } from '../../src/server/http-util.js';
import { Registry } from '../../src/server/metrics.js';
import { eventId, idBefore, parseWatchRequest, positionAfterId, WatchHub } from '../../src/server/watch.js';
import { SseReader } from './sse-reader.js';
import { RaftKvClient, RaftKvClientError, SseParser, TooLargeError, type WatchEvent } from '../../src/client/index.js';

let d: Driver;
let hub: WatchHub;
let registry: Registry;
let server: Server;
let base: string;

before(async () => {
  d = new Driver();
  registry = new Registry();
  hub = new WatchHub(d.sm, registry, { maxWatchers: 50 });
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const reply = hub.route({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body: new Uint8Array(0), deadline: Date.now() + 5000, principal: null });
    if (reply === null) {
      res.writeHead(404).end();
      return;
    }
    reply.then(
      (r) => r.stream!(res, { 'raftkv-node': 't' }),
      (err: unknown) => {
        const e = errorReply(err);
        res.writeHead(e.status, { 'content-type': 'application/json' }).end(JSON.stringify(e.json));
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  hub.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const txn = (...ops: [string, string | null][]): void => {
  d.apply({ type: 'txn', compare: [], success: ops.map(([key, v]) => (v === null ? { type: 'delete' as const, key } : { type: 'put' as const, key, value: bytes(v) })), failure: [] });
};
const brief = (e: { id: string | undefined; json: Record<string, unknown> }): string => `${e.id} ${String(e.json['type'])} ${String(e.json['key'])}=${String(e.json['value'])}`;

test('ids name the position after an event, and Last-Event-ID resumes exactly there', () => {
  assert.deepEqual(positionAfterId('7'), { revision: 8, k: 0 });
  assert.deepEqual(positionAfterId('7.0'), { revision: 7, k: 1 });
  assert.deepEqual(positionAfterId('0'), { revision: 1, k: 0 });
  for (const bad of ['', ' 7', '7.', '.1', '-1', '07', '7.01', '1e3', '7.1.2', 'x', '99999999999999999', '7.1234567890']) assert.equal(positionAfterId(bad), null, bad);
  assert.equal(eventId(5, 2, true), '5');
  assert.equal(eventId(5, 2, false), '5.2');
  for (const p of [{ revision: 9, k: 0 }, { revision: 9, k: 3 }]) assert.deepEqual(positionAfterId(idBefore(p)), p);
});

test('request parsing: exactly one of key and prefix, strict numbers, no unknown parameters, a strict Last-Event-ID', () => {
  const parse = (q: string, id?: string) => parseWatchRequest(new URLSearchParams(q), id, { revision: 41, limits: d.sm.limits }, 5000);
  assert.deepEqual(parse('key=a').start, { revision: 42, k: 0 }, 'default: only new changes');
  assert.deepEqual(parse('prefix=').filter, { prefix: '' });
  assert.deepEqual(parse('key=a&fromRevision=3').start, { revision: 3, k: 0 });
  assert.deepEqual(parse('key=a&fromRevision=3', '10.2').start, { revision: 10, k: 3 }, 'Last-Event-ID wins');
  assert.equal(parse('key=a&prevValue').prevValue, true);
  assert.equal(parse('key=a&progressMs=100').progressMs, 100);
  for (const q of ['', 'key=a&prefix=b', 'key=', 'key=a&key=b', 'key=a&fromRevision=0', 'key=a&fromRevision=x', 'key=a&fromRevision=-1', 'key=a&nope=1', 'key=a&prevValue=yes', 'key=a&progressMs=5', 'key=a&progressMs=600000', `key=${'k'.repeat(5000)}`]) {
    assert.throws(() => parse(q), (err: { status?: number }) => err.status === 400 || err.status === 413, q);
  }
  assert.throws(() => parse('key=a', '5.x'), /Last-Event-ID/);
});

test('key and prefix watchers see each change once, in order; a transaction is one revision with ids R.k then R', async () => {
  const key = await SseReader.open(base, '/v1/watch?key=m/a');
  const prefix = await SseReader.open(base, '/v1/watch?prefix=m/&prevValue');
  const all = await SseReader.open(base, '/v1/watch?prefix=');
  d.put('m/a', '1');
  d.put('other', 'x');
  const r = d.sm.revision + 1;
  txn(['m/a', '2'], ['n/z', 'q'], ['m/b', '3'], ['m/c', '4']);
  d.del('m/a');
  const start = r - 2;
  assert.deepEqual((await key.take(3)).map(brief), [`${start} put m/a=1`, `${r} put m/a=2`, `${r + 1} delete m/a=`]);
  const p = await prefix.take(5);
  assert.deepEqual(p.map(brief), [`${start} put m/a=1`, `${r}.0 put m/a=2`, `${r}.2 put m/b=3`, `${r} put m/c=4`, `${r + 1} delete m/a=`]);
  assert.equal(p[1]!.json['prevValue'], '1');
  assert.equal(p[2]!.json['prevValue'], undefined, 'no previous value: none given');
  assert.deepEqual(p[4]!.json, { type: 'delete', key: 'm/a', value: '', createRevision: 0, modRevision: r + 1, version: 0, lease: 0, prevValue: '2' });
  assert.deepEqual(p[1]!.json, { type: 'put', key: 'm/a', value: '2', createRevision: start, modRevision: r, version: 2, lease: 0, prevValue: '1' });
  assert.deepEqual((await all.take(6)).map((e) => e.id), [String(start), String(start + 1), `${r}.0`, `${r}.1`, `${r}.2`, String(r)]);
  for (const s of [key, prefix, all]) s.close();
});

test('fromRevision replays history; Last-Event-ID in the middle of a revision delivers the rest of it once', async () => {
  const r = d.sm.revision + 1;
  txn(['h/1', 'a'], ['h/2', 'b'], ['h/3', 'c']);
  d.put('h/4', 'd');
  const replay = await SseReader.open(base, `/v1/watch?prefix=h/&fromRevision=${r}`);
  assert.deepEqual((await replay.take(4)).map(brief), [`${r}.0 put h/1=a`, `${r}.1 put h/2=b`, `${r} put h/3=c`, `${r + 1} put h/4=d`]);
  replay.close();
  const resumed = await SseReader.open(base, '/v1/watch?prefix=h/', { 'last-event-id': `${r}.0` });
  assert.deepEqual((await resumed.take(3)).map(brief), [`${r}.1 put h/2=b`, `${r} put h/3=c`, `${r + 1} put h/4=d`]);
  resumed.close();
  const afterTxn = await SseReader.open(base, '/v1/watch?prefix=h/', { 'last-event-id': String(r) });
  assert.deepEqual((await afterTxn.take(1)).map(brief), [`${r + 1} put h/4=d`], 'an id R resumes at the first event of the next revision');
  afterTxn.close();
  // An id past the revision's events (k too large) resumes at the next revision, skipping nothing.
  const past = await SseReader.open(base, '/v1/watch?prefix=h/', { 'last-event-id': `${r}.99` });
  assert.deepEqual((await past.take(1)).map(brief), [`${r + 1} put h/4=d`]);
  past.close();
});

test('a fromRevision in the future waits for it; a watcher opening announces where it starts', async () => {
  const future = d.sm.revision + 3;
  const w = await SseReader.open(base, `/v1/watch?prefix=f/&fromRevision=${future}`);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(w.lastId, String(future - 1), 'the opening id resumes at the start');
  d.put('f/1', 'no');
  d.put('f/2', 'no');
  d.put('f/3', 'yes');
  assert.deepEqual((await w.take(1)).map(brief), [`${future} put f/3=yes`]);
  w.close();
});

test('a resume inside a revision this node has not applied yet waits for it and gives only the rest of it', async () => {
  const r = d.sm.revision + 1;
  const w = await SseReader.open(base, '/v1/watch?prefix=u/', { 'last-event-id': `${r}.0` });
  await new Promise((resolve) => setTimeout(resolve, 30));
  txn(['u/1', 'a'], ['u/2', 'b'], ['u/3', 'c']);
  d.put('u/4', 'd');
  assert.deepEqual((await w.take(3)).map(brief), [`${r}.1 put u/2=b`, `${r} put u/3=c`, `${r + 1} put u/4=d`]);
  w.close();
});

test('progress events while nothing matches carry the revision and an id that resumes after it', async () => {
  const w = await SseReader.open(base, '/v1/watch?key=idle&progressMs=100');
  d.put('busy', '1');
  const [p] = await w.take(1, 3000, false);
  assert.equal(p!.json['type'], 'progress');
  assert.equal(p!.json['revision'], d.sm.revision);
  assert.equal(p!.id, String(d.sm.revision));
  w.close();
});

test('compaction: an older fromRevision answers compacted and ends; the compact revision itself is still served', async () => {
  d.put('c/1', 'x');
  const before = d.sm.revision;
  d.put('c/1', 'y');
  d.apply({ type: 'compact', revision: d.sm.revision });
  const old = await SseReader.open(base, `/v1/watch?key=c/1&fromRevision=${before}`);
  const [ev] = await old.take(1);
  assert.deepEqual(ev!.json, { type: 'compacted', compactRevision: d.sm.revision });
  await old.ended();
  const at = await SseReader.open(base, `/v1/watch?key=c/1&fromRevision=${d.sm.revision}`);
  assert.deepEqual((await at.take(1)).map((e) => e.json['value']), ['y'], 'the compact revision itself is kept');
  at.close();
});

test('a client that reads nothing: the hub holds its position and one write, is cut with compacted when compaction passes it', async () => {
  const slow = await SseReader.open(base, '/v1/watch?prefix=big/');
  slow.res.pause();
  const fast = await SseReader.open(base, '/v1/watch?prefix=big/');
  const value = 'v'.repeat(64 * 1024);
  const n = 160; // 10 MiB of events
  for (let i = 0; i < n; i++) {
    d.put(`big/${i % 7}`, value);
    if (i % 16 === 0) await new Promise((r) => setImmediate(r));
  }
  const got = await fast.take(n, 10_000);
  assert.equal(got.length, n, 'a reading watcher gets everything');
  const socket = slow.req.socket!;
  // What the server side keeps for the slow one: far less than the 10 MiB written.
  const serverQueued = [...(hub as unknown as { all: Set<{ sink: { res: { writableLength: number } }; isBlocked: boolean }> }).all].map((w) => w.sink.res.writableLength);
  assert.ok(Math.max(...serverQueued) < 1 << 20, `queued per watcher: ${serverQueued.join(', ')}`);
  assert.ok(socket.bytesRead < 8 << 20, `the slow client has not read it all (${socket.bytesRead})`);
  d.apply({ type: 'compact', revision: d.sm.revision });
  await new Promise((r) => setTimeout(r, 50));
  slow.res.resume();
  await slow.ended(10_000);
  const last = slow.messages.at(-1)!;
  assert.deepEqual(JSON.parse(last.data), { type: 'compacted', compactRevision: d.sm.revision });
  const ids = slow.messages.slice(0, -1).map((m) => m.id);
  assert.ok(ids.length < n, `the slow watcher got ${ids.length} events before it was cut`);
  assert.match(registry.render(), /raftkv_watch_compacted_total [1-9]/);
  fast.close();
});

test('exact-key watchers are indexed: a write wakes only the watchers of its key', async () => {
  const watchers = await Promise.all(Array.from({ length: 30 }, (_, i) => SseReader.open(base, `/v1/watch?key=idx/${i}`)));
  await new Promise((r) => setTimeout(r, 20));
  const internal = hub as unknown as { byKey: Map<string, Set<unknown>>; pulling: Set<unknown> };
  assert.equal(internal.byKey.size >= 30, true);
  d.put('idx/7', 'x');
  const [ev] = await watchers[7]!.take(1);
  assert.equal(ev!.json['key'], 'idx/7');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(watchers.reduce((n, w) => n + w.pending, 0), 0, 'nobody else got anything');
  for (const w of watchers) w.close();
});

test('the watcher cap answers 503 OVERLOADED with a JSON error', async () => {
  await new Promise((r) => setTimeout(r, 100));
  const open = await Promise.all(Array.from({ length: 50 - hub.size }, () => SseReader.open(base, '/v1/watch?key=cap')));
  const refused = await SseReader.open(base, '/v1/watch?key=cap');
  assert.equal(refused.status, 503);
  assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'OVERLOADED');
  for (const w of open) w.close();
  await new Promise((r) => setTimeout(r, 50));
  const again = await SseReader.open(base, '/v1/watch?key=cap');
  assert.equal(again.status, 200, 'closed watches free their places');
  again.close();
});

test('the SSE parser: CRLF, CR or LF line ends, chunks split anywhere, comments, multi-line data, id-only messages', () => {
  const text = ': hello\r\nretry: 1000\r\nid: 4\r\n\r\nid: 5.0\ndata: {"a":\ndata: 1}\n\rdata: x\r\r\n';
  for (const size of [1, 2, 3, 7, text.length]) {
    const parser = new SseParser();
    const out = [];
    for (let i = 0; i < text.length; i += size) out.push(...parser.feed(text.slice(i, i + size)));
    assert.deepEqual(out, [{ id: '4', data: '' }, { id: '5.0', data: '{"a":\n1}' }, { id: undefined, data: 'x' }], `chunks of ${size}`);
  }
  assert.throws(() => new SseParser(10).feed('data: 12345678901234'), /longer than/);
});

test('the client iterator: typed events, and a dropped connection resumes after the last event given, losing and repeating nothing', async () => {
  const client = new RaftKvClient({ endpoints: [base], backoffMs: 10, maxBackoffMs: 50 });
  const stop = new AbortController();
  const seen: WatchEvent[] = [];
  const start = d.sm.revision + 1;
  const reading = (async () => {
    for await (const e of client.watch({ prefix: 'it/' }, { signal: stop.signal, prevValue: true })) if (e.type !== 'progress') seen.push(e);
  })();
  try {
    await new Promise((r) => setTimeout(r, 50));
    d.put('it/a', '1');
    txn(['it/a', '2'], ['it/b', 'x'], ['it/c', 'y']);
    await waitFor(() => seen.length >= 2).catch((err: Error) => { throw new Error(`${err.message}: ${JSON.stringify(seen)}`); });
    // Cut the connection (as a dying node would) after some of the events, maybe inside the transaction's.
    server.closeAllConnections();
    txn(['it/a', null], ['it/d', 'z']);
    await waitFor(() => seen.length >= 6);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      seen.map((e) => (e.type === 'put' ? `${e.modRevision} put ${e.key}=${new TextDecoder().decode(e.value)}` : e.type === 'delete' ? `${e.modRevision} delete ${e.key} prev=${new TextDecoder().decode(e.prevValue)}` : e.type)),
      [`${start} put it/a=1`, `${start + 1} put it/a=2`, `${start + 1} put it/b=x`, `${start + 1} put it/c=y`, `${start + 2} delete it/a prev=2`, `${start + 2} put it/d=z`],
    );
  } finally {
    stop.abort();
    await reading;
  }
  await assert.rejects(async () => {
    for await (const e of client.watch({ key: 'k'.repeat(5000) })) void e;
  }, (err: unknown) => err instanceof TooLargeError);
  await assert.rejects(async () => {
    for await (const e of client.watch({ key: '' })) void e;
  }, (err: unknown) => err instanceof RaftKvClientError && err.code === 'BAD_KEY');
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met in time (hub: ${hub.size} watches)`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a batching sink whose flush says the consumer is full gets nothing more until resume (the etcd stream that never reads)', async () => {
  let events = 0;
  let flushes = 0;
  let held = 0;
  let isFull = true;
  const handle = hub.watch(
    { filter: { prefix: 'bp/' }, start: { revision: d.sm.revision + 1, k: 0 }, prevValue: false, progressMs: 60_000 },
    {
      // As the etcd sink: events are held for one message, and only a flush that sends reports.
      event: () => (events++, held++, true),
      progress: () => true,
      keepAlive: () => true,
      compacted: () => undefined,
      end: () => undefined,
      flush: () => {
        if (held === 0) return true;
        held = 0;
        flushes++;
        return !isFull;
      },
    },
  );
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30));
  try {
    d.put('bp/1', 'a');
    await settle();
    assert.equal(events, 1, 'the first write is delivered and flushed');
    assert.equal(flushes, 1);
    for (let i = 2; i <= 50; i++) d.put(`bp/${i}`, 'b');
    await settle();
    assert.equal(events, 1, 'a full consumer is fed nothing more');
    isFull = false;
    handle.resume();
    await settle();
    assert.equal(events, 50, 'resume delivers what waited, in one go');
  } finally {
    handle.cancel();
  }
});
