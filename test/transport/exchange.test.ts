// Transports on real sockets (127.0.0.1) exchanging every message type, sharing encoded
// entries between followers, and refusing connections from another cluster or misaddressed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entry, mesh, startNode, waitFor } from './helpers.js';
import type { Message, NodeId } from '../../src/raft/types.js';

function everyType(from: NodeId, to: NodeId, seq: number): Message[] {
  return [
    { type: 'RequestVote', from, to, term: 5, preVote: true, lastLogIndex: 10, lastLogTerm: 4, transfer: false },
    { type: 'RequestVoteResponse', from, to, term: 5, preVote: true, voteGranted: true },
    { type: 'AppendEntries', from, to, term: 5, prevLogIndex: 10, prevLogTerm: 4, entries: [entry(11, 5, 100), { index: 12, term: 5, type: 'config', data: new Uint8Array([1, 2, 3]) }], leaderCommit: 9, seq, leaderStable: 0 },
    { type: 'AppendEntriesResponse', from, to, term: 5, success: false, matchIndex: 0, rejectedIndex: 10, conflictTerm: 3, conflictIndex: 7, seq },
    { type: 'InstallSnapshotResponse', from, to, term: 5, matchIndex: 100, seq },
    { type: 'TimeoutNow', from, to, term: 5 },
  ];
}

test('three transports exchange every message type, in order per stream', async (t) => {
  const statuses: [NodeId, boolean][] = [];
  const nodes = await Promise.all(['n1', 'n2', 'n3'].map((id) => startNode(t, id, { onSnapshotStatus: (peer, ok) => statuses.push([peer, ok]) })));
  try {
    mesh(nodes);
    const expected = new Map<NodeId, Message[]>(nodes.map((n) => [n.transport.id, []]));
    let seq = 0;
    for (const a of nodes) {
      for (const b of nodes) {
        if (a === b) continue;
        for (const m of everyType(a.transport.id, b.transport.id, seq++)) {
          a.transport.send(m);
          expected.get(b.transport.id)!.push(m);
        }
      }
    }
    const snapshot: Message = {
      type: 'InstallSnapshot', from: 'n1', to: 'n3', term: 5, seq: 77,
      snapshot: { meta: { index: 100, term: 4, config: { voters: ['n1', 'n2', 'n3'], votersOutgoing: [], learners: ['n4'] } }, data: new Uint8Array(3000).fill(9) },
    };
    nodes[0]!.transport.send(snapshot);
    const total = 6 * 2;
    await waitFor(() => nodes.every((n) => n.received.length >= total) && nodes[2]!.received.length === total + 1, 5000, 'all messages');
    for (const n of nodes) {
      const got = n.received.filter((m) => m.type !== 'InstallSnapshot');
      // Each sender's stream keeps its order; streams from different senders interleave.
      for (const from of ['n1', 'n2', 'n3']) {
        assert.deepStrictEqual(got.filter((m) => m.from === from), expected.get(n.transport.id)!.filter((m) => m.from === from));
      }
    }
    assert.deepStrictEqual(nodes[2]!.received.find((m) => m.type === 'InstallSnapshot'), snapshot);
    await waitFor(() => statuses.length === 1, 2000, 'snapshot status');
    assert.deepStrictEqual(statuses, [['n3', true]]);
    const s = nodes[0]!.transport.stats();
    assert.equal(s.peers.get('n2')!.messagesSent, 6);
    assert.equal(s.peers.get('n2')!.connected, true);
    assert.equal(s.peers.get('n3')!.snapshotsSent, 1);
  } finally {
    await Promise.all(nodes.map((n) => n.transport.stop()));
  }
});

test('the same entries sent to two followers are encoded once by the leader', async (t) => {
  const nodes = await Promise.all(['n1', 'n2', 'n3'].map((id) => startNode(t, id)));
  try {
    mesh(nodes);
    const leader = nodes[0]!.transport;
    const entries = Array.from({ length: 64 }, (_, i) => entry(i + 1, 2, 256, i));
    for (const to of ['n2', 'n3']) {
      leader.send({ type: 'AppendEntries', from: 'n1', to, term: 2, prevLogIndex: 0, prevLogTerm: 0, entries, leaderCommit: 0, seq: 1 });
    }
    await waitFor(() => nodes[1]!.received.length === 1 && nodes[2]!.received.length === 1, 5000, 'both followers');
    assert.equal(leader.stats().entriesEncoded, 64);
    assert.equal(leader.stats().entryCacheHits, 64);
    for (const n of nodes.slice(1)) {
      const m = n.received[0]!;
      assert.equal(m.type, 'AppendEntries');
      if (m.type === 'AppendEntries') assert.deepStrictEqual(m.entries, entries);
    }
  } finally {
    await Promise.all(nodes.map((n) => n.transport.stop()));
  }
});

test('a connection from another cluster, or addressed to another node, is refused', async (t) => {
  const unreachable: NodeId[] = [];
  const a = await startNode(t, 'n1', { clusterId: 'blue', onUnreachable: (p) => unreachable.push(p), reconnectMinMs: 1000 });
  const b = await startNode(t, 'n2', { clusterId: 'green' });
  const c = await startNode(t, 'n3', { clusterId: 'blue' });
  try {
    a.transport.addPeer('n2', b.transport.address());
    // n1 believes "n4" lives at n3's address: n3 must not accept n4's traffic.
    a.transport.addPeer('n4', c.transport.address());
    a.transport.send({ type: 'TimeoutNow', from: 'n1', to: 'n2', term: 1 });
    a.transport.send({ type: 'TimeoutNow', from: 'n1', to: 'n4', term: 1 });
    await waitFor(() => b.transport.stats().connectionsRejected === 1 && c.transport.stats().connectionsRejected === 1, 3000, 'refusals');
    await waitFor(() => unreachable.length === 2, 3000, 'unreachable reports');
    assert.deepStrictEqual(unreachable.sort(), ['n2', 'n4']);
    assert.equal(b.received.length, 0);
    assert.equal(c.received.length, 0);
    assert.equal(a.transport.stats().peers.get('n2')!.connected, false);
  } finally {
    await Promise.all([a, b, c].map((n) => n.transport.stop()));
  }
});

test('messages to an unknown peer are dropped and counted; onMessage errors do not break the stream', async (t) => {
  let calls = 0;
  const a = await startNode(t, 'n1');
  const b = await startNode(t, 'n2', {
    onMessage: () => {
      calls++;
      throw new Error('runtime bug');
    },
  });
  try {
    mesh([a, b]);
    a.transport.send({ type: 'TimeoutNow', from: 'n1', to: 'n9', term: 1 });
    assert.equal(a.transport.stats().droppedUnknownPeer, 1);
    a.transport.send({ type: 'TimeoutNow', from: 'n1', to: 'n2', term: 1 });
    a.transport.send({ type: 'TimeoutNow', from: 'n1', to: 'n2', term: 2 });
    await waitFor(() => calls === 2, 3000, 'both deliveries');
    assert.equal(b.transport.stats().connectionsRejected, 0);
  } finally {
    await Promise.all([a, b].map((n) => n.transport.stop()));
  }
});
