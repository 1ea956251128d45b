// raftkv-mux/1 (docs/mux.md) on real nodes: a request answers exactly as the same HTTP request
// does, many in flight on one connection; and what a hostile or careless client sends on it
// (bad upgrades, oversized or malformed frames, a reused id, a streamed route, a half frame, a
// flood whose answers are never read) is refused or cut without harm to the node. After the
// attacks, assertUnharmed (unharmed.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { TestCluster, type TestNode } from '../cluster/harness.js';
import type { NodeStatus } from '../cluster/http.js';
import { decodeMuxAnswer, encodeMuxRequest, MuxFrameReader, type MuxAnswer } from '../../src/client/mux-frames.js';
import { RaftKvClient } from '../../src/client/index.js';
import { leadershipLog, pidOf, rssBytes } from './node-process.js';
import { Ledger, assertUnharmed, metric, metricsOf } from './unharmed.js';

let cluster: TestCluster | undefined;
let ledger: Ledger;
const sockets = new Set<net.Socket>();
before(async () => {
  // A body must arrive within 2 s (--body-timeout-ms), so a half frame is cut quickly.
  cluster = await TestCluster.start({ size: 3, name: 'adv-mux', heartbeatMs: 100, electionMs: 1000, extraArgs: ['--body-timeout-ms', '2000'] });
  ledger = await Ledger.open(cluster);
});
after(async () => {
  for (const s of sockets) s.destroy();
  await cluster?.destroy();
});

/** A raw raftkv-mux connection: the upgrade, then frames; answers by id, and when the node hung up. */
class RawMux {
  readonly socket: net.Socket;
  head = '';
  readonly answers = new Map<number, MuxAnswer>();
  isUpgraded = false;
  closed: Promise<void>;
  isClosed = false;
  private waiters: (() => void)[] = [];
  private readonly reader = new MuxFrameReader(80 << 20, (frame) => {
    const a = decodeMuxAnswer(frame);
    this.answers.set(a.id, a);
    for (const w of this.waiters.splice(0)) w();
  });

  constructor(node: TestNode, upgrade = 'GET /v1/mux HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: raftkv-mux/1\r\n\r\n') {
    const [host, port] = node.clientAddr.split(':') as [string, string];
    this.socket = net.connect({ host, port: Number(port) });
    sockets.add(this.socket);
    this.socket.on('error', () => undefined);
    this.socket.on('connect', () => this.socket.write(upgrade));
    this.socket.on('data', (chunk: Buffer) => {
      if (this.isUpgraded) return this.reader.push(chunk);
      this.head += chunk.toString('latin1');
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0 || !this.head.startsWith('HTTP/1.1 101')) return;
      this.isUpgraded = true;
      const rest = Buffer.from(this.head.slice(end + 4), 'latin1');
      this.head = this.head.slice(0, end);
      if (rest.length > 0) this.reader.push(rest);
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.isClosed = true;
        resolve();
        for (const w of this.waiters.splice(0)) w();
      }),
    );
  }

  send(id: number, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): void {
    this.socket.write(encodeMuxRequest(id, method, path, headers, body));
  }

  async until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  json(id: number): unknown {
    return JSON.parse(this.answers.get(id)!.body.toString('utf8'));
  }
}

async function httpGet(node: TestNode, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://${node.clientAddr}${path}`);
  return { status: res.status, body: await res.json() };
}

test('raftkv-mux: a request answers as the same HTTP request does; many in flight on one connection', { timeout: 60_000 }, async () => {
  const leader = await cluster!.waitForLeader();
  const follower = cluster!.nodes.find((n) => n.id !== leader.id)!;
  const c = new RawMux(follower);
  await c.until('the upgrade', () => c.isUpgraded);
  assert.match(c.head, /\r\nupgrade: raftkv-mux\/1/i);
  // 200 writes at once through a follower (forwarded as proposals), then reads of them.
  for (let i = 1; i <= 200; i++) c.send(i, 'PUT', `/v1/kv/mux%2F${i}`, { 'idempotency-key': `adv-mux/${i}` }, Buffer.from(`v${i}`));
  await c.until('200 answers', () => c.answers.size === 200);
  for (let i = 1; i <= 200; i++) {
    const a = c.answers.get(i)!;
    assert.equal(a.status, 200, `write ${i}: ${a.body.toString()}`);
    assert.equal(a.headers['raftkv-node'], follower.id);
    assert.match(a.headers['raftkv-revision'] ?? '', /^[0-9]+$/);
    assert.equal(a.headers['content-type'], 'application/json');
  }
  c.send(1000, 'GET', '/v1/kv/mux%2F7?consistency=linearizable');
  c.send(1001, 'GET', '/v1/kv/nothing-here');
  c.send(1002, 'GET', '/v1/kv/mux%2F7?bogus=1');
  c.send(1003, 'PUT', '/v1/kv/mux%2Fretried', { 'idempotency-key': 'adv-mux/1' }, Buffer.from('other'));
  await c.until('four answers', () => [1000, 1001, 1002, 1003].every((id) => c.answers.has(id)));
  for (const [id, path] of [
    [1000, '/v1/kv/mux%2F7?consistency=linearizable'],
    [1001, '/v1/kv/nothing-here'],
    [1002, '/v1/kv/mux%2F7?bogus=1'],
  ] as const) {
    const viaHttp = await httpGet(follower, path);
    const a = c.answers.get(id)!;
    const body = c.json(id) as Record<string, unknown>;
    // Revisions move on between the two; the rest is identical.
    assert.equal(a.status, viaHttp.status, path);
    assert.deepEqual({ ...body, revision: 0 }, { ...(viaHttp.body as Record<string, unknown>), revision: 0 }, path);
  }
  assert.equal((c.json(1000) as { value: string }).value, 'v7');
  // The same idempotency key as write 1: applied once, answered with write 1's result.
  assert.deepEqual(c.json(1003), c.json(1));
  c.socket.destroy();
});

test('raftkv-mux: bad upgrades get the API\'s JSON error; a streamed route is refused on the connection, which goes on', { timeout: 30_000 }, async () => {
  const leader = await cluster!.waitForLeader();
  const wrongPath = new RawMux(leader, 'GET /v1/other HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: raftkv-mux/1\r\n\r\n');
  await wrongPath.closed;
  assert.match(wrongPath.head, /^HTTP\/1\.1 404 /);
  assert.match(wrongPath.head, /"code":"NOT_FOUND"/);
  const wrongProtocol = new RawMux(leader, 'GET /v1/mux HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n');
  await wrongProtocol.closed;
  assert.match(wrongProtocol.head, /^HTTP\/1\.1 400 /);
  assert.match(wrongProtocol.head, /"code":"BAD_REQUEST"/);

  const c = new RawMux(leader);
  await c.until('the upgrade', () => c.isUpgraded);
  c.send(1, 'GET', '/v1/watch?prefix=a');
  c.send(2, 'GET', '/v1/snapshot');
  c.send(3, 'GET', '/v1/elections/e/observe');
  c.send(4, 'GET', '/livez');
  await c.until('four answers', () => c.answers.size === 4);
  for (const id of [1, 2, 3]) {
    assert.equal(c.answers.get(id)!.status, 400, `request ${id}`);
    assert.match((c.json(id) as { error: { message: string } }).error.message, /over HTTP/);
  }
  assert.equal(c.answers.get(4)!.status, 200);
  assert.equal(c.isClosed, false);
  c.socket.destroy();
});

test('raftkv-mux: an oversized frame, a malformed one, a reused id in flight and a half frame each close the connection; the node stays', { timeout: 60_000 }, async () => {
  const leader = await cluster!.waitForLeader();
  const refusedBefore = await metric(leader, 'raftkv_http_refused_total{reason="mux-protocol"}');

  const oversized = new RawMux(leader);
  await oversized.until('the upgrade', () => oversized.isUpgraded);
  const huge = Buffer.alloc(8);
  huge.writeUInt32BE(0x7fffffff, 0);
  oversized.socket.write(huge);
  await oversized.closed;

  const malformed = new RawMux(leader);
  await malformed.until('the upgrade', () => malformed.isUpgraded);
  const frame = encodeMuxRequest(1, 'GET', '/livez', {}, undefined);
  frame[8] = 77; // no such method
  malformed.socket.write(frame);
  await malformed.closed;

  const badHeader = new RawMux(leader);
  await badHeader.until('the upgrade', () => badHeader.isUpgraded);
  const withHeader = encodeMuxRequest(1, 'GET', '/livez', { 'x-a': 'b' }, undefined);
  withHeader[withHeader.length - 1] = 0x0a; // a line feed in a header value
  badHeader.socket.write(withHeader);
  await badHeader.closed;

  const reused = new RawMux(leader);
  await reused.until('the upgrade', () => reused.isUpgraded);
  // Both in one write: the first is still in flight (a write waits for its commit) when the second comes.
  reused.socket.write(Buffer.concat([encodeMuxRequest(9, 'PUT', '/v1/kv/reused', {}, Buffer.from('a')), encodeMuxRequest(9, 'PUT', '/v1/kv/reused', {}, Buffer.from('b'))]));
  await reused.closed;

  const half = new RawMux(leader);
  await half.until('the upgrade', () => half.isUpgraded);
  const started = Date.now();
  half.socket.write(encodeMuxRequest(1, 'PUT', '/v1/kv/half', {}, Buffer.alloc(1000)).subarray(0, 500));
  await half.closed;
  const waitedMs = Date.now() - started;
  assert.ok(waitedMs >= 1500 && waitedMs < 8000, `a half frame was cut after ${waitedMs} ms (--body-timeout-ms 2000)`);

  const refused = (await metric(leader, 'raftkv_http_refused_total{reason="mux-protocol"}')) - refusedBefore;
  assert.ok(refused >= 4, `the protocol refusals are counted (${refused})`);
  assert.ok((await metric(leader, 'raftkv_http_refused_total{reason="mux-slow-frame"}')) >= 1);
  await assertUnharmed(ledger, 'malformed raftkv-mux frames');
});

test('raftkv-mux: a half frame waiting while the node itself stopped reading (answers unread) is not cut as slow', { timeout: 60_000 }, async () => {
  const leader = await cluster!.waitForLeader();
  const c = new RawMux(leader);
  await c.until('the upgrade', () => c.isUpgraded);
  c.socket.pause();
  // Far more answers (~13 MB) than the kernel's buffers take: more than 1 MiB waits in the node,
  // which stops reading this connection.
  const burst = Buffer.concat(Array.from({ length: 30_000 }, (_, i) => encodeMuxRequest(i, 'GET', '/v1/status', {}, undefined)));
  c.socket.write(burst);
  const last = encodeMuxRequest(99_999, 'GET', '/livez', {}, undefined);
  c.socket.write(last.subarray(0, 6));
  // Past --body-timeout-ms (2 s) with the half frame pending.
  await new Promise((r) => setTimeout(r, 3500));
  assert.equal(c.isClosed, false, 'the node waited, as it was the one not reading');
  c.socket.resume();
  c.socket.write(last.subarray(6));
  await c.until('every answer, the completed frame too', () => c.answers.size === 30_001, 20_000).catch(async (err: Error) => {
    const m = await metricsOf(leader, ['raftkv_http_refused_total{reason="mux-slow-frame"}', 'raftkv_http_refused_total{reason="mux-unread"}', 'raftkv_http_refused_total{reason="mux-protocol"}']);
    throw new Error(`${err.message}: ${c.answers.size} answers (${c.answers.get(0)?.body.length} bytes each), closed ${c.isClosed} ${JSON.stringify(m)}`);
  });
  assert.equal(c.answers.get(99_999)!.status, 200);
  c.socket.destroy();
});

test('raftkv-mux: a connection that floods requests and never reads the answers costs the leader little memory and not its leadership', { timeout: 60_000 }, async () => {
  const leader = await cluster!.waitForLeader();
  const term = ((await leader.status()) as NodeStatus).term;
  const pid = pidOf(leader);
  const rssBefore = rssBytes(pid);
  const floods: RawMux[] = [];
  for (let i = 0; i < 8; i++) {
    const c = new RawMux(leader);
    await c.until('the upgrade', () => c.isUpgraded);
    c.socket.pause();
    floods.push(c);
  }
  // Each status answer is about a KiB: a client that reads none makes the node hold them.
  const burst = Buffer.concat(Array.from({ length: 500 }, (_, i) => encodeMuxRequest(i, 'GET', '/v1/status', {}, undefined)));
  let id = 0;
  const until = Date.now() + 6000;
  let peak = 0;
  while (Date.now() < until && floods.some((c) => !c.isClosed)) {
    for (const c of floods) {
      if (c.isClosed) continue;
      // Fresh ids each round, so none is reused while in flight.
      for (let i = 0; i < 500; i++) burst.writeUInt32BE(id++ >>> 0, i * (burst.length / 500) + 4);
      c.socket.write(burst);
    }
    await new Promise((r) => setTimeout(r, 100));
    peak = Math.max(peak, rssBytes(pid) - rssBefore);
  }
  const sent = floods.reduce((n, c) => n + c.socket.bytesWritten, 0);
  for (const c of floods) c.socket.destroy();
  // The node stops reading a connection while 1 MiB of its answers waits: the rest of the flood stays with the flooder.
  assert.ok(peak < 96 << 20, `the leader grew by ${(peak / 2 ** 20).toFixed(0)} MiB for ${floods.length} connections that sent ${(sent / 2 ** 20).toFixed(1)} MiB of requests and read nothing`);
  const after = await cluster!.waitForLeader(10_000);
  assert.deepEqual({ leader: after.id, term: ((await after.status()) as NodeStatus).term }, { leader: leader.id, term }, `the leader kept its place; the logs say:\n${leadershipLog(cluster!.nodes)}`);
  await assertUnharmed(ledger, 'raftkv-mux answers never read');
});

test('raftkv-mux: the client shares one connection per node among its instances, and a node stops promptly with it open', { timeout: 60_000 }, async () => {
  const leader = await cluster!.waitForLeader();
  const clients = Array.from({ length: 32 }, () => new RaftKvClient({ endpoints: [leader.url] }));
  await Promise.all(clients.map((c, i) => c.put(`shared/${i}`, `v${i}`)));
  const values = await Promise.all(clients.map((c, i) => c.get(`shared/${i}`)));
  assert.deepEqual(values.map((r) => Buffer.from(r!.value).toString()), clients.map((_, i) => `v${i}`));
  // node:http would have opened one connection per client: 32. One upgrade was counted as an HTTP request.
  const upgrades = await metric(leader, 'raftkv_mux_connections');
  assert.equal(upgrades, 1, 'one raftkv-mux connection for 32 clients');
  for (const c of clients) c.close();
  await assertUnharmed(ledger, 'shared raftkv-mux connections');
  // A node stopping with an open raftkv-mux connection (idle, and one with a request in flight) does not wait for it.
  const follower = cluster!.nodes.find((n) => n.id !== leader.id)!;
  const idle = new RawMux(follower);
  await idle.until('the upgrade', () => idle.isUpgraded);
  const started = Date.now();
  const exit = await follower.stop('SIGTERM', 10_000);
  assert.ok(Date.now() - started < 6000, `stopped in ${Date.now() - started} ms (${JSON.stringify(exit)})`);
  await idle.closed;
});
