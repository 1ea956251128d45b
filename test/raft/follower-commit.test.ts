// A follower that counts the leader's announced durable copy with its own (follower.ts,
// commitFromDurableCopies): the §5.4.2 rule, counted where a majority is two copies. Each test
// drives one core by hand, so that "durable" is exactly what a Ready's advance() made it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Raft, encodeConfiguration, type AppendEntries, type Entry, type InitialState, type Message } from '../../src/raft/index.js';
import { Network, PAPER, bytes, configOf, entry, seededRandom, stateOf } from './harness.js';

const ABC = ['a', 'b', 'c'];
const FIVE = ['a', 'b', 'c', 'd', 'e'];

function follower(state: InitialState, id = 'b'): Raft {
  return new Raft({ id, random: seededRandom(7), preVote: false, checkQuorum: false }, state);
}

function append(to: string, term: number, prev: [number, number], entries: Entry[], leaderCommit: number, leaderStable?: number): AppendEntries {
  return {
    type: 'AppendEntries', from: 'a', to, term, prevLogIndex: prev[0], prevLogTerm: prev[1], entries, leaderCommit, seq: 0,
    ...(leaderStable === undefined ? {} : { leaderStable }),
  };
}

/** Carries out one Ready as a runtime would, with an instant disk: its entries become stable. */
function persist(r: Raft): void {
  if (!r.hasReady()) return;
  r.ready();
  r.advance();
}

test('§5.4.2 a follower commits an entry of the current term once its own copy is durable and the leader announced its copy durable (3 voters)', () => {
  const b = follower(stateOf(ABC, { terms: [1], currentTerm: 2 }));
  b.step(append('b', 2, [1, 1], [entry(2, 2)], 1, 2));
  assert.equal(b.commitIndex, 1, 'its own copy is not durable yet');
  persist(b);
  assert.equal(b.commitIndex, 2, 'two durable copies of three: committed without the leader telling');
  assert.equal(b.commitsCountedAsFollower, 1);
});

test('§5.4.2 the announcement may come after the follower\'s own sync', () => {
  const b = follower(stateOf(ABC, { terms: [1], currentTerm: 2 }));
  b.step(append('b', 2, [1, 1], [entry(2, 2), entry(3, 2)], 1, 0));
  persist(b);
  assert.equal(b.commitIndex, 1, 'the leader announced nothing durable');
  b.step(append('b', 2, [3, 2], [], 1, 2));
  assert.equal(b.commitIndex, 2, 'only as far as the leader announced');
  b.step(append('b', 2, [3, 2], [], 1, 9));
  assert.equal(b.commitIndex, 3, 'and never past its own log');
});

test('§5.4.2 without an announcement (a peer of the first message format) the follower waits for leaderCommit, as Figure 2 says', () => {
  const b = follower(stateOf(ABC, { terms: [1], currentTerm: 2 }));
  b.step(append('b', 2, [1, 1], [entry(2, 2)], 1));
  persist(b);
  assert.equal(b.commitIndex, 1);
  b.step(append('b', 2, [2, 2], [], 2));
  assert.equal(b.commitIndex, 2);
  assert.equal(b.commitsCountedAsFollower, 0);
});

test('§5.4.2 Figure 8: a follower never commits an entry of an earlier term by counting copies', () => {
  // b holds 2@2 and follows a in term 3; a announces 2 durable. Two copies of an old entry
  // are not enough (Figure 8): only an entry of the current term above it commits both.
  const b = follower(stateOf(ABC, { terms: [1, 2], currentTerm: 3 }));
  b.step(append('b', 3, [2, 2], [], 1, 2));
  persist(b);
  assert.equal(b.commitIndex, 1, 'entry 2 is of term 2');
  b.step(append('b', 3, [2, 2], [entry(3, 3)], 1, 3));
  persist(b);
  assert.equal(b.commitIndex, 3, 'entry 3 of term 3 commits itself and entry 2');
});

test('§5.4.2 with five voters two copies are no majority: the follower waits for the leader', () => {
  const b = follower(stateOf(FIVE, { terms: [1], currentTerm: 2 }));
  b.step(append('b', 2, [1, 1], [entry(2, 2)], 1, 2));
  persist(b);
  assert.equal(b.commitIndex, 1);
});

test('§5.4.2 a follower counts nothing under a joint configuration (thesis §4.3)', () => {
  const joint = { voters: ['a', 'b', 'd'], votersOutgoing: ABC, learners: [] };
  const log: Entry[] = [
    { index: 1, term: 1, type: 'config', data: encodeConfiguration(configOf(ABC)) },
    { index: 2, term: 2, type: 'config', data: encodeConfiguration(joint) },
  ];
  const b = follower({ hardState: { currentTerm: 2, votedFor: null, commitIndex: 1 }, snapshot: null, entries: log, applied: 1 });
  b.step(append('b', 2, [2, 2], [entry(3, 2)], 1, 3));
  persist(b);
  assert.equal(b.commitIndex, 1, 'a and b are a majority of both sets, yet a joint configuration is left to the leader');
});

test('§5.3 a follower counts only the prefix this leader\'s messages matched: a suffix from before it became follower again is not', () => {
  // b holds 2@2 from a, then times out and campaigns in term 2 (no pre-vote); a's next
  // heartbeat makes it a follower again with only its committed prefix known to match.
  const b = follower(stateOf(ABC, { terms: [1], currentTerm: 2 }));
  b.step(append('b', 2, [1, 1], [entry(2, 2)], 1, 0));
  persist(b);
  for (let i = 0; i < 40 && b.role === 'follower'; i++) b.tick();
  assert.equal(b.role, 'candidate');
  // A leader of term 3 now, anchored at the committed entry: 2@2 is b's, not known to be a's.
  b.step({ ...append('b', 3, [1, 1], [], 1, 2) });
  persist(b);
  assert.equal(b.commitIndex, 1, 'entry 2 was matched by no message of this leader');
  b.step(append('b', 3, [2, 2], [entry(3, 3)], 1, 3));
  persist(b);
  assert.equal(b.commitIndex, 3);
});

test('§5.4.2 a leader announces its durable index in every AppendEntries, and 0 while a configuration change is pending', () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  const a = net.raft('a');
  const sent: AppendEntries[] = [];
  const keep = (m: Message): Message => {
    if (m.type === 'AppendEntries' && m.from === 'a') sent.push(m);
    return m;
  };
  a.propose(bytes('x'));
  net.settle(keep);
  assert.ok(sent.length > 0 && sent.every((m) => m.leaderStable !== undefined && m.leaderStable <= a.stableIndex));
  assert.ok(sent.some((m) => m.leaderStable === a.stableIndex && m.leaderStable >= 3), 'the durable index reached the followers');
  sent.length = 0;
  net.dropWhere((m) => m.to === 'd');
  a.proposeConfigChange([{ type: 'add-learner', id: 'd' }]);
  net.settle(keep);
  const whilePending = sent.filter((m) => m.entries.some((e) => e.type === 'config'));
  assert.ok(whilePending.length > 0 && whilePending.every((m) => m.leaderStable === 0), 'nothing announced while the change is uncommitted');
});

test('§5.4.2 with announcements every follower of a 3-voter cluster applies each write, and all agree', () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  for (const v of ['x', 'y', 'z']) {
    net.raft('a').propose(bytes(v));
    net.raft('a').announceStable(['b', 'c']);
    net.settle();
  }
  for (const id of ABC) assert.deepEqual(net.node(id).machine, ['x', 'y', 'z'], id);
});

test('Figure 2 persist before respond: an acknowledgement of an earlier term still waiting for its sync is dropped when a new leader overwrites what it claims', () => {
  const b = follower(stateOf(ABC, { terms: [1], currentTerm: 2 }));
  // a (term 2) sends 2@2 and 3@2; b's acknowledgement waits for the sync of its next Ready.
  b.step(append('b', 2, [1, 1], [entry(2, 2), entry(3, 2)], 1));
  // Before that Ready is taken, c leads term 3 and overwrites both.
  b.step({ type: 'AppendEntries', from: 'c', to: 'b', term: 3, prevLogIndex: 1, prevLogTerm: 1, entries: [entry(2, 3)], leaderCommit: 1, seq: 0 });
  const rd = b.ready();
  const acks = rd.messagesAfterSync.filter((m) => m.type === 'AppendEntriesResponse' && m.success);
  assert.deepEqual(acks.map((m) => [m.to, m.term, m.type === 'AppendEntriesResponse' ? m.matchIndex : -1]), [['c', 3, 2]], 'only what the stored log will hold is acknowledged');
  assert.deepEqual(rd.entries.map((e) => `${e.index}@${e.term}`), ['2@3']);
});
