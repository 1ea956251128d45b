// Message formats (frame.ts, MESSAGE_FORMAT): a sender adds AppendEntries.leaderStable only for a
// peer whose HELLO_ACK said it decodes format 2, so members of both versions keep talking through
// a rolling upgrade; and the decoder takes frames of either format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MESSAGE_FORMAT } from '../../src/transport/frame.js';
import { MessageEncoder, decodeMessage } from '../../src/transport/index.js';
import { entry, scriptedPeer, startNode, waitFor } from './helpers.js';
import type { AppendEntries } from '../../src/raft/types.js';

function append(seq: number, entries = [entry(seq, 1, 64)]): AppendEntries {
  return { type: 'AppendEntries', from: 'n1', to: 'n2', term: 1, prevLogIndex: seq - 1, prevLogTerm: seq > 1 ? 1 : 0, entries, leaderCommit: 0, seq, leaderStable: 7 };
}

function whole(frame: Buffer | Buffer[]): Buffer {
  return Array.isArray(frame) ? Buffer.concat(frame) : frame;
}

test('codec: leaderStable follows the entries in format 2 and is left out in format 1; both decode', () => {
  const encoder = new MessageEncoder();
  for (const entries of [[], [entry(1, 1, 10), entry(2, 1, 0)]]) {
    const m = { ...append(1, entries), prevLogIndex: 0, prevLogTerm: 0 };
    const newer = whole(encoder.encode(m, 2));
    const older = whole(encoder.encode(m, 1));
    assert.equal(newer.length, older.length + 1, 'one varint byte more');
    assert.equal((decodeMessage(newer) as AppendEntries).leaderStable, 7);
    assert.equal((decodeMessage(older) as AppendEntries).leaderStable, 0, 'absent reads as "not told"');
    assert.deepEqual({ ...decodeMessage(older), leaderStable: 7 }, decodeMessage(newer), 'nothing else differs');
    // The first format's frame is exactly what a first-version sender wrote: its decoder would
    // refuse any byte after the entries (trailing bytes).
    assert.equal(older.readUInt32BE(0), older.length - 4);
  }
  assert.equal(MESSAGE_FORMAT, 2);
});

for (const format of [1, 2]) {
  test(`a peer that announces format ${format} gets AppendEntries ${format >= 2 ? 'with' : 'without'} leaderStable once it has answered`, async (t) => {
    const frames: Buffer[] = [];
    const port = await scriptedPeer(t, (_socket, _connection, frame) => frames.push(frame), format);
    const a = await startNode(t, 'n1');
    a.transport.addPeer('n2', { host: '127.0.0.1', port });
    // Queued before the answer: encoded for the first format, which every version decodes.
    a.transport.send(append(1));
    await waitFor(() => frames.length === 1, 3000, 'the first message');
    a.transport.send(append(2));
    await waitFor(() => frames.length === 2, 3000, 'the second message');
    const [first, second] = frames.map((f) => decodeMessage(f) as AppendEntries);
    assert.equal(first!.leaderStable, 0, 'sent before the peer said what it decodes');
    assert.equal(second!.leaderStable, format >= 2 ? 7 : 0);
    assert.equal(frames[1]!.length, whole(new MessageEncoder().encode(append(2), format)).length);
  });
}
