// Log compaction and InstallSnapshot (§7): what compact() keeps, when the leader sends a snapshot,
// how a follower installs it, and which snapshots it must ignore.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/raft/index.js';
import { Network, PAPER, bytes, configOf, nodeFrom, ofType } from './harness.js';

const ABC = ['a', 'b', 'c'];

/** a leads, c was cut off while x, y, z committed, and a compacted its log through index 5. */
function compactedWhileCAway(): Network {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  net.dropWhere((m) => m.to === 'c' || m.from === 'c');
  net.raft('a').proposeBatch([bytes('x'), bytes('y'), bytes('z')]);
  net.settle();
  net.tick(1);
  assert.equal(net.raft('a').commitIndex, 5);
  net.node('a').takeSnapshot();
  return net;
}

function installSnapshot(term: number, index: number, snapshotTerm: number, machine: string[]): Message {
  return {
    type: 'InstallSnapshot', from: 'a', to: 'c', term, seq: 0,
    snapshot: { meta: { index, term: snapshotTerm, config: configOf(ABC) }, data: bytes(JSON.stringify(machine)) },
  };
}

test('§7 compact() discards the log through the snapshot index and keeps that entry\'s term', () => {
  const net = compactedWhileCAway();
  const a = net.raft('a');
  assert.deepEqual([a.snapshotIndex, a.snapshotTerm, a.lastIndex], [5, 2, 5]);
  assert.equal(a.termAt(5), 2);
  assert.equal(a.termAt(4), undefined);
  assert.equal(a.entryAt(3), undefined);
  assert.deepEqual(a.snapshotMetaAt(5), { index: 5, term: 2, config: configOf(ABC) });
});

test('§7 a follower that needs compacted entries is sent InstallSnapshot with the snapshot\'s index, term and configuration', () => {
  const net = compactedWhileCAway();
  net.heal();
  net.tick(3);
  const [m] = ofType(net.sent, 'InstallSnapshot').filter((s) => s.to === 'c');
  assert.ok(m !== undefined, 'no InstallSnapshot sent to c');
  assert.deepEqual(m.snapshot.meta, { index: 5, term: 2, config: configOf(ABC) });
  assert.equal(m.term, 2);
  assert.equal(m.snapshot.data, net.node('a').store.snapshot!.data, 'the core sends no bytes: the runtime attached those of its saved snapshot');
});

test("§7 the follower's Ready carries the snapshot it installs; it persists it and restores its state machine", () => {
  const net = compactedWhileCAway();
  net.heal();
  net.tick(3);
  const c = net.node('c');
  assert.equal(c.store.snapshot?.meta.index, 5);
  assert.deepEqual([c.raft.snapshotIndex, c.raft.snapshotTerm], [5, 2]);
  assert.ok(c.raft.commitIndex >= 5 && c.raft.lastApplied >= 5);
  assert.deepEqual(c.machine, ['x', 'y', 'z']);
});

test('§7 after installing a snapshot, replication continues from snapshot index + 1', () => {
  const net = compactedWhileCAway();
  net.heal();
  net.tick(3);
  const index = net.raft('a').propose(bytes('w'));
  assert.equal(index, 6);
  net.settle();
  net.tick(1);
  const c = net.node('c');
  assert.deepEqual(c.raft.entryAt(6)?.data, bytes('w'));
  assert.equal(c.raft.commitIndex, 6);
  assert.deepEqual(c.machine, ['x', 'y', 'z', 'w']);
  assert.deepEqual(net.raft('a').progress('c'), { matchIndex: 6, nextIndex: 7, state: 'replicate' });
});

test("§7 a snapshot older than the follower's commitIndex is ignored", () => {
  const c = nodeFrom('c', ABC, { terms: [1, 2, 2, 2, 2], currentTerm: 2, commitIndex: 4 }, PAPER);
  const out = c.stepOut(installSnapshot(2, 3, 2, ['old']));
  assert.equal(out.snapshot, null);
  assert.equal(c.raft.snapshotIndex, 0);
  assert.equal(c.raft.lastIndex, 5);
  assert.equal(c.raft.commitIndex, 4);
  assert.deepEqual(c.machine, []);
  const [r] = ofType(out.messages, 'InstallSnapshotResponse');
  assert.equal(r?.matchIndex, 4, 'it answers with what it has committed');
});

test("§7 a snapshot whose last entry matches the follower's log keeps the entries that follow it", () => {
  const c = nodeFrom('c', ABC, { terms: [1, 2, 2, 2, 2], currentTerm: 2, commitIndex: 1 }, PAPER);
  c.stepOut(installSnapshot(2, 3, 2, ['2@2', '3@2']));
  assert.equal(c.raft.lastIndex, 5);
  assert.equal(c.raft.termAt(5), 2);
  assert.ok(c.raft.commitIndex >= 3);
});

test("§7 a snapshot that conflicts with the follower's log replaces the whole log", () => {
  const c = nodeFrom('c', ABC, { terms: [1, 2, 2, 2], currentTerm: 2, commitIndex: 1 }, PAPER);
  const out = c.stepOut(installSnapshot(3, 3, 3, ['s1', 's2']));
  assert.deepEqual(out.snapshot?.meta, { index: 3, term: 3, config: configOf(ABC) });
  assert.deepEqual([c.raft.snapshotIndex, c.raft.lastIndex, c.raft.termAt(3), c.raft.termAt(4)], [3, 3, 3, undefined]);
  assert.equal(c.raft.commitIndex, 3);
  assert.deepEqual(c.machine, ['s1', 's2']);
  assert.equal(c.store.lastIndex, 3);
  const [r] = ofType(out.messages, 'InstallSnapshotResponse');
  assert.deepEqual([r?.term, r?.matchIndex], [3, 3]);
});

test('§7 an InstallSnapshot with a stale term is refused and changes nothing (§5.1)', () => {
  const c = nodeFrom('c', ABC, { terms: [1, 3], currentTerm: 3, commitIndex: 1 }, PAPER);
  const out = c.stepOut(installSnapshot(2, 5, 2, ['s']));
  assert.equal(out.snapshot, null);
  assert.equal(c.raft.snapshotIndex, 0);
  assert.equal(c.raft.lastIndex, 2);
  assert.ok(out.messages.every((m) => m.term === 3));
});

test('a server restarted after compaction recovers from its snapshot and the log after it', () => {
  const net = compactedWhileCAway();
  net.raft('a').propose(bytes('w'));
  net.settle();
  net.tick(1);
  net.crash('b');
  net.restart('b');
  net.crash('a');
  net.restart('a');
  const a = net.raft('a');
  assert.deepEqual([a.snapshotIndex, a.lastIndex, a.termAt(6)], [5, 6, 2]);
  net.tickUntil(() => net.leaders().length === 1, 100);
  net.tick(2);
  assert.deepEqual(net.node('a').machine, ['x', 'y', 'z', 'w']);
  assert.deepEqual(net.node('b').machine, ['x', 'y', 'z', 'w']);
});
