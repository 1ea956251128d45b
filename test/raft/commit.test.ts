// When entries are committed (§5.3, §5.4.2, Figure 8) and how the commit index spreads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/raft/index.js';
import { Network, PAPER, bytes, makeNode, ofType, stateOf } from './harness.js';

const ABC = ['a', 'b', 'c'];
const FIVE = ['a', 'b', 'c', 'd', 'e'];

function ack(from: string, term: number, matchIndex: number): Message {
  return { type: 'AppendEntriesResponse', from, to: 'a', term, success: true, matchIndex, rejectedIndex: 0, conflictTerm: 0, conflictIndex: 0, seq: 0 };
}

test('§5.3 an entry replicated on a majority is committed', () => {
  const net = new Network(FIVE, PAPER);
  net.elect('a');
  net.dropWhere((m) => m.to === 'd' || m.to === 'e');
  const index = net.raft('a').propose(bytes('x'));
  net.settle();
  assert.equal(net.raft('a').commitIndex, index);
  assert.deepEqual(net.node('a').machine, ['x']);
});

test('§5.3 an entry replicated on a minority is not committed', () => {
  const net = new Network(FIVE, PAPER);
  net.elect('a');
  net.dropWhere((m) => m.to === 'c' || m.to === 'd' || m.to === 'e');
  net.raft('a').propose(bytes('x'));
  net.settle();
  assert.equal(net.raft('b').lastIndex, 3, 'b has it');
  assert.equal(net.raft('a').commitIndex, 2);
  assert.deepEqual(net.node('a').machine, []);
});

test('§5.3 commitIndex is the highest index stored on a majority (matchIndex), advancing as acknowledgements arrive', () => {
  const net = new Network(FIVE, PAPER);
  net.elect('a');
  const a = net.node('a');
  a.raft.proposeBatch([bytes('x'), bytes('y'), bytes('z')]);
  a.drain();
  const seen: number[] = [];
  for (const [from, match] of [['b', 5], ['d', 3], ['c', 4]] as const) {
    a.stepOut(ack(from, 2, match));
    seen.push(a.raft.commitIndex);
  }
  // a,b hold 5: not a majority; +d holds 3: 3 commits; +c holds 4: a,b,c hold 4.
  assert.deepEqual(seen, [2, 3, 4]);
});

/**
 * Figure 8 (c) in three servers: a leads term 3 with [1, 2@2, 3@3]; c has received entry 2 but
 * not a's no-op; b has heard nothing of term 3. Entry 2 is on a majority (a, c).
 */
function oldEntryOnMajority(): Network {
  const net = new Network(ABC, (id) => ({ ...PAPER, state: stateOf(ABC, { terms: id === 'c' ? [1] : [1, 2], currentTerm: 2 }) }));
  net.dropWhere((m) => m.type === 'AppendEntries' && m.to === 'b');
  net.raft('a').campaign();
  // Deliver to c only entries up to index 2, as if the no-op had not been sent yet.
  net.settle((m) => (m.type === 'AppendEntries' ? { ...m, entries: m.entries.filter((e) => e.index <= 2) } : m));
  assert.equal(net.raft('a').role, 'leader');
  assert.equal(net.raft('a').currentTerm, 3);
  assert.deepEqual(net.terms('c'), [1, 2]);
  assert.equal(net.raft('a').progress('c')?.matchIndex, 2);
  return net;
}

test('§5.4.2 a leader does not commit an entry of an earlier term by counting its replicas (Figure 8)', () => {
  const net = oldEntryOnMajority();
  assert.equal(net.raft('a').commitIndex, 1);
  assert.deepEqual(net.node('a').applied.map((e) => e.index), []);
  net.tick(3, ['c']);
  assert.equal(net.raft('a').commitIndex, 1, 'still 1 while only the old entry is on a majority');
});

test('§5.4.2 an entry of an earlier term commits indirectly once an entry of the current term above it commits', () => {
  const net = oldEntryOnMajority();
  net.heal();
  net.tick(3); // the dropped and trimmed messages are lost: heartbeats bring the no-op out
  assert.equal(net.raft('a').commitIndex, 3);
  assert.deepEqual(net.node('a').applied.map((e) => `${e.index}@${e.term}`), ['2@2', '3@3']);
});

test('§5.3 followers learn the commit index from leaderCommit and apply the entry', () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  net.raft('a').propose(bytes('x'));
  net.settle();
  net.tick(1);
  for (const id of ABC) {
    assert.equal(net.raft(id).commitIndex, 3, id);
    assert.deepEqual(net.node(id).machine, ['x'], id);
  }
});

test('a single-voter cluster commits a proposal once the leader has persisted it', () => {
  const a = makeNode('a', ['a'], PAPER);
  a.raft.campaign();
  a.drain();
  assert.equal(a.raft.role, 'leader');
  assert.equal(a.raft.commitIndex, 2, 'the no-op');
  const index = a.raft.propose(bytes('x'));
  const rd = a.raft.ready();
  assert.deepEqual(rd.entries.map((e) => e.index), [index]);
  assert.equal(a.raft.commitIndex, 2, 'not committed before it is on stable storage');
  a.handle(rd);
  a.drain();
  assert.equal(a.raft.commitIndex, index);
  assert.deepEqual(a.machine, ['x']);
});

test('the leader counts its own log toward a majority only for entries it has persisted', () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  const a = net.node('a');
  a.raft.propose(bytes('x'));
  const rd = a.raft.ready();
  const toB = ofType(rd.messages, 'AppendEntries').find((m) => m.to === 'b');
  assert.ok(toB !== undefined);
  // The runtime is still syncing a's Ready while b's acknowledgement arrives.
  const [ackB] = ofType(net.node('b').stepOut(toB).messages, 'AppendEntriesResponse');
  a.raft.step(ackB!);
  assert.equal(a.raft.commitIndex, 2, 'b alone is one of three');
  a.handle(rd);
  a.drain();
  assert.equal(a.raft.commitIndex, 3);
});

test('§5.3 every server applies the same committed entries exactly once, in log order', () => {
  const net = new Network(FIVE, PAPER);
  net.elect('a');
  for (let round = 0; round < 4; round++) {
    net.raft('a').propose(bytes(`r${round}a`));
    net.raft('a').propose(bytes(`r${round}b`));
    net.settle();
    net.tick(1);
  }
  const expected = ['r0a', 'r0b', 'r1a', 'r1b', 'r2a', 'r2b', 'r3a', 'r3b'];
  for (const id of FIVE) {
    assert.deepEqual(net.node(id).machine, expected, id);
    assert.deepEqual(net.node(id).applied.map((e) => e.index), Array.from({ length: 10 }, (_, i) => i + 1), id);
  }
});

test('§5.4.2 a leader never decreases its commitIndex, even when a follower reports a lower matchIndex', () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  net.raft('a').propose(bytes('x'));
  net.settle();
  net.node('a').stepOut(ack('b', 2, 1));
  net.node('a').stepOut(ack('c', 2, 1));
  assert.equal(net.raft('a').commitIndex, 3);
});
