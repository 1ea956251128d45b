// The Ready contract (src/raft/types.ts): which messages the core lets leave BEFORE their Ready's
// sync (Ready.messages) and which MUST wait for it (Ready.messagesAfterSync), and when a Ready
// must be synced at all (mustSync). One input, then the exact Ready it produces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapState, type Configuration, type Message } from '../../src/raft/index.js';
import { Network, PAPER, bytes, makeNode, ofType, requestVote, text } from './harness.js';

const ABC = ['a', 'b', 'c'];

test("thesis §10.2.1 a leader's AppendEntries may leave before its own write is durable; the follower's acknowledgement only after its own", () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  const a = net.node('a');
  a.raft.propose(bytes('x'));
  const rd = a.raft.ready();
  assert.equal(rd.mustSync, true, 'the entry must be synced');
  assert.deepEqual(ofType(rd.messages, 'AppendEntries').map((m) => [m.to, m.entries.length]), [['b', 1], ['c', 1]]);
  assert.deepEqual(rd.messagesAfterSync, []);
  const ae = rd.messages.find((m) => m.to === 'b')!;
  a.handle(rd);

  const b = net.node('b');
  b.raft.step(ae);
  const follower = b.raft.ready();
  assert.equal(follower.mustSync, true);
  assert.deepEqual(follower.messages, [], 'an acknowledgement promises the entries are durable');
  assert.deepEqual(ofType(follower.messagesAfterSync, 'AppendEntriesResponse').map((m) => [m.success, m.matchIndex]), [[true, 3]]);
  b.handle(follower);
});

test('thesis §10.2.1 an entry commits once a majority holds it durably, without the leader: the leader counts its own copy only once advance() reports it durable', () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  const a = net.node('a');
  const index = a.raft.propose(bytes('x'));
  const rd = a.raft.ready(); // the leader's own write is still in flight: no advance()
  const [toB, toC] = [rd.messages.find((m) => m.to === 'b')!, rd.messages.find((m) => m.to === 'c')!];
  const ackB = ofType(net.node('b').stepOut(toB).messages, 'AppendEntriesResponse')[0]!;
  a.raft.step(ackB);
  assert.equal(a.raft.commitIndex, index - 1, "b and a's unsynced copy are not a durable majority");
  const ackC = ofType(net.node('c').stepOut(toC).messages, 'AppendEntriesResponse')[0]!;
  a.raft.step(ackC);
  assert.equal(a.raft.commitIndex, index, 'b and c are');
  assert.equal(a.raft.progress('a')?.matchIndex, index - 1, 'still not stable on the leader');
  a.handle(rd);
  assert.equal(a.raft.progress('a')?.matchIndex, index, 'stable once advance() says so');
});

test('thesis §9.6 pre-vote requests and answers leave before the sync: they change no state', () => {
  const a = makeNode('a', ABC);
  a.raft.campaign();
  const pre = a.raft.ready();
  assert.equal(a.raft.role, 'pre-candidate');
  assert.equal(pre.mustSync, false);
  assert.deepEqual(ofType(pre.messages, 'RequestVote').map((m) => [m.to, m.preVote]), [['b', true], ['c', true]]);
  assert.deepEqual(pre.messagesAfterSync, []);
  a.handle(pre);

  const b = makeNode('b', ABC);
  b.raft.step({ ...pre.messages[0]!, to: 'b' });
  const answer = b.raft.ready();
  assert.equal(answer.mustSync, false);
  assert.deepEqual(ofType(answer.messages, 'RequestVoteResponse').map((m) => [m.preVote, m.voteGranted]), [[true, true]]);
  assert.deepEqual(answer.messagesAfterSync, []);
  b.handle(answer);
});

test('Figure 2: a Ready that changes term or vote sends nothing before its sync, not even what was made before the change', () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  const a = net.node('a');
  // A heartbeat round: AppendEntries in a's durable term, which could leave early on their own.
  a.raft.tick();
  // Then, before the runtime takes a Ready, a vote request of a higher term deposes a.
  a.raft.step(requestVote('c', 'a', 3, a.raft.lastIndex, a.raft.lastTerm));
  const rd = a.raft.ready();
  assert.deepEqual(rd.hardState, { currentTerm: 3, votedFor: 'c', commitIndex: a.raft.commitIndex });
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.messages, []);
  assert.deepEqual(
    rd.messagesAfterSync.map((m) => `${m.type} ${m.to} t${m.term}`),
    ['AppendEntries b t2', 'AppendEntries c t2', 'RequestVoteResponse c t3'],
  );
  a.handle(rd);
});

test('§7 a Ready that installs a snapshot must be synced, and the acknowledgement waits for it', () => {
  const c = makeNode('c', ABC, PAPER);
  const snapshot = { meta: { index: 7, term: 2, config: { voters: ABC, votersOutgoing: [], learners: [] } }, data: bytes(JSON.stringify(['x'])) };
  c.raft.step({ type: 'InstallSnapshot', from: 'a', to: 'c', term: 2, snapshot, seq: 1 });
  const rd = c.raft.ready();
  assert.equal(rd.snapshot, snapshot);
  assert.deepEqual(rd.entries, []);
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.messages, []);
  assert.deepEqual(ofType(rd.messagesAfterSync, 'InstallSnapshotResponse').map((m) => m.matchIndex), [7]);
  c.handle(rd);
  assert.deepEqual(c.machine, ['x']);
});

/**
 * Thesis §10.2.1 holds only for a leader whose term is durable. A single voter with a learner
 * elects itself, appends and replicates in ONE Ready, which also changes its term and vote. Were
 * that Ready's AppendEntries to leave before its sync, a crash could forget the term, and the
 * server lead the same term again with another log: the learner would hold two entries with the
 * same index and term and different commands (Log Matching, §5.3), and apply the wrong one.
 */
test('Figure 2: a single voter with a learner elects itself and replicates in one Ready: its AppendEntries wait for the sync that makes its term durable', () => {
  const config: Configuration = { voters: ['a'], votersOutgoing: [], learners: ['l'] };
  const a = makeNode('a', ['a'], { ...PAPER, state: bootstrapState(config) });
  const l = makeNode('l', ['a'], { ...PAPER, state: bootstrapState(config) });
  a.raft.campaign();
  assert.equal(a.raft.role, 'leader');
  a.raft.propose(bytes('first'));
  const rd = a.raft.ready();
  assert.deepEqual(rd.hardState, { currentTerm: 2, votedFor: 'a', commitIndex: 1 });
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.messages, [], 'nothing leaves before the term is durable');
  const early = ofType(rd.messagesAfterSync, 'AppendEntries');
  assert.deepEqual(early.map((m) => [m.to, m.term, m.entries.map((e) => e.index)]), [['l', 2, [2, 3]]]);

  // What a runtime that sent them anyway would risk: they reach the learner, then a crash
  // forgets the Ready, term and vote included.
  l.stepOut(early[0]!);
  a.crash();
  assert.equal(a.raft.currentTerm, 1, 'the term was never durable');
  a.raft.campaign();
  a.raft.propose(bytes('second'));
  const again = a.drain().messages.filter((m): m is Extract<Message, { type: 'AppendEntries' }> => m.type === 'AppendEntries' && m.entries.length > 0);
  assert.equal(a.raft.currentTerm, 2, 'it leads term 2 a second time');
  for (const m of again) l.stepOut(m);
  assert.equal(l.raft.termAt(3), a.raft.termAt(3), 'the same index and term...');
  assert.notEqual(text(l.raft.entryAt(3)!.data), text(a.raft.entryAt(3)!.data), '...with different commands');
});
