// What a snapshot stream may make a receiver hold (§7): nothing at all before acceptSnapshot and
// the admission checks pass, memory that grows only with the bytes received, one transfer per
// sender, and maxSnapshotBytes announced in total.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { encodeMessage } from '../../src/transport/index.js';
import { encodeHello, encodeSnapshotBegin, encodeSnapshotEnd, FrameType, frameType, PROTOCOL_VERSION, snapshotChunkHeader } from '../../src/transport/frame.js';
import { rawClient, startNode, waitFor, within } from './helpers.js';
import type { TestContext } from 'node:test';
import type { InstallSnapshot, NodeId } from '../../src/raft/types.js';
import type { RawClient } from './helpers.js';

function header(from: NodeId, to: NodeId): { message: InstallSnapshot; frame: Buffer } {
  const message: InstallSnapshot = {
    type: 'InstallSnapshot', from, to, term: 4, seq: 1,
    snapshot: { meta: { index: 100, term: 3, config: { voters: [from, to], votersOutgoing: [], learners: [] } }, data: new Uint8Array(0) },
  };
  return { message, frame: encodeMessage(message) as Buffer };
}

/** Opens a snapshot stream from `from` announcing `totalBytes` and sends `data` (maybe less). */
function snapshotStream(t: TestContext, port: number, from: NodeId, to: NodeId, totalBytes: number, data: Buffer): RawClient {
  const bytes = [
    encodeHello({ version: PROTOCOL_VERSION, clusterId: 'raftkv', from, to, purpose: 'snapshot' }),
    encodeSnapshotBegin(totalBytes, header(from, to).frame),
  ];
  if (data.length > 0) bytes.push(snapshotChunkHeader(data.length), data);
  return rawClient(t, port, { send: Buffer.concat(bytes) });
}

function finish(c: RawClient, data: Buffer): void {
  c.socket.write(encodeSnapshotEnd(zlib.crc32(data)));
}

const ackOf = (c: RawClient): number | undefined => {
  const f = c.frames.find((x) => frameType(x) === FrameType.snapshotAck);
  return f === undefined ? undefined : f[5];
};

test('acceptSnapshot refuses a non-leader before anything is allocated; nothing is delivered', async (t) => {
  const headers: InstallSnapshot[] = [];
  const heldAtCheck: number[] = [];
  const statuses: boolean[] = [];
  const a = await startNode(t, 'n1', { onSnapshotStatus: (_p, ok) => statuses.push(ok) });
  const b = await startNode(t, 'n2', {
    acceptSnapshot: (h) => {
      headers.push(h);
      const s = b.transport.stats();
      heldAtCheck.push(s.snapshotBytesAllocated + s.snapshotBytesReserved);
      return h.from === 'n3' ? null : `${h.from} is not the leader`;
    },
  });
  a.transport.addPeer('n2', b.transport.address());
  const data = new Uint8Array(4 * 1024 * 1024).fill(1);
  a.transport.send({ ...header('n1', 'n2').message, snapshot: { meta: header('n1', 'n2').message.snapshot.meta, data } });
  await waitFor(() => statuses.length === 1, 5000, 'the sender to hear');
  assert.deepStrictEqual(statuses, [false]);
  assert.equal(b.received.length, 0);
  assert.deepStrictEqual(heldAtCheck, [0], 'nothing was set aside before the check');
  assert.equal(headers[0]!.snapshot.meta.index, 100, 'the check saw the header');
  const s = b.transport.stats();
  assert.equal(s.rejected.snapshot, 1);
  assert.equal(s.snapshotBytesAllocated, 0);
  assert.equal(s.snapshotBytesReserved, 0);

  // A raw stream from a non-leader gets SNAP_ACK(0) and is closed; the leader's is taken.
  const refused = snapshotStream(t, b.transport.address().port, 'n1', 'n2', 10, Buffer.alloc(10));
  await within(refused.closed, 3000, 'the refusal');
  assert.equal(ackOf(refused), 0);
  const leaderData = Buffer.alloc(10, 5);
  const leader = snapshotStream(t, b.transport.address().port, 'n3', 'n2', 10, leaderData);
  await waitFor(() => b.transport.stats().snapshotBytesInProgress === 10, 3000, 'the leader’s bytes');
  finish(leader, leaderData);
  await waitFor(() => b.received.length === 1 && ackOf(leader) === 1, 3000, 'the leader’s snapshot and SNAP_ACK(1)');
});

test('an announced 1 GiB snapshot that sends 10 bytes holds memory for what arrived, not 1 GiB', async (t) => {
  const b = await startNode(t, 'n2');
  global.gc?.();
  const before = process.memoryUsage();
  const liar = snapshotStream(t, b.transport.address().port, 'n1', 'n2', 1024 * 1024 * 1024, Buffer.alloc(10, 1));
  await waitFor(() => b.transport.stats().snapshotBytesInProgress === 10, 3000, 'the ten bytes');
  const s = b.transport.stats();
  const after = process.memoryUsage();
  t.diagnostic(`allocated ${s.snapshotBytesAllocated} B; arrayBuffers +${after.arrayBuffers - before.arrayBuffers} B; rss +${after.rss - before.rss} B`);
  assert.ok(s.snapshotBytesAllocated <= 64 * 1024, `${s.snapshotBytesAllocated} bytes allocated`);
  assert.ok(after.arrayBuffers - before.arrayBuffers < 32 * 1024 * 1024, 'no 1 GiB buffer');
  assert.ok(after.rss - before.rss < 64 * 1024 * 1024, 'rss stayed small');
  assert.equal(s.snapshotBytesReserved, 1024 * 1024 * 1024, 'the announced size is reserved against the budget, not allocated');
  // Gone with its connection.
  liar.socket.destroy();
  await waitFor(() => b.transport.stats().snapshotBytesReserved === 0, 3000, 'the reservation to go');
  const end = b.transport.stats();
  assert.equal(end.snapshotBytesAllocated, 0);
  assert.equal(end.snapshotBytesInProgress, 0);
  assert.equal(end.snapshotsDiscarded, 1);
});

test('a second concurrent snapshot from the same peer is refused; the first completes', async (t) => {
  const b = await startNode(t, 'n2');
  const port = b.transport.address().port;
  const data = Buffer.alloc(300 * 1024, 3);
  const first = snapshotStream(t, port, 'n1', 'n2', data.length, data.subarray(0, 1000));
  await waitFor(() => b.transport.stats().snapshotBytesInProgress === 1000, 3000, 'the first transfer');
  const second = snapshotStream(t, port, 'n1', 'n2', data.length, data.subarray(0, 1000));
  await within(second.closed, 3000, 'the second to be refused');
  assert.equal(ackOf(second), 0);
  assert.equal(b.transport.stats().rejected.snapshot, 1);
  first.socket.write(Buffer.concat([snapshotChunkHeader(data.length - 1000), data.subarray(1000)]));
  finish(first, data);
  await waitFor(() => b.received.length === 1, 3000, 'the first snapshot');
  assert.equal(Buffer.compare((b.received[0] as InstallSnapshot).snapshot.data, data), 0);
  await waitFor(() => ackOf(first) === 1, 3000, 'SNAP_ACK(1)');
  // Finished transfers free their slot: the same peer may send again.
  const third = snapshotStream(t, port, 'n1', 'n2', 10, Buffer.alloc(10));
  await waitFor(() => b.transport.stats().snapshotBytesInProgress === 10, 3000, 'a later transfer');
  assert.ok(!third.isClosed());
});

test('transfers in progress together never announce more than maxSnapshotBytes', async (t) => {
  const b = await startNode(t, 'n2', { maxSnapshotBytes: 1024 * 1024 });
  const port = b.transport.address().port;
  const big = Buffer.alloc(700 * 1024, 1);
  const first = snapshotStream(t, port, 'n1', 'n2', big.length, big.subarray(0, 100));
  await waitFor(() => b.transport.stats().snapshotBytesReserved === big.length, 3000, 'the first reservation');
  const over = snapshotStream(t, port, 'n3', 'n2', big.length, Buffer.alloc(0));
  const tooLarge = snapshotStream(t, port, 'n4', 'n2', 1024 * 1024 + 1, Buffer.alloc(0));
  await within(Promise.all([over.closed, tooLarge.closed]), 3000, 'the refusals');
  assert.equal(ackOf(over), 0);
  assert.equal(ackOf(tooLarge), 0);
  // One that fits beside the first is fine.
  const small = Buffer.alloc(300 * 1024, 2);
  const fits = snapshotStream(t, port, 'n5', 'n2', small.length, small);
  finish(fits, small);
  await waitFor(() => b.received.length === 1, 3000, 'the one that fits');
  assert.equal(b.transport.stats().rejected.snapshot, 2);
  assert.ok(!first.isClosed());
  // A sender cannot send more than it announced.
  first.socket.write(Buffer.concat([snapshotChunkHeader(big.length), big]));
  await within(first.closed, 3000, 'the overrun to close the stream');
  assert.equal(b.transport.stats().rejected.malformed, 1);
  await waitFor(() => b.transport.stats().snapshotBytesReserved === 0, 3000, 'the budget to be free');
  // A short stream fails its length check at the end, and is discarded.
  const short = snapshotStream(t, port, 'n3', 'n2', 100, Buffer.alloc(50));
  finish(short, Buffer.alloc(50));
  await within(short.closed, 3000, 'the short stream');
  assert.equal(ackOf(short), 0);
  assert.equal(b.received.length, 1);
});
