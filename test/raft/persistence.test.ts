// Persistent state (Figure 2: "updated on stable storage before responding to RPCs"): which Ready
// carries what, and what survives a crash. The harness persists a Ready before sending its
// messages and checks, for every message, that the state it depends on is already stored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Network, PAPER, appendEntries, bytes, entry, makeNode, nodeFrom, ofType, requestVote, seededRandom, voteResponse } from './harness.js';

const ABC = ['a', 'b', 'c'];

test('Figure 2: a granted vote is in the hardState of the same Ready as the RequestVoteResponse', () => {
  const b = makeNode('b', ABC, PAPER);
  b.raft.step(requestVote('c', 'b', 4, 1, 1));
  const rd = b.raft.ready();
  assert.deepEqual(rd.messages, []);
  assert.deepEqual(rd.messagesAfterSync, [voteResponse('b', 'c', 4, true)]);
  assert.deepEqual(rd.hardState, { currentTerm: 4, votedFor: 'c', commitIndex: 1 });
  b.handle(rd);
});

test("Figure 2: a candidate's RequestVotes leave in the Ready that persists its new term and its own vote", () => {
  const a = makeNode('a', ABC, PAPER);
  a.raft.campaign();
  const rd = a.raft.ready();
  assert.deepEqual(rd.messages, [], 'nothing before the sync: they carry the new term');
  assert.equal(ofType(rd.messagesAfterSync, 'RequestVote').length, 2);
  assert.deepEqual(rd.hardState, { currentTerm: 2, votedFor: 'a', commitIndex: 1 });
  a.handle(rd);
});

test('Figure 2: a Ready must be synced when its hard state changes term or vote, and not when only commitIndex moved', () => {
  const b = makeNode('b', ABC, PAPER);
  b.raft.step(requestVote('c', 'b', 4, 1, 1));
  const vote = b.raft.ready();
  assert.equal(vote.mustSync, true, 'a new term and vote');
  b.handle(vote);

  const f = nodeFrom('f', ABC, { terms: [1, 2], currentTerm: 2 }, PAPER);
  f.raft.step(appendEntries('a', 'f', 2, 2, 2, [], 1));
  const heartbeat = f.raft.ready();
  assert.equal(heartbeat.mustSync, false, 'the term was already durable, and there is nothing else to write');
  f.handle(heartbeat);
  f.raft.step(appendEntries('a', 'f', 2, 2, 2, [], 2));
  const commitOnly = f.raft.ready();
  assert.deepEqual(commitOnly.hardState, { currentTerm: 2, votedFor: null, commitIndex: 2 });
  assert.equal(commitOnly.mustSync, false, 'only commitIndex moved');
  f.handle(commitOnly);
  f.raft.step(appendEntries('c', 'f', 3, 2, 2, [], 2));
  const newTerm = f.raft.ready();
  assert.equal(newTerm.mustSync, true, 'a new leader in a higher term');
  f.handle(newTerm);
});

test('Figure 2: entries a follower acknowledges are in the Ready of the acknowledgement', () => {
  const b = nodeFrom('b', ABC, { terms: [1], currentTerm: 2 }, PAPER);
  b.raft.step(appendEntries('a', 'b', 2, 1, 1, [entry(2, 2), entry(3, 2)], 1));
  const rd = b.raft.ready();
  assert.deepEqual(rd.entries, [entry(2, 2), entry(3, 2)]);
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.messages, [], 'an acknowledgement waits for the sync');
  const [ack] = ofType(rd.messagesAfterSync, 'AppendEntriesResponse');
  assert.deepEqual([ack?.success, ack?.matchIndex], [true, 3]);
  b.handle(rd);
});

test('Figure 2: entries received while a Ready is being persisted are acknowledged only in the Ready that persists them', () => {
  const b = nodeFrom('b', ABC, { terms: [1], currentTerm: 2 }, PAPER);
  b.raft.step(appendEntries('a', 'b', 2, 1, 1, [entry(2, 2)], 1));
  const first = b.raft.ready();
  // The runtime is syncing `first` when entry 3 arrives.
  b.raft.step(appendEntries('a', 'b', 2, 2, 2, [entry(3, 2)], 1));
  assert.ok(ofType(first.messagesAfterSync, 'AppendEntriesResponse').every((r) => r.matchIndex <= 2));
  b.handle(first);
  const second = b.raft.ready();
  assert.deepEqual(second.entries, [entry(3, 2)]);
  assert.deepEqual(ofType(second.messagesAfterSync, 'AppendEntriesResponse').map((r) => r.matchIndex), [3]);
  b.handle(second);
});

test('a crash that loses an unpersisted Ready loses its messages too: the vote never left, so the term is free', () => {
  const b = makeNode('b', ABC, PAPER);
  b.raft.step(requestVote('c', 'b', 2, 1, 1));
  const lost = b.raft.ready();
  assert.equal(ofType(lost.messagesAfterSync, 'RequestVoteResponse')[0]?.voteGranted, true);
  b.crash(); // before persisting: the response is never sent
  assert.equal(b.raft.currentTerm, 1);
  assert.equal(b.raft.votedFor, null);
  const out = b.stepOut(requestVote('a', 'b', 2, 1, 1));
  assert.deepEqual(out.messages, [voteResponse('b', 'a', 2, true)]);
});

test('a persisted vote survives a crash: the restarted server refuses another candidate of that term', () => {
  const b = makeNode('b', ABC, PAPER);
  b.stepOut(requestVote('c', 'b', 2, 1, 1));
  b.crash();
  assert.equal(b.raft.currentTerm, 2);
  assert.equal(b.raft.votedFor, 'c');
  const out = b.stepOut(requestVote('a', 'b', 2, 1, 1));
  assert.deepEqual(out.messages, [voteResponse('b', 'a', 2, false)]);
});

test('a restarted server recovers currentTerm, votedFor, its log and re-applies its committed entries in order', () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  net.raft('a').propose(bytes('x'));
  net.raft('a').propose(bytes('y'));
  net.settle();
  net.tick(1);
  const b = net.raft('b');
  const before = { term: b.currentTerm, vote: b.votedFor, last: b.lastIndex, terms: net.terms('b'), commit: b.commitIndex };
  assert.equal(before.commit, 4);
  net.crash('b');
  net.restart('b');
  const r = net.raft('b');
  assert.deepEqual({ term: r.currentTerm, vote: r.votedFor, last: r.lastIndex, terms: net.terms('b') }, { term: before.term, vote: before.vote, last: before.last, terms: before.terms });
  net.node('b').drain();
  assert.deepEqual(net.node('b').machine, ['x', 'y']);
  assert.deepEqual(net.node('b').applied.map((e) => e.index), [1, 2, 3, 4]);
});

test("a leader's proposal lost in a crash before its Ready was persisted never reaches a follower", () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  net.raft('a').propose(bytes('lost'));
  net.raft('a').ready(); // taken, never persisted
  net.crash('a');
  net.restart('a');
  net.settle();
  assert.equal(net.raft('a').lastIndex, 2);
  assert.equal(net.raft('b').lastIndex, 2);
  assert.equal(net.raft('c').lastIndex, 2);
});

test('a follower that crashes after acknowledging keeps the acknowledged entries, so the commit holds', () => {
  const net = new Network(ABC, PAPER);
  net.elect('a');
  net.dropWhere((m) => m.to === 'c' || m.from === 'c');
  net.raft('a').propose(bytes('x'));
  net.settle();
  assert.equal(net.raft('a').commitIndex, 3);
  net.crash('b');
  net.restart('b');
  assert.equal(net.raft('b').termAt(3), 2);
  assert.deepEqual(net.raft('b').entryAt(3)?.data, bytes('x'));
});

test('under crashes and restarts no message leaves before its state is stored, and applied states never diverge', () => {
  const ids = ['a', 'b', 'c', 'd', 'e'];
  for (let seed = 1; seed <= 6; seed++) {
    const random = seededRandom(seed * 7919);
    const net = new Network(ids, { seed });
    let proposals = 0;
    for (let t = 0; t < 240; t++) {
      net.tick(1);
      const [leader] = net.leaders();
      if (leader !== undefined && random() < 0.5) net.raft(leader).propose(bytes(`s${seed}-${proposals++}`));
      if (t % 40 === 20) {
        const victim = ids[Math.floor(random() * ids.length)]!;
        net.crash(victim);
        net.tick(Math.floor(random() * 25));
        net.restart(victim);
      }
    }
    net.tickUntil(() => net.leaders().length === 1, 200);
    net.tick(5);
    const machines = ids.map((id) => net.node(id).machine);
    const longest = machines.reduce((x, y) => (y.length > x.length ? y : x));
    for (const [i, m] of machines.entries()) assert.deepEqual(m, longest.slice(0, m.length), `seed ${seed}: ${ids[i]} diverged`);
    assert.ok(longest.length > 10, `seed ${seed}: only ${longest.length} entries applied`);
  }
});
