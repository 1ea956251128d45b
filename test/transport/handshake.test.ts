// Who may speak on the peer port, and how long and how much a stranger gets before it has
// spoken: checkHello (membership) and the default cluster-id check answer HELLO_REJECT and
// deliver nothing; the handshake has a deadline; frames before it are small.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeHello, encodeSnapshotBegin, FrameType, frameBody, frameType, PROTOCOL_VERSION } from '../../src/transport/frame.js';
import { encodeMessage } from '../../src/transport/index.js';
import { heartbeat, mesh, rawClient, startNode, waitFor, within } from './helpers.js';
import type { Hello, HelloPeer } from '../../src/transport/index.js';
import type { RawClient } from './helpers.js';

function hello(from: string, to: string, clusterId = 'raftkv', purpose: Hello['purpose'] = 'messages'): Buffer {
  return encodeHello({ version: PROTOCOL_VERSION, clusterId, from, to, purpose });
}

function rejectReason(c: RawClient): string {
  assert.equal(c.frames.length, 1, 'exactly one frame back');
  assert.equal(frameType(c.frames[0]!), FrameType.helloReject);
  return frameBody(c.frames[0]!).shortString('reason');
}

test('checkHello refuses a non-member: HELLO_REJECT, nothing delivered, counted as notMember', async (t) => {
  const members = new Set(['n1', 'n2']);
  const asked: [Hello, HelloPeer][] = [];
  const b = await startNode(t, 'n2', {
    clusterId: 'c-7f3a',
    checkHello: (h, peer) => {
      asked.push([h, peer]);
      if (h.clusterId !== 'c-7f3a') return `cluster ${h.clusterId} is not ours`;
      return members.has(h.from) ? null : `${h.from} is not a member`;
    },
  });
  const port = b.transport.address().port;
  // A stranger follows its HELLO with a forged message at once, as an attacker would.
  const forged = encodeMessage({ type: 'TimeoutNow', from: 'n9', to: 'n2', term: 99 }) as Buffer;
  const stranger = rawClient(t, port, { send: Buffer.concat([hello('n9', 'n2', 'c-7f3a'), forged]) });
  const otherCluster = rawClient(t, port, { send: hello('n1', 'n2', 'c-0000', 'rpc') });
  await within(Promise.all([stranger.closed, otherCluster.closed]), 3000, 'the refused connections to close');
  assert.match(rejectReason(stranger), /n9 is not a member/);
  assert.match(rejectReason(otherCluster), /cluster c-0000 is not ours/);
  assert.equal(b.received.length, 0, 'the forged message was not delivered');
  const stats = b.transport.stats();
  assert.equal(stats.rejected.notMember, 2);
  assert.equal(stats.rejected.cluster, 0);
  assert.equal(stats.connectionsRejected, 2);
  assert.equal(asked[0]![1].certificate, null, 'plain TCP: no certificate');
  assert.equal(asked[0]![1].remoteAddress, '127.0.0.1');

  // A member gets through; its cluster id is read at each dial, so it can change after start.
  let ourCluster = 'c-0000';
  const a = await startNode(t, 'n1', { clusterId: () => ourCluster, reconnectMinMs: 10, reconnectMaxMs: 20 });
  mesh([a, b]);
  a.transport.send(heartbeat('n1', 'n2', 1));
  await waitFor(() => b.transport.stats().rejected.notMember === 3, 3000, 'the refusal of the wrong cluster');
  ourCluster = 'c-7f3a';
  let seq = 2;
  const deadline = Date.now() + 5000;
  while (b.received.length === 0 && Date.now() < deadline) {
    a.transport.send(heartbeat('n1', 'n2', seq++));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(b.received.length > 0, 'the member’s message arrived once its cluster id was right');

  // A checkHello that throws refuses; it never takes the listener down.
  const c = await startNode(t, 'n3', { checkHello: () => { throw new Error('boom'); } });
  const thrown = rawClient(t, c.transport.address().port, { send: hello('n1', 'n3') });
  await within(thrown.closed, 3000, 'the refusal');
  assert.match(rejectReason(thrown), /checkHello threw: Error: boom/);
});

test('the default check refuses another cluster; version and target are checked before anything', async (t) => {
  const b = await startNode(t, 'n2', { clusterId: 'prod' });
  const port = b.transport.address().port;
  const wrongCluster = rawClient(t, port, { send: hello('n1', 'n2', 'test') });
  const wrongTarget = rawClient(t, port, { send: hello('n1', 'n7', 'prod') });
  const wrongVersion = rawClient(t, port, { send: encodeHello({ version: 9, clusterId: 'prod', from: 'n1', to: 'n2', purpose: 'messages' }) });
  await within(Promise.all([wrongCluster.closed, wrongTarget.closed, wrongVersion.closed]), 3000, 'the refusals');
  assert.match(rejectReason(wrongCluster), /cluster "test" is not "prod"/);
  assert.match(rejectReason(wrongTarget), /not "n7"/);
  assert.match(rejectReason(wrongVersion), /protocol version 9/);
  const stats = b.transport.stats();
  assert.equal(stats.rejected.cluster, 1);
  assert.equal(stats.rejected.handshake, 2);
  assert.equal(b.received.length, 0);

  const good = rawClient(t, port, { send: hello('n1', 'n2', 'prod') });
  await waitFor(() => good.frames.length === 1, 3000, 'the HELLO_ACK');
  assert.equal(frameType(good.frames[0]!), FrameType.helloAck);
});

test('a connection that sends nothing, or half a HELLO, is closed at the handshake deadline', async (t) => {
  const b = await startNode(t, 'n2', { handshakeTimeoutMs: 300 });
  const port = b.transport.address().port;
  // A long sender id: trickled a byte per 20 ms, this HELLO would take over 4 s to complete.
  const whole = hello('n1'.padEnd(200, '-'), 'n2');
  const silent = rawClient(t, port);
  const half = rawClient(t, port, { send: whole.subarray(0, whole.length >> 1) });
  // Trickling a byte at a time does not buy more time: the deadline is fixed, not an idle timer.
  const trickle = rawClient(t, port, { send: whole.subarray(0, 1) });
  let i = 1;
  const timer = setInterval(() => i < whole.length - 1 && !trickle.isClosed() && trickle.socket.write(whole.subarray(i, ++i)), 20);
  t.after(() => clearInterval(timer));
  const times = await within(Promise.all([silent.closed, half.closed, trickle.closed]), 3000, 'the deadline');
  for (const ms of times) assert.ok(ms >= 250 && ms < 1500, `closed after ${ms.toFixed(0)} ms`);
  assert.equal(b.transport.stats().rejected.timeout, 3);
  await waitFor(() => b.transport.stats().inboundConnections === 0, 1000, 'the server side to let go of them');

  // An accepted handshake is not bound by the deadline.
  const a = await startNode(t, 'n1');
  mesh([a, b]);
  a.transport.send(heartbeat('n1', 'n2', 1));
  await waitFor(() => b.received.length === 1, 3000, 'a message');
  await new Promise((resolve) => setTimeout(resolve, 500));
  a.transport.send(heartbeat('n1', 'n2', 2));
  await waitFor(() => b.received.length === 2, 3000, 'a message after the deadline');
  assert.equal(a.transport.stats().peers.get('n2')!.reconnects, 0, 'the same stream');
});

test('a frame over maxHelloBytes before the handshake is refused at once, before its bytes arrive', async (t) => {
  const b = await startNode(t, 'n2', { maxHelloBytes: 1024 });
  const port = b.transport.address().port;
  const header = Buffer.alloc(5);
  header.writeUInt32BE(16 * 1024 * 1024, 0); // exactly maxFrameBytes: legal after the handshake, not before
  header[4] = FrameType.hello;
  const memoryBefore = process.memoryUsage().arrayBuffers;
  const big = rawClient(t, port, { send: Buffer.concat([header, Buffer.alloc(64 * 1024)]) });
  const ms = await within(big.closed, 3000, 'the refusal');
  assert.ok(ms < 1000, `closed after ${ms.toFixed(0)} ms`);
  assert.ok(process.memoryUsage().arrayBuffers - memoryBefore < 8 * 1024 * 1024, 'nothing near 16 MiB was set aside');
  assert.equal(b.transport.stats().rejected.malformed, 1);

  // After the handshake, frames up to maxFrameBytes are fine: a snapshot header is larger
  // than maxHelloBytes here.
  const c = await startNode(t, 'n3', { maxHelloBytes: 200 });
  const voters = Array.from({ length: 40 }, (_, i) => `voter-${i}`);
  const header2 = encodeMessage({
    type: 'InstallSnapshot', from: 'n1', to: 'n3', term: 1, seq: 1,
    snapshot: { meta: { index: 1, term: 1, config: { voters, votersOutgoing: [], learners: [] } }, data: new Uint8Array(0) },
  }) as Buffer;
  assert.ok(header2.length > 200);
  const ok = rawClient(t, c.transport.address().port, { send: Buffer.concat([hello('n1', 'n3', 'raftkv', 'snapshot'), encodeSnapshotBegin(0, header2)]) });
  await waitFor(() => c.transport.stats().snapshotBytesReserved === 0 && ok.frames.length === 1 && !ok.isClosed(), 3000, 'the HELLO_ACK');
  assert.equal(c.transport.stats().connectionsRejected, 0);
});
