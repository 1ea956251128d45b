// Messages no correct server sends (Figure 2, §5.1–§5.4, §7, thesis §3.10, §4.2.2): each is
// dropped BEFORE it changes anything and counted in droppedMessages, and none throws. Engine
// style: one message in, then the exact state and outputs compared with what was there before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DROP_REASONS,
  InvalidConfigChangeError,
  MAX_INDEX,
  MAX_TERM,
  Raft,
  applyChanges,
  bootstrapState,
  encodeConfiguration,
  type Configuration,
  type DropReason,
  type Entry,
  type Message,
} from '../../src/raft/index.js';
import { Network, PAPER, appendEntries, bytes, configOf, entry, nodeFrom, requestVote, voteResponse, type TestNode } from './harness.js';

const ABC = ['a', 'b', 'c'];
const BEYOND_CODEC = 2 ** 53 - 1;

/** b follows a in term 2; its log is 1@1 2@2 3@2, all committed. */
function follower(): TestNode {
  const b = nodeFrom('b', ABC, { terms: [1, 2, 2], currentTerm: 2, commitIndex: 3 }, PAPER);
  b.stepOut(appendEntries('a', 'b', 2, 3, 2, [], 3));
  assert.equal(b.raft.leaderId, 'a');
  return b;
}

function stateOf(r: Raft): object {
  const terms: (number | undefined)[] = [];
  for (let i = 1; i <= r.lastIndex; i++) terms.push(r.termAt(i));
  return {
    term: r.currentTerm, vote: r.votedFor, role: r.role, leader: r.leaderId, commit: r.commitIndex,
    terms, config: r.config, removed: r.removed, snapshot: r.snapshotIndex,
  };
}

function zeroDrops(): Record<DropReason, number> {
  return Object.fromEntries(DROP_REASONS.map((k) => [k, 0])) as Record<DropReason, number>;
}

/** Steps `m` into `node`; asserts nothing changed, nothing came out, and one drop for `reason`. */
function assertDropped(node: TestNode, m: Message, reason: DropReason, what: string): void {
  const before = stateOf(node.raft);
  const drops = { ...node.raft.droppedMessages };
  const out = node.stepOut(m);
  assert.deepEqual(stateOf(node.raft), before, `${what}: state changed`);
  assert.deepEqual(out.messages, [], `${what}: answered`);
  assert.deepEqual(out.entries, [], `${what}: wrote entries`);
  assert.equal(out.hardState, null, `${what}: changed the hard state`);
  assert.deepEqual(node.raft.droppedMessages, { ...drops, [reason]: drops[reason] + 1 }, `${what}: not counted as ${reason}`);
}

const cfg = (c: object): Entry => ({ index: 4, term: 2, type: 'config', data: bytes(JSON.stringify(c)) });
const longId = 'x'.repeat(256);

const RV = requestVote('c', 'b', 3, 3, 2);
const AE = appendEntries('a', 'b', 2, 3, 2, [entry(4, 2)], 3);
const AER: Message = { type: 'AppendEntriesResponse', from: 'c', to: 'b', term: 2, success: true, matchIndex: 3, rejectedIndex: 0, conflictTerm: 0, conflictIndex: 0, seq: 0 };
const IS: Message = { type: 'InstallSnapshot', from: 'a', to: 'b', term: 2, seq: 1, snapshot: { meta: { index: 5, term: 2, config: configOf(ABC) }, data: bytes('x') } };
const ISR: Message = { type: 'InstallSnapshotResponse', from: 'c', to: 'b', term: 2, matchIndex: 3, seq: 0 };
const TN: Message = { type: 'TimeoutNow', from: 'a', to: 'b', term: 2 };
const RM: Message = { type: 'Removed', from: 'a', to: 'b', term: 2, configIndex: 1 };
const RVR = voteResponse('c', 'b', 2, false);

const with_ = (m: Message, fields: Record<string, unknown>): Message => ({ ...m, ...fields }) as unknown as Message;
const snap = (meta: Record<string, unknown>, data: unknown = bytes('x')): Message =>
  with_(IS, { snapshot: { meta: { index: 5, term: 2, config: configOf(ABC), ...meta }, data } });

const INVALID: [string, Message][] = [
  ...[RV, RVR, AE, AER, IS, ISR, TN, RM].map((m): [string, Message] => [`${m.type} of term 2^53 − 1`, with_(m, { term: BEYOND_CODEC })]),
  ['AppendEntries of term MAX_TERM + 1', with_(AE, { term: MAX_TERM + 1 })],
  ['RequestVote of term MAX_TERM + 1', with_(RV, { term: MAX_TERM + 1 })],
  ['a negative term', with_(AE, { term: -1 })],
  ['a fractional term', with_(AE, { term: 2.5 })],
  ['a NaN term', with_(AE, { term: Number.NaN })],
  ['a term that is a string', with_(AE, { term: '3' })],
  ['an AppendEntries of term 0', with_(AE, { term: 0, prevLogIndex: 0, prevLogTerm: 0, entries: [] })],
  ['an empty sender', with_(AE, { from: '' })],
  ['a sender that is this server', with_(AE, { from: 'b' })],
  ['a sender id the codec cannot carry', with_(AE, { from: longId })],
  ['a sender id with a lone surrogate', with_(AE, { from: 'a\ud800' })],
  ['a sender that is not a string', with_(AE, { from: 7 })],
  ['an unknown message type', with_(AE, { type: 'Hello' })],
  ['RequestVote with lastLogIndex past MAX_INDEX', with_(RV, { lastLogIndex: MAX_INDEX + 1 })],
  ['RequestVote with lastLogTerm above its term', with_(RV, { lastLogTerm: 4 })],
  ['RequestVote with a term at index 0', with_(RV, { lastLogIndex: 0, lastLogTerm: 1 })],
  ['a pre-vote that claims a transfer', with_(RV, { preVote: true, transfer: true })],
  ['RequestVote with a preVote that is not a boolean', with_(RV, { preVote: 1 })],
  ['RequestVoteResponse with voteGranted not a boolean', with_(RVR, { voteGranted: 'yes' })],
  ['AppendEntries with prevLogIndex past MAX_INDEX', with_(AE, { prevLogIndex: MAX_INDEX + 1, entries: [] })],
  ['AppendEntries with prevLogTerm above its term', with_(AE, { prevLogIndex: 5, prevLogTerm: 3, entries: [] })],
  ['AppendEntries with a term at index 0', with_(AE, { prevLogIndex: 0, prevLogTerm: 1, entries: [] })],
  ['AppendEntries with leaderCommit past the codec', with_(AE, { leaderCommit: BEYOND_CODEC })],
  ['AppendEntries with a negative seq', with_(AE, { seq: -1 })],
  ['AppendEntries with leaderStable past MAX_INDEX', with_(AE, { leaderStable: MAX_INDEX + 1 })],
  ['AppendEntries with a negative leaderStable', with_(AE, { leaderStable: -1 })],
  ['AppendEntries with a leaderStable that is not a whole number', with_(AE, { leaderStable: 2.5 })],
  ['AppendEntries with a leaderStable that is not a number', with_(AE, { leaderStable: '9' })],
  ['AppendEntries whose entries are not an array', with_(AE, { entries: 'entries' })],
  ['AppendEntries whose entries leave a gap', with_(AE, { entries: [entry(4, 2), entry(6, 2)] })],
  ['AppendEntries whose entries repeat an index', with_(AE, { entries: [entry(4, 2), entry(4, 2)] })],
  ['AppendEntries whose entries do not start at prevLogIndex + 1', with_(AE, { entries: [entry(5, 2)] })],
  ['AppendEntries whose entry terms decrease', with_(AE, { term: 3, entries: [entry(4, 3), entry(5, 2)] })],
  ['AppendEntries with an entry newer than its term', with_(AE, { entries: [entry(4, 3)] })],
  ['AppendEntries with an entry older than prevLogTerm', with_(AE, { entries: [entry(4, 1)] })],
  ['AppendEntries with an entry of term 0', with_(AE, { prevLogIndex: 0, prevLogTerm: 0, entries: [entry(1, 0)] })],
  ['AppendEntries past MAX_INDEX', with_(AE, { prevLogIndex: MAX_INDEX, prevLogTerm: 2, entries: [entry(MAX_INDEX + 1, 2)] })],
  ['AppendEntries with an unknown entry type', with_(AE, { entries: [{ ...entry(4, 2), type: 'bogus' }] })],
  ['AppendEntries with entry data that is not bytes', with_(AE, { entries: [{ ...entry(4, 2), data: 'x' }] })],
  ['AppendEntries with a config entry that is not JSON', with_(AE, { entries: [{ ...entry(4, 2), type: 'config' }] })],
  ['AppendEntries with a config entry without voters', with_(AE, { entries: [cfg({ voters: [], votersOutgoing: [], learners: ['a'] })] })],
  ['AppendEntries with a config entry listing a voter twice', with_(AE, { entries: [cfg({ voters: ['a', 'a', 'b'] })] })],
  ['AppendEntries with a config entry whose voter is a learner', with_(AE, { entries: [cfg({ voters: ['a', 'b'], learners: ['b'] })] })],
  ['AppendEntries with a config entry holding an id the codec cannot carry', with_(AE, { entries: [cfg({ voters: ['a', longId] })] })],
  ['AppendEntries with a config entry that is not an object', with_(AE, { entries: [cfg(['a'])] })],
  ['AppendEntriesResponse: a success with a conflict hint', with_(AER, { conflictTerm: 1 })],
  ['AppendEntriesResponse: a rejection with a matchIndex', with_(AER, { success: false, matchIndex: 3 })],
  ['AppendEntriesResponse with conflictTerm above its term', with_(AER, { success: false, matchIndex: 0, rejectedIndex: 3, conflictTerm: 3, conflictIndex: 2 })],
  ['AppendEntriesResponse with conflictIndex past MAX_INDEX + 1', with_(AER, { success: false, matchIndex: 0, rejectedIndex: 3, conflictTerm: 1, conflictIndex: MAX_INDEX + 2 })],
  ['AppendEntriesResponse with matchIndex past MAX_INDEX', with_(AER, { matchIndex: MAX_INDEX + 1 })],
  ['InstallSnapshot of a term above its own', snap({ term: 3 })],
  ['InstallSnapshot at index 0', snap({ index: 0, term: 0 })],
  ['InstallSnapshot past MAX_INDEX', snap({ index: MAX_INDEX + 1 })],
  ['InstallSnapshot with no voters', snap({ config: { voters: [], votersOutgoing: [], learners: ['a'] } })],
  ['InstallSnapshot with an invalid member id', snap({ config: { voters: ['a', ''], votersOutgoing: [], learners: [] } })],
  ['InstallSnapshot with a voter listed twice', snap({ config: { voters: ['a', 'a'], votersOutgoing: [], learners: [] } })],
  ['InstallSnapshot with no configuration', snap({ config: null })],
  ['InstallSnapshot with data that is not bytes', snap({}, 'data')],
  ['InstallSnapshot without metadata', with_(IS, { snapshot: { meta: null, data: bytes('x') } })],
  ['InstallSnapshotResponse with matchIndex past the codec', with_(ISR, { matchIndex: BEYOND_CODEC })],
  ['Removed naming index 0', with_(RM, { configIndex: 0 })],
  ['Removed naming an index past MAX_INDEX', with_(RM, { configIndex: MAX_INDEX + 1 })],
];

for (const [what, m] of INVALID) {
  test(`Figure 2 a message no server sends is dropped and counted, changing nothing: ${what}`, () => {
    assertDropped(follower(), m, 'invalid', what);
  });
}

test('§5.1 a message addressed to another server is dropped and counted, changing nothing', () => {
  assertDropped(follower(), with_(AE, { to: 'c', term: 3 }), 'misaddressed', 'misaddressed');
});

test('§5.1 a message of term MAX_TERM is valid: the follower adopts it', () => {
  const b = follower();
  b.stepOut(appendEntries('x', 'b', MAX_TERM, 3, 2, [], 3));
  assert.deepEqual([b.raft.currentTerm, b.raft.leaderId], [MAX_TERM, 'x']);
  assert.deepEqual(b.raft.droppedMessages, zeroDrops());
});

test('§5.2 Election Safety: an AppendEntries of the current term from a server other than its leader is dropped (not adopted)', () => {
  const b = follower();
  assertDropped(b, appendEntries('c', 'b', 2, 3, 2, [entry(4, 2, 'forged')], 3), 'not-leader', 'AppendEntries');
  assertDropped(b, with_(IS, { from: 'c' }), 'not-leader', 'InstallSnapshot');
  assertDropped(b, with_(RM, { from: 'c' }), 'not-leader', 'Removed');
  // The leader it follows is still heard.
  const out = b.stepOut(appendEntries('a', 'b', 2, 3, 2, [entry(4, 2)], 3));
  assert.equal(out.entries.length, 1);
});

test('§5.2 Election Safety: a leader drops an AppendEntries, InstallSnapshot or Removed of its own term', () => {
  const a = nodeFrom('a', ABC, { terms: [1], currentTerm: 1 }, PAPER);
  a.raft.campaign();
  a.drain();
  a.stepOut(voteResponse('b', 'a', 2, true));
  assert.equal(a.raft.role, 'leader');
  assertDropped(a, appendEntries('c', 'a', 2, 1, 1, [entry(2, 2)], 1), 'not-leader', 'AppendEntries');
  assertDropped(a, with_(IS, { from: 'c', to: 'a' }), 'not-leader', 'InstallSnapshot');
  assertDropped(a, with_(RM, { from: 'c', to: 'a' }), 'not-leader', 'Removed');
});

test('§5.2 a candidate still steps down for an AppendEntries of its term: it knew no leader yet', () => {
  const b = nodeFrom('b', ABC, { terms: [1], currentTerm: 1 }, PAPER);
  b.raft.campaign();
  b.drain();
  assert.equal(b.raft.role, 'candidate');
  b.stepOut(appendEntries('a', 'b', 2, 1, 1, [], 1));
  assert.deepEqual([b.raft.role, b.raft.leaderId], ['follower', 'a']);
  assert.deepEqual(b.raft.droppedMessages, zeroDrops());
});

test('thesis §3.10 TimeoutNow is honoured only from the leader of the current term', () => {
  const b = follower();
  assertDropped(b, with_(TN, { from: 'c' }), 'not-leader', 'from another server');
  assertDropped(b, with_(TN, { term: 3 }), 'not-leader', 'of a newer term (which would have moved the term)');
  const out = b.stepOut(TN);
  assert.equal(b.raft.role, 'candidate', 'from the leader: campaign at once');
  assert.equal(b.raft.currentTerm, 3);
  assert.ok(out.messages.some((m) => m.type === 'RequestVote'));
});

test('thesis §3.10 a late TimeoutNow at a pre-candidate of the same term is legitimate, and ignored', () => {
  // The leader's TimeoutNow can arrive after the target stopped hearing it and began a pre-vote
  // (§9.6): the term is unchanged and no other leader is known, so nothing is contradicted.
  const b = nodeFrom('b', ABC, { terms: [1, 2, 2], currentTerm: 2, commitIndex: 3 }, { preVote: true, checkQuorum: false });
  b.stepOut(appendEntries('a', 'b', 2, 3, 2, [], 3));
  b.raft.campaign();
  b.drain();
  assert.deepEqual([b.raft.role, b.raft.currentTerm, b.raft.leaderId], ['pre-candidate', 2, null]);
  const out = b.stepOut(TN);
  assert.deepEqual(b.raft.droppedMessages, zeroDrops(), 'not counted as a second leader');
  assert.deepEqual([b.raft.role, b.raft.currentTerm], ['pre-candidate', 2], 'a pre-candidate ignores it');
  assert.deepEqual(out.messages, []);
  // Another server's TimeoutNow of the term is still dropped, and one from a leader of a newer term.
  assertDropped(b, with_(TN, { term: 3 }), 'not-leader', 'of a newer term');
});

test('thesis §4.2.2 a Removed of a newer term, or naming an entry this server lacks or that lists it, is dropped', () => {
  const b = follower();
  assertDropped(b, with_(RM, { term: 3 }), 'not-leader', 'newer term');
  assertDropped(b, with_(RM, { configIndex: 9 }), 'invalid', 'an entry past our log');
  assertDropped(b, with_(RM, { configIndex: 1 }), 'invalid', 'a configuration that lists us');
  assert.equal(b.raft.removed, null);
});

test('§5.4.3 Leader Completeness: an AppendEntries that disagrees with committed entries is dropped, never thrown on', () => {
  const b = follower();
  // A "leader" of term 3 whose log has 2@3 where b committed 2@2.
  assertDropped(b, appendEntries('c', 'b', 3, 1, 1, [entry(2, 3), entry(3, 3), entry(4, 3)], 4), 'contradicts-committed', 'entries');
  assertDropped(b, appendEntries('c', 'b', 3, 2, 1, [entry(3, 3)], 3), 'contradicts-committed', 'prevLogTerm');
  assertDropped(b, with_(IS, { from: 'c', term: 3, snapshot: { meta: { index: 2, term: 1, config: configOf(ABC) }, data: bytes('x') } }), 'contradicts-committed', 'snapshot');
  // A stale leader's AppendEntries may disagree: it is refused by §5.1, not counted.
  const out = b.stepOut(appendEntries('c', 'b', 1, 1, 1, [entry(2, 1)], 1));
  assert.deepEqual(out.messages.map((m) => [m.type, m.term]), [['AppendEntriesResponse', 2]]);
  assert.equal(b.raft.droppedMessages['contradicts-committed'], 3);
});

test('§5.3 a leader ignores responses from servers it keeps no progress for, and answers to rounds or indexes it never sent', () => {
  const a = nodeFrom('a', ABC, { terms: [1], currentTerm: 1 }, PAPER);
  a.raft.campaign();
  a.drain();
  a.stepOut(voteResponse('b', 'a', 2, true));
  assert.equal(a.raft.role, 'leader');
  const ok = (from: string, matchIndex: number, seq = 0): Message => with_(AER, { from, to: 'a', matchIndex, seq });
  assertDropped(a, ok('x', 2), 'stale-sender', 'a non-member');
  assertDropped(a, with_(ISR, { from: 'x', to: 'a', matchIndex: 2 }), 'stale-sender', 'a non-member snapshot answer');
  assertDropped(a, ok('b', 3), 'invalid', 'an index past the leader log');
  assertDropped(a, ok('b', 2, 99), 'invalid', 'a round never begun');
  assert.equal(a.raft.commitIndex, 1);
  a.stepOut(ok('b', 2));
  assert.equal(a.raft.commitIndex, 2, 'the real answer commits');
});

test('§5.2 a follower fed messages at the term bound still elects a leader, and no message ever carries a term past MAX_TERM', () => {
  const net = new Network(ABC, { preVote: true, checkQuorum: true, electionTicks: 10 });
  net.elect('a');
  // x is no server of this network: answers to it are lost.
  const toX = (m: Message): boolean => m.to === 'x';
  net.dropWhere(toX);
  // Beyond the bound: dropped everywhere.
  for (const to of ABC) {
    for (const term of [BEYOND_CODEC, MAX_TERM + 1]) {
      net.raft(to).step(appendEntries('x', to, term, 0, 0, [], 0));
      net.raft(to).step(requestVote('x', to, term, 0, 0));
    }
    assert.equal(net.raft(to).droppedMessages.invalid, 4);
  }
  // One below the bound: adopted, from a leader that then falls silent.
  for (const to of ABC) net.raft(to).step(appendEntries('x', to, MAX_TERM - 1, 0, 0, [], 0));
  net.settle();
  assert.ok(ABC.every((id) => net.raft(id).currentTerm === MAX_TERM - 1));
  net.tickUntil(() => net.leaders().length === 1, 500);
  const leader = net.leaders()[0]!;
  assert.equal(net.raft(leader).currentTerm, MAX_TERM);
  net.raft(leader).propose(bytes('still writable'));
  net.tick(3);
  assert.ok(ABC.every((id) => net.node(id).machine.includes('still writable')));
  // At MAX_TERM nobody can stand again: with the leader gone the others stay followers.
  net.crash(leader);
  net.heal();
  net.dropWhere(toX);
  net.tick(200);
  for (const id of ABC) {
    if (id === leader) continue;
    assert.equal(net.raft(id).role, 'follower');
    assert.equal(net.raft(id).currentTerm, MAX_TERM);
  }
  const over = net.sent.filter((m) => m.term > MAX_TERM);
  assert.deepEqual(over, [], 'no message past MAX_TERM');
});

test('§5.3 a leader refuses proposals past MAX_INDEX, and a server whose log is full never campaigns', () => {
  const config = configOf(['a']);
  const near = (lastIndex: number): Raft =>
    new Raft(
      { id: 'a', random: () => 0.5 },
      { hardState: { currentTerm: 2, votedFor: null, commitIndex: lastIndex }, snapshot: { index: lastIndex, term: 2, config }, entries: [], applied: lastIndex },
    );
  const r = near(MAX_INDEX - 2);
  r.campaign();
  assert.equal(r.role, 'leader');
  assert.equal(r.lastIndex, MAX_INDEX - 1, 'the no-op (§8)');
  assert.equal(r.propose(bytes('last')), MAX_INDEX);
  assert.throws(() => r.propose(bytes('one too many')), /largest index/);
  const full = near(MAX_INDEX);
  full.campaign();
  assert.equal(full.role, 'follower');
});

test('thesis §4.1 a configuration change or founding configuration with an id the codec cannot carry is refused', () => {
  const current: Configuration = configOf(ABC);
  for (const id of ['', longId, 'a\udc00']) {
    assert.throws(() => applyChanges(current, [{ type: 'add-learner', id }]), InvalidConfigChangeError);
  }
  assert.throws(() => bootstrapState(configOf(['a', 'a'])), /twice/);
  assert.throws(() => bootstrapState(configOf([])), /no voters/);
  assert.ok(encodeConfiguration(current).length > 0);
});
