// The AppendEntries receiver's rules (Figure 2, §5.1, §5.3): one request in, the exact response,
// persisted entries and commit out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppendEntriesResponse } from '../../src/raft/index.js';
import { PAPER, appendEntries, entry, nodeFrom, ofType } from './harness.js';
import type { Output } from './harness.js';

const ABC = ['a', 'b', 'c'];

function response(out: Output): AppendEntriesResponse {
  const rs = ofType(out.messages, 'AppendEntriesResponse');
  assert.equal(rs.length, 1, `one response expected, got ${rs.length}`);
  return rs[0]!;
}

function rejection(r: AppendEntriesResponse): object {
  return { term: r.term, success: r.success, rejectedIndex: r.rejectedIndex, conflictTerm: r.conflictTerm, conflictIndex: r.conflictIndex };
}

test('§5.1 an AppendEntries with a term below currentTerm is refused with currentTerm and changes nothing', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 2, 3], currentTerm: 3 }, PAPER);
  const out = b.stepOut(appendEntries('a', 'b', 2, 3, 2, [entry(4, 2)], 3));
  const r = response(out);
  assert.deepEqual([r.to, r.term, r.success], ['a', 3, false]);
  assert.deepEqual(out.entries, []);
  assert.equal(out.hardState, null);
  assert.equal(b.raft.lastIndex, 3);
  assert.equal(b.raft.commitIndex, 1);
  assert.notEqual(b.raft.leaderId, 'a');
});

test('§5.3 with no entry at prevLogIndex the follower refuses, hinting conflictTerm 0 and conflictIndex lastIndex + 1', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 1], currentTerm: 1 }, PAPER);
  const out = b.stepOut(appendEntries('a', 'b', 2, 5, 2, [entry(6, 2)], 5));
  assert.deepEqual(rejection(response(out)), { term: 2, success: false, rejectedIndex: 5, conflictTerm: 0, conflictIndex: 3 });
  assert.equal(b.raft.lastIndex, 2);
  assert.equal(b.raft.commitIndex, 1, 'leaderCommit is not applied to an unverified log');
});

test('§5.3 with another term at prevLogIndex the follower refuses, hinting that term and its first index', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 2, 2, 2, 3], currentTerm: 3 }, PAPER);
  const out = b.stepOut(appendEntries('a', 'b', 4, 4, 3, [entry(5, 4)], 4));
  assert.deepEqual(rejection(response(out)), { term: 4, success: false, rejectedIndex: 4, conflictTerm: 2, conflictIndex: 2 });
  assert.deepEqual(out.entries, [], 'a refused request writes nothing');
  assert.equal(b.raft.termAt(5), 3);
});

test('§5.3 a conflicting entry and all that follow it are deleted before the new entries are appended', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 1, 2, 2], currentTerm: 2 }, PAPER);
  const out = b.stepOut(appendEntries('a', 'b', 3, 2, 1, [entry(3, 3)], 1));
  assert.deepEqual(out.entries, [entry(3, 3)]);
  assert.equal(b.raft.lastIndex, 3);
  assert.equal(b.raft.termAt(3), 3);
  assert.equal(b.raft.termAt(4), undefined);
  assert.deepEqual([response(out).success, response(out).matchIndex], [true, 3]);
  assert.equal(b.store.lastIndex, 3, 'the stored log was truncated too');
});

test('§5.3 a stale, shorter AppendEntries arriving after a longer one does not truncate the matching entries', () => {
  const b = nodeFrom('b', ABC, { terms: [1], currentTerm: 2 }, PAPER);
  b.stepOut(appendEntries('a', 'b', 2, 1, 1, [entry(2, 2), entry(3, 2), entry(4, 2)], 1));
  const out = b.stepOut(appendEntries('a', 'b', 2, 1, 1, [entry(2, 2)], 1));
  assert.equal(b.raft.lastIndex, 4);
  assert.equal(b.raft.termAt(4), 2);
  // Re-writing entry 2 would make storage truncate 3 and 4 behind the core's back.
  assert.deepEqual(out.entries, []);
  assert.equal(b.store.lastIndex, 4);
  const r = response(out);
  assert.equal(r.success, true);
  assert.ok(r.matchIndex >= 2 && r.matchIndex <= 4, `matchIndex ${r.matchIndex}`);
});

test('§5.3 only the entries not already in the log are appended', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 2, 2], currentTerm: 2 }, PAPER);
  const out = b.stepOut(appendEntries('a', 'b', 2, 1, 1, [entry(2, 2), entry(3, 2), entry(4, 2)], 1));
  assert.deepEqual(out.entries, [entry(4, 2)]);
  assert.equal(response(out).matchIndex, 4);
});

test('§5.3 a successful AppendEntries is acknowledged with matchIndex = prevLogIndex + entries, echoing the term and seq', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 2], currentTerm: 2 }, PAPER);
  const out = b.stepOut(appendEntries('a', 'b', 2, 2, 2, [entry(3, 2), entry(4, 2)], 1, 17));
  const r = response(out);
  assert.deepEqual(
    { from: r.from, to: r.to, term: r.term, success: r.success, matchIndex: r.matchIndex, seq: r.seq },
    { from: 'b', to: 'a', term: 2, success: true, matchIndex: 4, seq: 17 },
  );
  assert.deepEqual(out.entries, [entry(3, 2), entry(4, 2)]);
});

test('§5.3 commitIndex = min(leaderCommit, index of last new entry)', () => {
  const ahead = nodeFrom('b', ABC, { terms: [1], currentTerm: 2 }, PAPER);
  ahead.stepOut(appendEntries('a', 'b', 2, 1, 1, [entry(2, 2), entry(3, 2)], 5));
  assert.equal(ahead.raft.commitIndex, 3, 'leaderCommit 5 is capped by the last new entry, 3');

  const behind = nodeFrom('b', ABC, { terms: [1], currentTerm: 2 }, PAPER);
  behind.stepOut(appendEntries('a', 'b', 2, 1, 1, [entry(2, 2), entry(3, 2)], 2));
  assert.equal(behind.raft.commitIndex, 2, 'leaderCommit 2 is below the last new entry');
});

test('§5.3 a heartbeat commits no further than the entries it verified', () => {
  // b's entry 3 is of term 2, from an old leader; the new leader's entry 3 may differ.
  const b = nodeFrom('b', ABC, { terms: [1, 1, 2], currentTerm: 2 }, PAPER);
  const out = b.stepOut(appendEntries('a', 'b', 3, 2, 1, [], 3));
  assert.equal(b.raft.commitIndex, 2);
  assert.deepEqual(out.committed.map((e) => e.index), [2]);
});

test('§5.3 commitIndex never moves backwards', () => {
  const b = nodeFrom('b', ABC, { terms: [1, 2, 2, 2], currentTerm: 2, commitIndex: 3 }, PAPER);
  b.stepOut(appendEntries('a', 'b', 2, 1, 1, [], 1));
  assert.equal(b.raft.commitIndex, 3);
});

test('§5.3 newly committed entries are handed to the state machine in log order', () => {
  const b = nodeFrom('b', ABC, { terms: [1], currentTerm: 2 }, PAPER);
  const out = b.stepOut(appendEntries('a', 'b', 2, 1, 1, [entry(2, 2), entry(3, 2), entry(4, 2)], 4));
  assert.deepEqual(out.committed, [entry(2, 2), entry(3, 2), entry(4, 2)]);
  assert.deepEqual(b.machine, ['2@2', '3@2', '4@2']);
  assert.equal(b.raft.lastApplied, 4);
});

test('§5.1 an AppendEntries with a higher term makes the receiver a follower of that term and of its sender', () => {
  const b = nodeFrom('b', ABC, { terms: [1], currentTerm: 1 }, PAPER);
  const out = b.stepOut(appendEntries('a', 'b', 5, 1, 1, [], 1));
  assert.deepEqual(out.hardState, { currentTerm: 5, votedFor: null, commitIndex: 1 });
  assert.equal(b.raft.leaderId, 'a');
  assert.equal(b.raft.role, 'follower');
  assert.deepEqual([response(out).term, response(out).success], [5, true]);
});

test('§5.3 a request that matches the whole log at prevLogIndex and carries entries beyond a gap is refused', () => {
  // prevLogIndex 3 with an entry 3 the follower lacks: accepting would leave a hole at 3.
  const b = nodeFrom('b', ABC, { terms: [1, 2], currentTerm: 2 }, PAPER);
  const out = b.stepOut(appendEntries('a', 'b', 2, 3, 2, [entry(4, 2)], 1));
  assert.equal(response(out).success, false);
  assert.equal(b.raft.lastIndex, 2);
  assert.equal(b.raft.termAt(4), undefined);
});
