// The watch API under abuse (API.md "Coordination", docs/api.md "Watch" limits): a client that
// opens a watch and never reads while tens of MiB of changes are written must cost the node a
// position, not a queue, and must not slow anyone else; compaction cuts it with `compacted`.
// Past --max-watchers a watch is refused with a JSON error; malformed requests are 400 before
// anything streams; a stopping node ends its watches at once instead of waiting on them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { TestCluster } from '../cluster/harness.js';
import { assertApiError, http } from '../cluster/http.js';
import { SseReader } from '../server/sse-reader.js';
import { metric } from './unharmed.js';
import { pidOf, rssBytes } from './node-process.js';

const MAX_WATCHERS = 12;
let cluster: TestCluster;
const sockets: net.Socket[] = [];
const readers: SseReader[] = [];
before(async () => {
  cluster = await TestCluster.start({ size: 3, name: 'adv-watch', extraArgs: ['--max-watchers', String(MAX_WATCHERS)] });
});
after(async () => {
  for (const s of sockets) s.destroy();
  for (const r of readers) r.close();
  await cluster?.destroy();
});

test('a watcher that never reads while 30 MiB are written: the node queues one write for it, serves everyone else, and cuts it with compacted', { timeout: 120_000 }, async () => {
  const leader = await cluster.waitForLeader();
  const [slowNode, otherNode] = cluster.nodes.filter((n) => n !== leader) as [typeof leader, typeof leader];
  const [host, port] = slowNode.clientAddr.split(':') as [string, string];
  const socket = net.connect({ host, port: Number(port) });
  sockets.push(socket);
  socket.on('error', () => undefined);
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (s: string) => (received += s));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`GET /v1/watch?prefix=flood/ HTTP/1.1\r\nhost: ${slowNode.clientAddr}\r\n\r\n`);
  await new Promise((r) => setTimeout(r, 200));
  assert.match(received, /^HTTP\/1\.1 200/);
  socket.pause(); // from now on, it reads nothing
  // A reading watcher elsewhere, to show what the slow one misses.
  const fast = await SseReader.open(otherNode.url, '/v1/watch?prefix=flood/');
  readers.push(fast);
  const sentBefore = await metric(slowNode, 'raftkv_watch_events_sent_total');
  const rssBefore = rssBytes(pidOf(slowNode));
  const value = 'w'.repeat(512 * 1024);
  const writes = 60;
  let slowest = 0;
  for (let i = 0; i < writes; i++) {
    const reply = await http(leader.url, `/v1/kv/flood%2F${i % 4}`, { method: 'PUT', body: value, timeoutMs: 10_000 });
    assert.equal(reply.status, 200, reply.text.slice(0, 200));
    if (i % 10 === 9) {
      // The node with the stalled watcher answers everyone else promptly.
      const started = performance.now();
      const got = await http(slowNode.url, '/v1/kv/flood%2F0?consistency=stale', { timeoutMs: 5000 });
      assert.equal(got.status, 200);
      slowest = Math.max(slowest, performance.now() - started);
    }
  }
  const events = await fast.take(writes, 20_000);
  assert.equal(events.length, writes);
  const sent = (await metric(slowNode, 'raftkv_watch_events_sent_total')) - sentBefore;
  const rssAfter = rssBytes(pidOf(slowNode));
  const otherRss = rssBytes(pidOf(otherNode));
  // The node wrote only what the socket took (the kernel's buffers, some MiB) plus one event.
  assert.ok(sent < writes - 10, `events written to the stalled watcher: ${sent} of ${writes}`);
  assert.ok(slowest < 1000, `a read on that node took ${slowest.toFixed(0)} ms`);
  // It holds the same history as the other follower, and no copy of it for the watcher.
  assert.ok(rssAfter < otherRss + (24 << 20), `RSS ${rssAfter >> 20} MiB with the stalled watcher, ${otherRss >> 20} MiB without (before the writes: ${rssBefore >> 20} MiB)`);
  process.stdout.write(`# stalled watcher: ${sent} of ${writes} events (512 KiB each) written to it; RSS ${rssBefore >> 20} → ${rssAfter >> 20} MiB, other follower ${otherRss >> 20} MiB; slowest read ${slowest.toFixed(1)} ms\n`);
  const cutBefore = await metric(slowNode, 'raftkv_watch_compacted_total');
  const revision = events.at(-1)!.json['modRevision'] as number;
  const compact = await http(leader.url, '/v1/compact', { method: 'POST', body: JSON.stringify({ revision }) });
  assert.equal(compact.status, 200, compact.text);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise((r) => setTimeout(r, 300));
  socket.resume();
  await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the stalled watch was not ended')), 15_000))]);
  const dataLines = received.split('\n').filter((l) => l.startsWith('data: '));
  assert.equal(dataLines.at(-1), `data: {"type":"compacted","compactRevision":${revision}}`);
  assert.ok(dataLines.length - 1 <= sent, 'nothing beyond what was written');
  assert.equal((await metric(slowNode, 'raftkv_watch_compacted_total')) - cutBefore, 1);
  fast.close();
});

test('past --max-watchers a watch is refused with 503 OVERLOADED and a JSON error; closing one frees a place', async () => {
  const node = cluster.nodes[0]!;
  await new Promise((r) => setTimeout(r, 200));
  const open: SseReader[] = [];
  for (;;) {
    const r = await SseReader.open(node.url, '/v1/watch?key=cap');
    readers.push(r);
    if (r.status !== 200) {
      assert.equal(open.length <= MAX_WATCHERS, true);
      assert.equal(r.status, 503);
      const body = JSON.parse(r.body) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'OVERLOADED');
      assert.match(body.error.message, /--max-watchers/);
      break;
    }
    open.push(r);
    assert.ok(open.length <= MAX_WATCHERS, `more than ${MAX_WATCHERS} watches accepted`);
  }
  assert.ok((await metric(node, 'raftkv_watch_refused_total')) >= 1);
  assert.equal(await metric(node, 'raftkv_watchers'), MAX_WATCHERS);
  open.pop()!.close();
  await new Promise((r) => setTimeout(r, 200));
  const again = await SseReader.open(node.url, '/v1/watch?key=cap');
  readers.push(again);
  assert.equal(again.status, 200);
  for (const r of [...open, again]) r.close();
});

test('malformed watch requests are 400 with a JSON error before anything streams', async () => {
  const url = cluster.nodes[1]!.url;
  const bad: [string, Record<string, string>?][] = [
    ['/v1/watch'],
    ['/v1/watch?key=a&prefix=b'],
    ['/v1/watch?key='],
    ['/v1/watch?key=a&key=b'],
    ['/v1/watch?key=a&fromRevision=abc'],
    ['/v1/watch?key=a&fromRevision=0'],
    ['/v1/watch?key=a&fromRevision=99999999999999999999'],
    ['/v1/watch?key=a&since=3'],
    ['/v1/watch?key=a&progressMs=1'],
    ['/v1/watch?key=a&prevValue=maybe'],
    ['/v1/watch?key=a', { 'last-event-id': 'abc' }],
    ['/v1/watch?key=a', { 'last-event-id': '5.' }],
  ];
  for (const [path, headers] of bad) {
    const reply = await http(url, path, { headers: headers ?? {} });
    assert.equal(reply.status, 400, `${path} ${JSON.stringify(headers ?? {})}: ${reply.status} ${reply.text}`);
    assert.equal(reply.headers['content-type'], 'application/json');
    assert.ok(typeof reply.json<{ error: { code: string } }>().error.code === 'string');
  }
  assertApiError(await http(url, '/v1/watch?key=a', { method: 'POST', body: '{}' }), 405, 'METHOD_NOT_ALLOWED', 'POST /v1/watch');
  assertApiError(await http(url, `/v1/watch?prefix=${'k'.repeat(5000)}`), 413, 'KEY_TOO_LARGE', 'a prefix longer than any key');
});

test('a stopping node ends its watches at once: SIGTERM does not wait on them', { timeout: 30_000 }, async () => {
  const node = cluster.nodes[2]!;
  const watches = await Promise.all([SseReader.open(node.url, '/v1/watch?prefix='), SseReader.open(node.url, '/v1/watch?key=x')]);
  readers.push(...watches);
  const started = performance.now();
  await node.stop('SIGTERM');
  const ms = performance.now() - started;
  for (const w of watches) await w.ended(1000);
  assert.ok(ms < 2500, `the node took ${ms.toFixed(0)} ms to stop with two open watches (the cut of stuck connections comes at 3 s)`);
  cluster.startNode(node);
});
