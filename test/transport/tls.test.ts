// Mutual TLS between peers: members with certificates from the cluster's CA exchange messages,
// rpc requests and a multi-chunk snapshot; anything else (plain TCP, no certificate, a foreign
// CA, a certificate for another address) is refused by the TLS layer before a frame is read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasOpenssl } from '../../src/security/certs.js';
import { encodeHello, FrameType, frameType, PROTOCOL_VERSION } from '../../src/transport/frame.js';
import { heartbeat, makeTestPki, mesh, rawClient, startNode, waitFor, within } from './helpers.js';
import type { InstallSnapshot } from '../../src/raft/types.js';
import type { HelloPeer, TcpTransportOptions } from '../../src/transport/index.js';
import type { TestPki } from './helpers.js';

const skip = hasOpenssl() ? false : 'openssl is not installed (CI installs it)';
let pkiCache: TestPki | null = null;
const pki = (): TestPki => (pkiCache ??= makeTestPki());

function tlsFor(id: string): TcpTransportOptions['tls'] {
  const node = pki().nodes.get(id)!;
  return { cert: node.cert, key: node.key, ca: pki().ca };
}

const hello = (from: string, to: string): Buffer => encodeHello({ version: PROTOCOL_VERSION, clusterId: 'raftkv', from, to, purpose: 'messages' });

test('TLS: members exchange messages, rpc requests and a multi-chunk snapshot; checkHello sees the peer certificate', { skip }, async (t) => {
  const statuses: boolean[] = [];
  const seen: HelloPeer[] = [];
  const a = await startNode(t, 'n1', { tls: tlsFor('n1'), onSnapshotStatus: (_p, ok) => statuses.push(ok) });
  const b = await startNode(t, 'n2', {
    tls: tlsFor('n2'),
    snapshotChunkBytes: 64 * 1024,
    onRequest: async (from, payload) => Buffer.from(`${from}:${Buffer.from(payload).toString()}`),
    checkHello: (h, peer) => {
      seen.push(peer);
      return h.clusterId === 'raftkv' ? null : 'another cluster';
    },
  });
  mesh([a, b]);
  for (let seq = 1; seq <= 3; seq++) a.transport.send(heartbeat('n1', 'n2', seq));
  await waitFor(() => b.received.length === 3, 5000, 'three messages over TLS');
  assert.deepStrictEqual(b.received.map((m) => m.type === 'AppendEntries' && m.seq), [1, 2, 3]);

  const answer = await a.transport.request('n2', Buffer.from('ping'), 5000);
  assert.equal(Buffer.from(answer).toString(), 'n1:ping');

  const data = new Uint8Array(1024 * 1024 + 123);
  for (let i = 0; i < data.length; i += 997) data[i] = i & 0xff;
  const snap: InstallSnapshot = {
    type: 'InstallSnapshot', from: 'n1', to: 'n2', term: 2, seq: 9,
    snapshot: { meta: { index: 40, term: 2, config: { voters: ['n1', 'n2'], votersOutgoing: [], learners: [] } }, data },
  };
  // Chunks of 64 KiB: 17 of them.
  const a2 = await startNode(t, 'n3', { tls: tlsFor('n3'), snapshotChunkBytes: 64 * 1024, onSnapshotStatus: (_p, ok) => statuses.push(ok) });
  a2.transport.addPeer('n2', b.transport.address());
  a2.transport.send({ ...snap, from: 'n3' });
  await waitFor(() => statuses.length === 1, 10_000, 'the snapshot status');
  assert.deepStrictEqual(statuses, [true]);
  const got = b.received.find((m) => m.type === 'InstallSnapshot') as InstallSnapshot;
  assert.equal(Buffer.compare(got.snapshot.data, data), 0);

  // Messages, rpc and snapshot streams all presented a verified certificate to checkHello.
  assert.ok(seen.length >= 3, `${seen.length} handshakes`);
  for (const peer of seen) {
    assert.equal(peer.remoteAddress, '127.0.0.1');
    assert.ok(peer.certificate !== null && ['n1', 'n3'].includes(String(peer.certificate.subject.CN)), 'a verified client certificate');
  }
  const stats = b.transport.stats();
  assert.equal(stats.connectionsRejected, 0);
  assert.equal(stats.rejected.tls, 0);
});

test('TLS: plain TCP, no certificate, a foreign CA and an expired handshake are refused before any frame is read', { skip }, async (t) => {
  const b = await startNode(t, 'n2', { tls: tlsFor('n2'), handshakeTimeoutMs: 400 });
  const port = b.transport.address().port;
  const before = b.transport.stats();

  // Plain TCP with a perfectly good HELLO and a message: the TLS layer sees garbage.
  const plain = rawClient(t, port, { send: hello('n1', 'n2') });
  // TLS without a client certificate, then with one from another CA (its CN even says n1).
  const noCert = rawClient(t, port, { tls: { ca: pki().ca }, send: hello('n1', 'n2') });
  const foreign = rawClient(t, port, { tls: { ca: pki().ca, ...pki().stranger }, send: hello('n1', 'n2') });
  await within(Promise.all([plain.closed, noCert.closed, foreign.closed]), 3000, 'the refused connections to close');
  for (const c of [plain, noCert, foreign]) assert.deepStrictEqual(c.frames, [], 'no HELLO_ACK, no frame at all');
  await waitFor(() => b.transport.stats().rejected.tls === 3, 2000, 'three TLS refusals');

  // A TCP connection that never starts TLS: the handshake deadline covers the TLS handshake.
  const silent = rawClient(t, port);
  const silentMs = await within(silent.closed, 3000, 'the silent connection to close');
  assert.ok(silentMs >= 300 && silentMs < 2000, `closed after ${silentMs.toFixed(0)} ms`);

  const stats = b.transport.stats();
  assert.equal(stats.rejected.tls, 3);
  assert.equal(stats.rejected.timeout, 1);
  assert.equal(stats.bytesReceived, before.bytesReceived, 'not one byte reached our frame decoder');
  assert.equal(stats.messagesReceived, 0);
  assert.equal(b.received.length, 0, 'onMessage never ran');

  // A member still gets through.
  const a = await startNode(t, 'n1', { tls: tlsFor('n1') });
  mesh([a, b]);
  a.transport.send(heartbeat('n1', 'n2', 1));
  await waitFor(() => b.received.length === 1, 5000, 'a member’s message');
});

test('TLS: a dialer refuses a server whose certificate is from another CA or for another address', { skip }, async (t) => {
  // A listener with a foreign identity: it trusts our CA, so only the dialer can refuse.
  const foreign = await startNode(t, 'n2', { tls: { ...pki().stranger, ca: pki().ca } });
  // A listener with a certificate from our own CA, but issued for 10.9.9.9, not 127.0.0.1.
  const misaddressed = await startNode(t, 'n2', { tls: { ...pki().misaddressed, ca: pki().ca } });
  for (const server of [foreign, misaddressed]) {
    const codes: unknown[] = [];
    const logger = { debug() {}, info() {}, warn: (msg: string, f?: Readonly<Record<string, unknown>>) => msg.startsWith('TLS failed') && codes.push(f?.['error']), error() {} };
    const a = await startNode(t, 'n1', { tls: tlsFor('n1'), reconnectMinMs: 20, reconnectMaxMs: 50, logger });
    a.transport.addPeer('n2', server.transport.address());
    a.transport.send(heartbeat('n1', 'n2', 1));
    await waitFor(() => a.transport.stats().tlsDialFailures >= 1, 5000, 'a TLS dial failure');
    await assert.rejects(a.transport.request('n2', Buffer.from('x'), 2000));
    assert.equal(a.transport.stats().peers.get('n2')!.connected, false);
    t.diagnostic(`dial refused with ${codes.join(', ')}`);
    assert.ok(codes.includes(server === foreign ? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' : 'ERR_TLS_CERT_ALTNAME_INVALID'), String(codes));
  }
  assert.equal(foreign.received.length + misaddressed.received.length, 0);
});

test('TLS: a plain-TCP transport cannot dial a TLS one, nor the other way round', { skip }, async (t) => {
  const secure = await startNode(t, 'n2', { tls: tlsFor('n2') });
  const plain = await startNode(t, 'n1');
  plain.transport.addPeer('n2', secure.transport.address());
  plain.transport.send(heartbeat('n1', 'n2', 1));
  await waitFor(() => secure.transport.stats().rejected.tls >= 1, 5000, 'the TLS refusal');
  assert.equal(secure.received.length, 0);

  const secureDialer = await startNode(t, 'n3', { tls: tlsFor('n3') });
  secureDialer.transport.addPeer('n1', plain.transport.address());
  secureDialer.transport.send(heartbeat('n3', 'n1', 1));
  // The plain listener reads a TLS ClientHello as a frame header; it is malformed or oversize.
  await waitFor(() => plain.transport.stats().rejected.malformed >= 1, 5000, 'the plain listener to refuse TLS bytes');
  assert.equal(plain.received.length, 0);
  const frames = rawClient(t, secure.transport.address().port, { tls: { ca: pki().ca, ...pki().nodes.get('n1')! }, send: hello('n1', 'n2') });
  await waitFor(() => frames.frames.length === 1, 5000, 'a member’s raw HELLO_ACK');
  assert.equal(frameType(frames.frames[0]!), FrameType.helloAck);
});
