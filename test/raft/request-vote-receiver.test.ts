// The RequestVote receiver's rules (Figure 2, §5.1, §5.2, §5.4.1), one input at a time, with the
// exact response and hard state each input produces. PreVote and CheckQuorum are off here: they
// are thesis extensions with their own file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PAPER, makeNode, nodeFrom, requestVote, voteResponse } from './harness.js';

const ABC = ['a', 'b', 'c'];

test('§5.1 a RequestVote with a term below currentTerm is refused and answered with currentTerm', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 2, 3], currentTerm: 3 }, PAPER);
  const out = b.stepOut(requestVote('c', 'b', 2, 10, 2));
  assert.deepEqual(out.messages, [voteResponse('b', 'c', 3, false)]);
  assert.equal(out.hardState, null, 'nothing about the vote or the term changes');
  assert.equal(b.raft.currentTerm, 3);
  assert.equal(b.raft.votedFor, null);
});

test('§5.4.1 a server that has not voted grants a candidate whose log is as up to date as its own', () => {
  const b = makeNode('b', ABC, PAPER);
  b.raft.step(requestVote('c', 'b', 2, 1, 1));
  const rd = b.raft.ready();
  assert.deepEqual(rd.hardState, { currentTerm: 2, votedFor: 'c', commitIndex: 1 });
  assert.deepEqual(rd.messagesAfterSync, [voteResponse('b', 'c', 2, true)]);
  b.handle(rd);
  assert.equal(b.raft.votedFor, 'c');
});

test('§5.4.1 a candidate whose last entry has a lower term is refused even if its log is longer', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 1, 3], currentTerm: 3 }, PAPER);
  const out = b.stepOut(requestVote('c', 'b', 4, 9, 2));
  assert.deepEqual(out.messages, [voteResponse('b', 'c', 4, false)]);
  // §5.1: the higher term is still adopted, without a vote.
  assert.deepEqual(out.hardState, { currentTerm: 4, votedFor: null, commitIndex: 1 });
});

test('§5.4.1 with equal last terms, a candidate with a shorter log is refused', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 2, 2, 2], currentTerm: 2 }, PAPER);
  const out = b.stepOut(requestVote('c', 'b', 3, 3, 2));
  assert.deepEqual(out.messages, [voteResponse('b', 'c', 3, false)]);
  assert.equal(b.raft.votedFor, null);
});

test('§5.4.1 a candidate whose last entry has a higher term is granted even with a shorter log', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 1, 1, 1, 1], currentTerm: 2 }, PAPER);
  const out = b.stepOut(requestVote('c', 'b', 3, 2, 2));
  assert.deepEqual(out.messages, [voteResponse('b', 'c', 3, true)]);
  assert.deepEqual(out.hardState, { currentTerm: 3, votedFor: 'c', commitIndex: 1 });
});

test('§5.4.1 with equal last terms, a candidate with a log at least as long is granted', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 2, 2], currentTerm: 2 }, PAPER);
  const out = b.stepOut(requestVote('c', 'b', 3, 5, 2));
  assert.deepEqual(out.messages, [voteResponse('b', 'c', 3, true)]);
});

test('§5.2 each server votes for at most one candidate in a term', () => {
  const b = makeNode('b', ABC, PAPER);
  b.stepOut(requestVote('c', 'b', 2, 1, 1));
  const out = b.stepOut(requestVote('a', 'b', 2, 1, 1));
  assert.deepEqual(out.messages, [voteResponse('b', 'a', 2, false)]);
  assert.equal(out.hardState, null);
  assert.equal(b.raft.votedFor, 'c');
});

test('§5.2 a server grants again a repeated RequestVote from the candidate it voted for (votedFor = candidateId)', () => {
  const b = makeNode('b', ABC, PAPER);
  b.stepOut(requestVote('c', 'b', 2, 1, 1));
  const out = b.stepOut(requestVote('c', 'b', 2, 1, 1));
  assert.deepEqual(out.messages, [voteResponse('b', 'c', 2, true)]);
});

test('§5.2 a vote in a later term is free again', () => {
  const b = makeNode('b', ABC, PAPER);
  b.stepOut(requestVote('c', 'b', 2, 1, 1));
  const out = b.stepOut(requestVote('a', 'b', 3, 1, 1));
  assert.deepEqual(out.messages, [voteResponse('b', 'a', 3, true)]);
  assert.deepEqual(out.hardState, { currentTerm: 3, votedFor: 'a', commitIndex: 1 });
});

test('§5.2 a candidate has voted for itself and refuses another candidate of its term', () => {
  const a = makeNode('a', ABC, PAPER);
  a.raft.campaign();
  a.drain();
  const out = a.stepOut(requestVote('c', 'a', 2, 1, 1));
  assert.deepEqual(out.messages, [voteResponse('a', 'c', 2, false)]);
  assert.equal(a.raft.votedFor, 'a');
});

test('§5.2 granting a vote resets the election timer (Figure 2, Followers)', () => {
  const b = makeNode('b', ABC, { ...PAPER, electionTicks: 10 });
  // Votes every 9 ticks for 36 ticks: longer than any timeout (≤ 19), yet b never campaigns.
  for (let term = 2; term <= 5; term++) {
    for (let i = 0; i < 9; i++) b.raft.tick();
    assert.equal(b.raft.role, 'follower', `before term ${term}`);
    const out = b.stepOut(requestVote('c', 'b', term, 1, 1));
    assert.deepEqual(out.messages, [voteResponse('b', 'c', term, true)]);
  }
  for (let i = 0; i < 9; i++) b.raft.tick();
  assert.equal(b.raft.role, 'follower');
});

test('§5.4.1 a leader whose log is behind cannot be re-elected over the refusals of up-to-date voters', () => {
  // a's log ends at 2@2, b's and c's at 3@3: neither grants a's request.
  const b = nodeFrom('b', ABC, { terms: [1, 2, 3], currentTerm: 3 }, PAPER);
  const c = nodeFrom('c', ABC, { terms: [1, 2, 3], currentTerm: 3 }, PAPER);
  for (const voter of [b, c]) {
    const out = voter.stepOut(requestVote('a', voter.id, 4, 2, 2));
    assert.deepEqual(out.messages, [voteResponse(voter.id, 'a', 4, false)]);
  }
});
