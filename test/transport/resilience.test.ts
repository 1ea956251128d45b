// A peer that is down (bounded queue, drops, unreachable report, reconnect when it comes up)
// and hostile or broken input (malformed frames close only that connection).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { encodeMessage } from '../../src/transport/index.js';
import { encodeHello, PROTOCOL_VERSION } from '../../src/transport/frame.js';
import { entry, freePort, heartbeat, mesh, startNode, waitFor } from './helpers.js';
import type { NodeId } from '../../src/raft/types.js';

test('a peer that is down: messages beyond the bound are dropped, memory stays bounded, and flow resumes when it comes up', async (t) => {
  const port = await freePort();
  const unreachable: NodeId[] = [];
  const maxQueueBytes = 256 * 1024;
  const leader = await startNode(t, 'n1', {
    peers: new Map([['n2', { host: '127.0.0.1', port }]]),
    maxQueueBytes,
    maxQueueMessages: 100_000,
    entryCacheBytes: 1024 * 1024,
    reconnectMinMs: 10,
    reconnectMaxMs: 80,
    random: () => 0.5,
    onUnreachable: (p) => unreachable.push(p),
  });
  let follower: Awaited<ReturnType<typeof startNode>> | null = null;
  try {
    // 20 MB offered to a dead peer; only the bound may be held.
    const sent = 20_000;
    for (let i = 1; i <= sent; i++) {
      leader.transport.send({ type: 'AppendEntries', from: 'n1', to: 'n2', term: 1, prevLogIndex: i - 1, prevLogTerm: 1, entries: [entry(i, 1, 1000)], leaderCommit: 0, seq: i });
    }
    const down = leader.transport.stats();
    const peer = down.peers.get('n2')!;
    assert.ok(peer.queuedBytes <= maxQueueBytes, `queued ${peer.queuedBytes} bytes`);
    assert.ok(peer.queuedMessages > 0 && peer.queuedMessages < 300, `queued ${peer.queuedMessages}`);
    assert.equal(peer.messagesDropped, sent - peer.queuedMessages);
    assert.ok(down.entryCacheBytes <= 1024 * 1024, `entry cache holds ${down.entryCacheBytes}`);
    // Let a few dials fail against the closed port.
    await waitFor(() => leader.transport.stats().peers.get('n2')!.reconnects >= 2, 3000, 'failed redials');
    assert.deepStrictEqual(unreachable, ['n2'], 'reported once per episode, not once per drop');

    follower = await startNode(t, 'n2', { listenPort: port });
    const queued = peer.queuedMessages;
    await waitFor(() => follower!.received.length === queued, 5000, 'the queued messages');
    // The oldest messages were kept (drop-tail), in order.
    assert.deepStrictEqual(follower.received.map((m) => (m.type === 'AppendEntries' ? m.seq : -1)), Array.from({ length: queued }, (_, i) => i + 1));
    leader.transport.send(heartbeat('n1', 'n2', 999_999));
    await waitFor(() => follower!.received.length === queued + 1, 3000, 'a fresh message');
    assert.equal(leader.transport.stats().peers.get('n2')!.connected, true);
    assert.equal(leader.transport.stats().peers.get('n2')!.queuedBytes, 0);
  } finally {
    await leader.transport.stop();
    await follower?.transport.stop();
  }
});

test('a connection lost mid-stream is re-established and later messages arrive', async (t) => {
  const a = await startNode(t, 'n1', { reconnectMinMs: 10, reconnectMaxMs: 50 });
  const port = await freePort();
  let b = await startNode(t, 'n2', { listenPort: port });
  try {
    mesh([a, b]);
    a.transport.send(heartbeat('n1', 'n2', 1));
    await waitFor(() => b.received.length === 1, 3000, 'first heartbeat');
    await b.transport.stop();
    b = await startNode(t, 'n2', { listenPort: port });
    // Keep sending until one lands on the new listener; earlier ones may be lost, as Raft allows.
    let seq = 2;
    const deadline = Date.now() + 5000;
    while (b.received.length === 0 && Date.now() < deadline) {
      a.transport.send(heartbeat('n1', 'n2', seq++));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(b.received.length > 0, 'no message reached the restarted peer');
    assert.ok(a.transport.stats().peers.get('n2')!.reconnects >= 1);
  } finally {
    await a.transport.stop();
    await b.transport.stop();
  }
});

/** Opens a raw socket to `port`, writes `bytes`, and resolves when the far side closes it. */
function rawExchange(port: number, bytes: Buffer): Promise<'closed'> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(bytes));
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => resolve('closed'));
    setTimeout(() => {
      s.destroy();
      reject(new Error('the transport did not close a malformed connection'));
    }, 3000).unref();
  });
}

test('malformed frames close that connection with a logged error and never crash the process', async (t) => {
  const errors: string[] = [];
  const logger = { debug() {}, info() {}, warn() {}, error: (msg: string) => errors.push(msg) };
  const a = await startNode(t, 'n1');
  const b = await startNode(t, 'n2', { logger, maxFrameBytes: 64 * 1024, snapshotChunkBytes: 32 * 1024 });
  try {
    mesh([a, b]);
    const port = b.transport.address().port;
    const hello = encodeHello({ version: PROTOCOL_VERSION, clusterId: 'raftkv', from: 'evil', to: 'n2', purpose: 'messages' });
    const frame = (type: number, body: Buffer): Buffer => {
      const h = Buffer.alloc(5);
      h.writeUInt32BE(body.length + 1, 0);
      h[4] = type;
      return Buffer.concat([h, body]);
    };
    const oversize = Buffer.alloc(4);
    oversize.writeUInt32BE(0xffffffff, 0);
    const cases: Buffer[] = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), // not our protocol at all
      Buffer.concat([hello, oversize]), // a 4 GiB frame announced
      Buffer.concat([hello, frame(3, Buffer.from([1, 2, 3]))]), // a truncated AppendEntries
      Buffer.concat([hello, frame(0x51, Buffer.alloc(10))]), // a snapshot chunk on the message stream
      Buffer.concat([hello, encodeMessage({ type: 'TimeoutNow', from: 'n1', to: 'n2', term: 1 }) as Buffer]), // lies about its sender
      frame(0x40, Buffer.from([1, 200])), // a handshake that runs short
    ];
    for (const bytes of cases) assert.equal(await rawExchange(port, bytes), 'closed');
    assert.equal(b.transport.stats().connectionsRejected, cases.length);
    assert.equal(errors.length, cases.length);
    assert.equal(b.received.length, 0);
    // The honest peer is unaffected.
    a.transport.send(heartbeat('n1', 'n2', 1));
    await waitFor(() => b.received.length === 1, 3000, 'an honest message');
  } finally {
    await Promise.all([a, b].map((n) => n.transport.stop()));
  }
});

test('a message over the frame limit is dropped by the sender instead of breaking the stream', async (t) => {
  const a = await startNode(t, 'n1', { maxFrameBytes: 2 * 1024 * 1024, snapshotChunkBytes: 1024 * 1024 });
  const b = await startNode(t, 'n2');
  try {
    mesh([a, b]);
    a.transport.send({ type: 'AppendEntries', from: 'n1', to: 'n2', term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [entry(1, 1, 3 * 1024 * 1024)], leaderCommit: 0, seq: 1 });
    a.transport.send(heartbeat('n1', 'n2', 2));
    await waitFor(() => b.received.length === 1, 3000, 'the heartbeat');
    assert.equal(b.received[0]!.type === 'AppendEntries' && b.received[0]!.seq, 2);
    assert.equal(a.transport.stats().peers.get('n2')!.messagesDropped, 1);
  } finally {
    await Promise.all([a, b].map((n) => n.transport.stop()));
  }
});

test('reconnect backoff stays within its bound and draws its jitter from the injected random', async (t) => {
  const port = await freePort();
  let draws = 0;
  const a = await startNode(t, 'n1', {
    peers: new Map([['n2', { host: '127.0.0.1', port }]]),
    reconnectMinMs: 10,
    reconnectMaxMs: 40,
    random: () => {
      draws++;
      return 1;
    },
  });
  a.transport.send(heartbeat('n1', 'n2', 1));
  await new Promise((resolve) => setTimeout(resolve, 600));
  const { reconnects } = a.transport.stats().peers.get('n2')!;
  // Delays grow 10, 20, 40 then stay at 40 ms: about 15 dials in 600 ms, never fewer than
  // a loaded machine's timers allow, never more than the minimum delay permits.
  assert.ok(reconnects >= 4 && reconnects <= 60, `${reconnects} redials`);
  assert.ok(draws >= reconnects, `${draws} draws for ${reconnects} redials`);
  a.transport.removePeer('n2');
  a.transport.send(heartbeat('n1', 'n2', 2));
  assert.equal(a.transport.stats().droppedUnknownPeer, 1);
  assert.equal(a.transport.stats().peers.has('n2'), false);
});
