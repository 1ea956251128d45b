// Leader election (§5.1, §5.2, §8 of the Raft paper): timers, candidates, terms, the no-op.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Network,
  PAPER,
  appendEntries,
  byRecipient,
  makeNode,
  ofType,
  requestVote,
  voteResponse,
} from './harness.js';

const ABC = ['a', 'b', 'c'];
const FIVE = ['a', 'b', 'c', 'd', 'e'];

/** Ticks until the node leaves the follower role; the number of ticks it took. */
function ticksToCampaign(node: ReturnType<typeof makeNode>, max = 1000): number {
  for (let i = 1; i <= max; i++) {
    node.raft.tick();
    if (node.raft.role !== 'follower') return i;
  }
  throw new Error('never campaigned');
}

test('§5.2 a follower that hears from no leader for an election timeout starts an election', () => {
  const a = makeNode('a', ABC, { ...PAPER, electionTicks: 10 });
  for (let i = 0; i < 19; i++) a.raft.tick();
  const out = a.drain();
  assert.equal(a.raft.role, 'candidate');
  assert.equal(a.raft.currentTerm, 2);
  assert.deepEqual(out.hardState, { currentTerm: 2, votedFor: 'a', commitIndex: 1 });
  assert.deepEqual(byRecipient(ofType(out.messages, 'RequestVote')), [requestVote('a', 'b', 2, 1, 1), requestVote('a', 'c', 2, 1, 1)]);
});

test('§5.2 the election timeout is drawn at random from [electionTicks, 2 × electionTicks)', () => {
  const seen = new Set<number>();
  for (let seed = 0; seed < 200; seed++) {
    const a = makeNode('a', ABC, { ...PAPER, electionTicks: 10, seed });
    const ticks = ticksToCampaign(a);
    assert.ok(ticks >= 10 && ticks < 20, `seed ${seed}: campaigned after ${ticks} ticks`);
    seen.add(ticks);
  }
  // Randomized: 200 seeds over 10 possible values must not collapse onto a few of them.
  assert.ok(seen.size >= 8, `only ${[...seen].join(',')} seen`);
});

test('§5.2 a follower that keeps receiving AppendEntries from the leader never times out', () => {
  const b = makeNode('b', ABC, { ...PAPER, electionTicks: 10 });
  // 9 ticks between heartbeats, 45 ticks in all: far beyond the longest timeout (19 ticks).
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 9; i++) b.raft.tick();
    b.stepOut(appendEntries('a', 'b', 1, 1, 1, [], 1));
    assert.equal(b.raft.role, 'follower', `round ${round}`);
  }
  assert.equal(b.raft.currentTerm, 1);
  assert.equal(b.raft.leaderId, 'a');
});

test('§5.2 a candidate increments currentTerm, votes for itself and sends RequestVote to every other server', () => {
  const a = makeNode('a', FIVE, PAPER);
  a.raft.campaign();
  const rd = a.raft.ready();
  assert.equal(a.raft.role, 'candidate');
  assert.deepEqual(rd.hardState, { currentTerm: 2, votedFor: 'a', commitIndex: 1 });
  assert.deepEqual(
    byRecipient(rd.messagesAfterSync),
    ['b', 'c', 'd', 'e'].map((to) => requestVote('a', to, 2, 1, 1)),
  );
  a.handle(rd);
});

test('§5.2 a candidate that receives votes from a majority becomes leader', () => {
  const a = makeNode('a', FIVE, PAPER);
  a.raft.campaign();
  a.drain();
  a.stepOut(voteResponse('b', 'a', 2, true));
  assert.equal(a.raft.role, 'candidate', 'two votes of five are not a majority');
  const out = a.stepOut(voteResponse('c', 'a', 2, true));
  assert.equal(a.raft.role, 'leader');
  assert.equal(a.raft.leaderId, 'a');
  assert.equal(a.raft.currentTerm, 2);
  assert.deepEqual(out.softState, { role: 'leader', leaderId: 'a' });
});

test('§5.2 a vote counts once: a repeated grant from the same voter does not make a majority', () => {
  const a = makeNode('a', FIVE, PAPER);
  a.raft.campaign();
  a.drain();
  a.stepOut(voteResponse('b', 'a', 2, true));
  a.stepOut(voteResponse('b', 'a', 2, true));
  a.stepOut(voteResponse('b', 'a', 2, true));
  assert.equal(a.raft.role, 'candidate');
});

test('§5.2 refusals do not make a candidate leader', () => {
  const a = makeNode('a', ABC, PAPER);
  a.raft.campaign();
  a.drain();
  a.stepOut(voteResponse('b', 'a', 2, false));
  a.stepOut(voteResponse('c', 'a', 2, false));
  assert.notEqual(a.raft.role, 'leader');
  assert.equal(a.raft.currentTerm, 2);
});

test('§5.2 a candidate that receives AppendEntries from a leader of its own term becomes a follower', () => {
  const a = makeNode('a', ABC, PAPER);
  a.raft.campaign();
  a.drain();
  const out = a.stepOut(appendEntries('b', 'a', 2, 1, 1, [], 1));
  assert.equal(a.raft.role, 'follower');
  assert.equal(a.raft.currentTerm, 2);
  assert.equal(a.raft.leaderId, 'b');
  const [response] = ofType(out.messages, 'AppendEntriesResponse');
  assert.equal(response?.success, true);
  assert.equal(response?.to, 'b');
});

test('§5.2 a candidate whose election times out starts a new election in the next term', () => {
  const a = makeNode('a', ABC, { ...PAPER, electionTicks: 10 });
  a.raft.campaign();
  a.drain();
  for (let i = 0; i < 19; i++) a.raft.tick();
  const out = a.drain();
  assert.equal(a.raft.role, 'candidate');
  assert.equal(a.raft.currentTerm, 3);
  assert.deepEqual(out.hardState, { currentTerm: 3, votedFor: 'a', commitIndex: 1 });
  assert.deepEqual(byRecipient(ofType(out.messages, 'RequestVote')), [requestVote('a', 'b', 3, 1, 1), requestVote('a', 'c', 3, 1, 1)]);
});

test('§5.2 a candidate ignores votes granted in an earlier term', () => {
  const a = makeNode('a', ABC, { ...PAPER, electionTicks: 10 });
  a.raft.campaign();
  a.drain();
  for (let i = 0; i < 19; i++) a.raft.tick();
  a.drain();
  assert.equal(a.raft.currentTerm, 3);
  a.stepOut(voteResponse('b', 'a', 2, true));
  assert.equal(a.raft.role, 'candidate', 'a term-2 vote must not elect a term-3 candidate');
});

test('§8 a new leader appends a no-op entry of its term and sends it to every follower', () => {
  const a = makeNode('a', ABC, PAPER);
  a.raft.campaign();
  a.drain();
  const out = a.stepOut(voteResponse('b', 'a', 2, true));
  assert.equal(a.raft.role, 'leader');
  assert.deepEqual(out.entries, [{ index: 2, term: 2, type: 'normal', data: new Uint8Array(0) }]);
  assert.equal(a.raft.lastIndex, 2);
  const appends = byRecipient(ofType(out.messages, 'AppendEntries'));
  assert.deepEqual(appends.map((m) => m.to), ['b', 'c']);
  for (const m of appends) {
    assert.equal(m.term, 2);
    // Whatever the leader probes with, the no-op must be (or follow) the entries it sends.
    if (m.entries.length > 0) assert.deepEqual(m.entries[m.entries.length - 1], out.entries[0]);
    assert.equal(m.prevLogIndex + m.entries.length <= 2, true);
  }
});

test('§5.2 a leader sends empty AppendEntries as heartbeats once per heartbeat interval', () => {
  const net = new Network(ABC, { ...PAPER, heartbeatTicks: 3 });
  net.elect('a');
  const before = net.trace.length;
  net.tick(30);
  const toB = net.trace.slice(before).filter((line) => line.startsWith('a->b AppendEntries'));
  assert.ok(toB.every((line) => line.includes(' n=0 ')), toB.join('\n'));
  const heartbeats = toB.length;
  assert.equal(heartbeats, 10);
  assert.equal(net.raft('a').role, 'leader');
});

test('§5.2 a leader sends no heartbeat before a heartbeat interval has passed', () => {
  const a = makeNode('a', ABC, { ...PAPER, heartbeatTicks: 5 });
  a.raft.campaign();
  a.drain();
  a.stepOut(voteResponse('b', 'a', 2, true));
  for (let i = 0; i < 4; i++) {
    a.raft.tick();
    assert.deepEqual(ofType(a.drain().messages, 'AppendEntries'), [], `tick ${i + 1}`);
  }
});

test('§5.1 a leader that receives a response with a higher term becomes a follower in that term', () => {
  const a = makeNode('a', ABC, PAPER);
  a.raft.campaign();
  a.drain();
  a.stepOut(voteResponse('b', 'a', 2, true));
  const out = a.stepOut({
    type: 'AppendEntriesResponse', from: 'c', to: 'a', term: 7, success: false,
    matchIndex: 0, rejectedIndex: 1, conflictTerm: 0, conflictIndex: 0, seq: 0,
  });
  assert.equal(a.raft.role, 'follower');
  assert.equal(a.raft.currentTerm, 7);
  assert.equal(a.raft.votedFor, null);
  assert.deepEqual(out.hardState, { currentTerm: 7, votedFor: null, commitIndex: 1 });
});

test('§5.1 a candidate that sees a higher term in a RequestVote becomes a follower in that term', () => {
  const a = makeNode('a', ABC, PAPER);
  a.raft.campaign();
  a.drain();
  a.stepOut(requestVote('c', 'a', 5, 1, 1));
  assert.equal(a.raft.role, 'follower');
  assert.equal(a.raft.currentTerm, 5);
});

test('§5.1 a leader receiving AppendEntries from a leader of a higher term steps down to it', () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  const a = net.node('a');
  const out = a.stepOut(appendEntries('b', 'a', 9, 2, 2, [], 2));
  assert.equal(a.raft.role, 'follower');
  assert.equal(a.raft.currentTerm, 9);
  assert.equal(a.raft.leaderId, 'b');
  assert.equal(ofType(out.messages, 'AppendEntriesResponse')[0]?.term, 9);
});

test('§5.1 a stale-term AppendEntries does not depose a candidate', () => {
  const a = makeNode('a', ABC, PAPER);
  a.raft.campaign();
  a.drain();
  const out = a.stepOut(appendEntries('b', 'a', 1, 1, 1, [], 1));
  assert.equal(a.raft.role, 'candidate');
  assert.equal(a.raft.currentTerm, 2);
  const responses = ofType(out.messages, 'AppendEntriesResponse');
  for (const r of responses) assert.deepEqual([r.term, r.success], [2, false]);
});

test('§5.2 the winner of an election is the only leader of its term, and the others follow it', () => {
  const net = new Network(FIVE, { seed: 3 });
  net.tickUntil(() => net.leaders().length === 1);
  const [leader] = net.leaders();
  const term = net.raft(leader!).currentTerm;
  net.tick(5);
  for (const id of FIVE) {
    assert.equal(net.raft(id).currentTerm, term);
    assert.equal(net.raft(id).leaderId, leader);
  }
});
