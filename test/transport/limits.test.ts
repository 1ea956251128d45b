// Bounded resources on the peer port: a cap on connections, an idle timeout the sender copes
// with, a cap on rpc requests in flight, and a rate limit on the log lines strangers can cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogLimiter } from '../../src/transport/log-limiter.js';
import {
  PROTOCOL_VERSION,
  decodeRpcRequest,
  encodeGoodbye,
  encodeHello,
  encodeRpcRequest,
  encodeRpcResponse,
} from '../../src/transport/frame.js';
import { decodeMessage, RpcError } from '../../src/transport/index.js';
import { heartbeat, mesh, rawClient, scriptedPeer, startNode, waitFor, within } from './helpers.js';
import type { NodeId } from '../../src/raft/types.js';
import type { TransportLogger } from '../../src/transport/index.js';

test('beyond maxInboundConnections new connections are closed at once; members get through after the flood', async (t) => {
  const max = 8;
  const b = await startNode(t, 'n2', { maxInboundConnections: max, handshakeTimeoutMs: 5000 });
  const port = b.transport.address().port;
  const flood = [];
  for (let i = 0; i < max; i++) flood.push(rawClient(t, port));
  await waitFor(() => b.transport.stats().inboundConnections === max, 3000, 'the first connections');
  const extra = Array.from({ length: 5 }, () => rawClient(t, port));
  const times = await within(Promise.all(extra.map((c) => c.closed)), 2000, 'the extra connections to be closed');
  for (const ms of times) assert.ok(ms < 1000, `an extra connection lived ${ms.toFixed(0)} ms`);
  assert.ok(flood.every((c) => !c.isClosed()), 'the ones within the cap are untouched');
  assert.equal(b.transport.stats().rejected.limit, 5);
  assert.equal(b.transport.stats().inboundConnections, max);

  // During the flood a member cannot connect either; once it ends, it can.
  const a = await startNode(t, 'n1', { reconnectMinMs: 10, reconnectMaxMs: 50 });
  mesh([a, b]);
  for (const c of flood) c.socket.destroy();
  let seq = 1;
  const deadline = Date.now() + 5000;
  while (b.received.length === 0 && Date.now() < deadline) {
    a.transport.send(heartbeat('n1', 'n2', seq++));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(b.received.length > 0, 'a member’s message after the flood');
});

test('an accepted stream silent both ways for idleTimeoutMs is closed; the sender redials on its next message without calling the peer unreachable', async (t) => {
  const unreachable: NodeId[] = [];
  const a = await startNode(t, 'n1', { onUnreachable: (p) => unreachable.push(p) });
  const b = await startNode(t, 'n2', { idleTimeoutMs: 300 });
  mesh([a, b]);
  a.transport.send(heartbeat('n1', 'n2', 1));
  await waitFor(() => b.received.length === 1, 3000, 'the first message');
  // Traffic keeps it open: 6 messages 100 ms apart outlast the idle timeout twice over.
  for (let seq = 2; seq <= 7; seq++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    a.transport.send(heartbeat('n1', 'n2', seq));
  }
  await waitFor(() => b.received.length === 7, 3000, 'the steady messages');
  assert.equal(b.transport.stats().rejected.idle, 0, 'not idle while messages flow');
  // Then silence.
  await waitFor(() => b.transport.stats().rejected.idle === 1, 3000, 'the idle close');
  await waitFor(() => !a.transport.stats().peers.get('n2')!.connected, 3000, 'the sender to see it');
  await waitFor(() => b.transport.stats().inboundConnections === 0, 2000, 'the receiver to let go');
  assert.equal(b.transport.stats().connectionsRejected, 0, 'an idle close is not a refusal');
  a.transport.send(heartbeat('n1', 'n2', 8));
  await waitFor(() => b.received.length === 8, 3000, 'the message after the idle close');
  assert.deepStrictEqual(unreachable, [], 'an idle close is not unreachability');
  assert.equal(a.transport.stats().peers.get('n2')!.reconnects, 1);
  assert.equal(a.transport.stats().peers.get('n2')!.messagesDropped, 0);

  // The rpc stream too: a quiet one is closed, and the next request redials.
  const c = await startNode(t, 'n3', { idleTimeoutMs: 300, onRequest: async () => Buffer.from('pong') });
  mesh([a, c]);
  await a.transport.request('n3', Buffer.from('ping'), 2000);
  await waitFor(() => c.transport.stats().rejected.idle === 1, 3000, 'the idle rpc stream to close');
  assert.equal(Buffer.from(await a.transport.request('n3', Buffer.from('ping'), 2000)).toString(), 'pong');
});

test('a request that crosses GOODBYE on the wire is sent again on a new connection, not failed', async (t) => {
  const seen: number[] = [];
  const port = await scriptedPeer(t, (socket, connection, frame) => {
    seen.push(connection);
    // The first connection closes as idle just as the request arrives; it was not read.
    if (connection === 0) socket.end(encodeGoodbye());
    else for (const part of encodeRpcResponse(decodeRpcRequest(frame).id, 'ok', Buffer.from('answer'))) socket.write(part);
  });
  const a = await startNode(t, 'n1');
  a.transport.addPeer('n2', { host: '127.0.0.1', port });
  assert.equal(Buffer.from(await a.transport.request('n2', Buffer.from('q'), 3000)).toString(), 'answer');
  assert.deepStrictEqual(seen, [0, 1]);
});

test('GOODBYE on a message stream: no unreachable report, and queued messages go on a new connection', async (t) => {
  const seqs: [number, number][] = [];
  const unreachable: string[] = [];
  const port = await scriptedPeer(t, (socket, connection, frame) => {
    const m = decodeMessage(frame);
    seqs.push([connection, m.type === 'AppendEntries' ? m.seq : -1]);
    if (connection === 0) socket.end(encodeGoodbye());
  });
  const a = await startNode(t, 'n1', { onUnreachable: (p) => unreachable.push(p) });
  a.transport.addPeer('n2', { host: '127.0.0.1', port });
  a.transport.send(heartbeat('n1', 'n2', 1));
  await waitFor(() => seqs.length === 1, 3000, 'the first message');
  await waitFor(() => !a.transport.stats().peers.get('n2')!.connected, 3000, 'the GOODBYE');
  a.transport.send(heartbeat('n1', 'n2', 2));
  await waitFor(() => seqs.length === 2, 3000, 'the message after GOODBYE');
  assert.deepStrictEqual(seqs, [[0, 1], [1, 2]]);
  assert.deepStrictEqual(unreachable, []);
});

test('an rpc request being answered longer than idleTimeoutMs keeps its stream', async (t) => {
  const a = await startNode(t, 'n1');
  const b = await startNode(t, 'n2', { idleTimeoutMs: 200, onRequest: () => new Promise((resolve) => setTimeout(() => resolve(Buffer.from('late')), 600)) });
  mesh([a, b]);
  assert.equal(Buffer.from(await a.transport.request('n2', Buffer.from('x'), 3000)).toString(), 'late');
  assert.equal(b.transport.stats().rejected.idle, 0);
});

test('beyond maxRpcInFlight on one connection, requests are refused at once as never delivered', async (t) => {
  const release: (() => void)[] = [];
  let started = 0;
  const a = await startNode(t, 'n1');
  const b = await startNode(t, 'n2', {
    maxRpcInFlight: 4,
    onRequest: (_from, payload) => {
      started++;
      return new Promise((resolve) => release.push(() => resolve(payload)));
    },
  });
  mesh([a, b]);
  const requests = Array.from({ length: 7 }, (_, i) => a.transport.request('n2', Buffer.from(`r${i}`), 5000).then(
    (answer) => Buffer.from(answer).toString(),
    (err: unknown) => err,
  ));
  await waitFor(() => b.transport.stats().rejected.rpcInFlight === 3, 3000, 'three refusals');
  assert.equal(started, 4, 'the handler never saw the extra ones');
  for (const r of release.splice(0)) r();
  const results = await within(Promise.all(requests), 3000, 'the answers');
  assert.deepStrictEqual(results.slice(0, 4), ['r0', 'r1', 'r2', 'r3']);
  for (const err of results.slice(4)) {
    assert.ok(err instanceof RpcError && !err.maybeDelivered && /too many requests in flight/.test(err.message), String(err));
  }
  // The connection survived and has room again.
  const again = a.transport.request('n2', Buffer.from('after'), 3000);
  await waitFor(() => release.length === 1, 3000, 'the handler');
  release[0]!();
  assert.equal(Buffer.from(await again).toString(), 'after');
  assert.equal(b.transport.stats().connectionsRejected, 0);
});

test('a client that sends rpc requests without reading the answers gets no more than maxRpcInFlight answers buffered', async (t) => {
  const answer = Buffer.alloc(256 * 1024, 7);
  let answered = 0;
  const b = await startNode(t, 'n2', { maxRpcInFlight: 8, onRequest: async () => { answered++; return answer; } });
  const hello = encodeHello({ version: PROTOCOL_VERSION, clusterId: 'raftkv', from: 'n1', to: 'n2', purpose: 'rpc' });
  const greedy = rawClient(t, b.transport.address().port, { send: hello });
  greedy.socket.pause(); // never reads: 400 answers would be 100 MiB in our socket buffers
  // 40 batches of 10, 10 ms apart: each batch arrives after the previous answers were made, so
  // only answers that count as in flight until flushed, or not reading a client whose answers
  // pile up, keep the handler from running again and again.
  let id = 1;
  for (let batch = 0; batch < 40; batch++) {
    const frames = Array.from({ length: 10 }, () => Buffer.concat(encodeRpcRequest(id++, Buffer.from('q'))));
    greedy.socket.write(Buffer.concat(frames));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  // What the kernel's loopback buffers take, plus at most 8 answers waiting in ours.
  t.diagnostic(`the handler ran ${answered} times for a client that did not read`);
  assert.ok(answered < 100, `${answered} answers were made for a client that does not read`);
  greedy.socket.resume();
  // Every request got an answer or a refusal, in one frame each.
  await waitFor(() => greedy.frames.length === 401, 10_000, 'an answer to every request');
  assert.equal(answered + b.transport.stats().rejected.rpcInFlight, 400);
});

test('log lines strangers cause are rate-limited per kind, and what was dropped is counted and summarized', async (t) => {
  const lines: string[] = [];
  const logger: TransportLogger = {
    debug() {},
    info() {},
    warn: (msg, f) => lines.push(`warn ${msg} ${JSON.stringify(f)}`),
    error: (msg) => lines.push(`error ${msg}`),
  };
  const b = await startNode(t, 'n2', { logger, maxLogLinesPerSecond: 3 });
  const port = b.transport.address().port;
  const garbage = Array.from({ length: 20 }, () => rawClient(t, port, { send: Buffer.from('GET / HTTP/1.1\r\n\r\n') }));
  await within(Promise.all(garbage.map((c) => c.closed)), 3000, 'the refusals');
  assert.equal(b.transport.stats().rejected.malformed, 20);
  assert.equal(lines.filter((l) => l.startsWith('error')).length, 3);
  assert.equal(b.transport.stats().logLinesSuppressed, 17);
  await waitFor(() => lines.some((l) => l.includes('suppressed')), 2000, 'the summary line');
  assert.match(lines.find((l) => l.includes('suppressed'))!, /"kind":"malformed","suppressed":17/);

  // The window itself, on a fake clock.
  let now = 0;
  const seen: string[] = [];
  const limiter = new LogLimiter({ debug() {}, info() {}, warn: (m, f) => seen.push(`${m} ${JSON.stringify(f)}`), error: (m) => seen.push(m) }, 2, () => now);
  for (let i = 0; i < 5; i++) limiter.log('a', 'error', `a${i}`);
  limiter.log('b', 'error', 'b0');
  now = 1000;
  limiter.log('a', 'error', 'a5');
  limiter.close();
  assert.deepStrictEqual(seen, ['a0', 'a1', 'b0', 'log lines suppressed by the rate limit {"kind":"a","suppressed":3,"perSecond":2}', 'a5']);
});
