// Each invariant checker CAN fail: fed a fabricated bad history it reports the violation, and fed
// the matching good history it stays quiet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CommitIndexMonotonic,
  CommittedLog,
  Durability,
  ElectionSafety,
  InvariantViolation,
  LeaderAppendOnly,
  LeaderCompleteness,
  LinearizableReads,
  Liveness,
  LogMatching,
  SingleVote,
  StateMachineSafety,
  TermMonotonic,
  type InvariantName,
} from '../../src/sim/invariants/index.js';
import { entry, fakeNode } from './fake-node.js';

function violates(name: InvariantName, fn: () => void, detail?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvariantViolation, `expected an InvariantViolation, got ${String(err)}`);
    assert.equal(err.invariant, name);
    if (detail !== undefined) assert.match(err.details, detail);
    return true;
  });
}

test('Election Safety: two leaders in one term are reported, across all history', () => {
  const c = new ElectionSafety();
  c.observe(fakeNode({ id: 'n1', role: 'leader', term: 3 }));
  c.observe(fakeNode({ id: 'n1', role: 'leader', term: 3 }));
  c.observe(fakeNode({ id: 'n2', role: 'leader', term: 4 }));
  c.observe(fakeNode({ id: 'n2', role: 'follower', term: 3 }));
  assert.equal(c.elections, 2);
  violates('Election Safety', () => c.observe(fakeNode({ id: 'n3', role: 'leader', term: 3 })), /term 3 has two leaders: n1 and n3/);
});

test('Leader Append-Only: a leader that shrinks or rewrites its log during its term is reported', () => {
  const shrink = new LeaderAppendOnly(1);
  shrink.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 1, 2] }));
  shrink.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 1, 2, 2] }));
  violates('Leader Append-Only', () => shrink.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 1, 2] })), /shrank/);

  const rewrite = new LeaderAppendOnly(1);
  rewrite.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 2] }));
  violates('Leader Append-Only', () => rewrite.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 2], data: [1, 99] })), /replaced/);

  const middle = new LeaderAppendOnly(1);
  middle.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 3, log: [1, 1, 3] }));
  const changed = fakeNode({ id: 'n1', role: 'leader', term: 3, log: [1, 2, 3] });
  middle.observe(0, changed); // the last entry is intact: only the full check sees the middle
  violates('Leader Append-Only', () => middle.fullCheck(0, changed), /changed entry 2/);

  const persisted = new LeaderAppendOnly(1);
  const leader = fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 2, 2] });
  persisted.persist(0, leader, [entry(2, 2), entry(3, 2)]);
  violates('Leader Append-Only', () => persisted.persist(0, leader, [entry(3, 2)]), /rewrote persisted entries from 3/);
});

test('Leader Append-Only: a new term, or a follower truncating, is not a violation', () => {
  const c = new LeaderAppendOnly(1);
  c.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 2, 2] }));
  c.observe(0, fakeNode({ id: 'n1', role: 'follower', term: 3, log: [1, 2] }));
  c.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 5, log: [1, 2] }));
  c.fullCheck(0, fakeNode({ id: 'n1', role: 'leader', term: 5, log: [1, 2, 5] }));
});

test('Log Matching: the same (index, term) after different histories, or with other bytes, is reported', () => {
  const c = new LogMatching();
  c.observe('n1', [entry(1, 1), entry(2, 1), entry(3, 2)], 0);
  c.observe('n2', [entry(1, 1), entry(2, 1)], 0); // agrees
  violates('Log Matching', () => c.observe('n3', [entry(3, 2)], 3), /follows term 1 on n1 but term 3 on n3/);
  violates('Log Matching', () => c.observe('n3', [entry(2, 1, 77)], 1), /differs/);
});

test('Log Matching: the full pairwise check finds logs that agree at an index but not before it', () => {
  const a = fakeNode({ id: 'n1', log: [1, 1, 2, 3] });
  const b = fakeNode({ id: 'n2', log: [1, 2, 2, 3] });
  violates('Log Matching', () => LogMatching.compare('n1', a, 'n2', b), /differ at 2/);
  // Divergent only after the last common (index, term): fine (the follower will truncate).
  LogMatching.compare('n1', fakeNode({ id: 'n1', log: [1, 1, 2] }), 'n2', fakeNode({ id: 'n2', log: [1, 1, 3, 3] }));
});

test('Leader Completeness: a new leader missing a committed entry is reported', () => {
  const committed = new CommittedLog(2);
  committed.observe(0, fakeNode({ id: 'n1', log: [1, 1, 2], commit: 3 }));
  const c = new LeaderCompleteness(2, committed);
  violates('Leader Completeness', () => c.observe(1, fakeNode({ id: 'n2', role: 'leader', term: 4, log: [1, 1] })), /log ending at 2, but 3 is committed/);
  const c2 = new LeaderCompleteness(2, committed);
  violates('Leader Completeness', () => c2.observe(1, fakeNode({ id: 'n2', role: 'leader', term: 4, log: [1, 1, 3, 4] })), /lacks committed entry 3/);
  const c3 = new LeaderCompleteness(2, committed);
  violates('Leader Completeness', () => c3.observe(1, fakeNode({ id: 'n2', role: 'leader', term: 4, snapshotIndex: 3, snapshotTerm: 3, log: [4] })), /snapshot/);
  // Holding everything (part of it in a snapshot) is fine.
  new LeaderCompleteness(2, committed).observe(1, fakeNode({ id: 'n2', role: 'leader', term: 4, snapshotIndex: 2, snapshotTerm: 1, log: [2, 4] }));
});

test('State Machine Safety: two nodes committing or applying different entries at one index are reported', () => {
  const committed = new CommittedLog(2);
  committed.observe(0, fakeNode({ id: 'n1', log: [1, 1], commit: 2 }));
  violates('State Machine Safety', () => committed.observe(1, fakeNode({ id: 'n2', log: [1, 2], commit: 2 })), /index 2 committed/);

  const c = new StateMachineSafety();
  c.apply('n1', entry(5, 2), 1234);
  c.apply('n2', entry(5, 2), 1234);
  violates('State Machine Safety', () => c.apply('n3', entry(5, 3), 1234), /n1 applied \{index 5, term 2/);
  violates('State Machine Safety', () => c.apply('n3', entry(5, 2), 999), /hash 999/);
  violates('State Machine Safety', () => c.restore('n4', 5, 42), /restoring a snapshot/);
  c.restore('n4', 5, 1234);
});

test('commitIndex never goes back: in memory, on disk, and across a restart', () => {
  const c = new CommitIndexMonotonic(1);
  c.observe(0, fakeNode({ id: 'n1', commit: 5 }));
  violates('Commit Index Monotonic', () => c.observe(0, fakeNode({ id: 'n1', commit: 4 })), /from 5 to 4/);
  c.durable(0, 'n1', { currentTerm: 1, votedFor: null, commitIndex: 7 });
  violates('Commit Index Monotonic', () => c.durable(0, 'n1', { currentTerm: 1, votedFor: null, commitIndex: 6 }), /persisted/);
  const r = new CommitIndexMonotonic(1);
  r.durable(0, 'n1', { currentTerm: 1, votedFor: null, commitIndex: 7 });
  violates('Commit Index Monotonic', () => r.restart(0, 'n1', { currentTerm: 1, votedFor: null, commitIndex: 3 }, 3));
  r.restart(0, 'n1', { currentTerm: 1, votedFor: null, commitIndex: 7 }, 7);
});

test('currentTerm never decreases, in memory or on disk', () => {
  const c = new TermMonotonic(1);
  c.observe(0, fakeNode({ id: 'n1', term: 3 }));
  violates('Term Monotonic', () => c.observe(0, fakeNode({ id: 'n1', term: 2 })));
  c.durable(0, 'n1', { currentTerm: 5, votedFor: null, commitIndex: 0 });
  violates('Term Monotonic', () => c.restart(0, 'n1', { currentTerm: 4, votedFor: null, commitIndex: 0 }));
});

test('Single Vote: a changed vote, a vote sent before it is durable, or two grants in a term are reported', () => {
  const mem = new SingleVote(1);
  mem.observe(0, fakeNode({ id: 'n1', term: 2, votedFor: null }));
  mem.observe(0, fakeNode({ id: 'n1', term: 2, votedFor: 'n2' }));
  violates('Single Vote', () => mem.observe(0, fakeNode({ id: 'n1', term: 2, votedFor: 'n3' })), /changed its vote in term 2/);

  const disk = new SingleVote(1);
  disk.durable(0, 'n1', { currentTerm: 2, votedFor: 'n2', commitIndex: 0 });
  violates('Single Vote', () => disk.durable(0, 'n1', { currentTerm: 2, votedFor: null, commitIndex: 0 }), /persisted vote/);

  const wire = new SingleVote(1);
  const vote = { type: 'RequestVoteResponse', from: 'n1', to: 'n2', term: 2, preVote: false, voteGranted: true } as const;
  violates('Single Vote', () => wire.send(0, vote, { currentTerm: 2, votedFor: null, commitIndex: 0 }), /before it is durable/);
  wire.send(0, vote, { currentTerm: 2, votedFor: 'n2', commitIndex: 0 });
  // After a crash that forgot the vote, granting another candidate the same term is caught.
  violates('Single Vote', () => wire.send(0, { ...vote, to: 'n3' }, { currentTerm: 2, votedFor: 'n3', commitIndex: 0 }), /both n2 and n3/);
  // Pre-votes and refusals are not votes.
  wire.send(0, { ...vote, to: 'n4', preVote: true }, { currentTerm: 1, votedFor: null, commitIndex: 0 });
});

test('Durability: an acknowledged entry missing from, or replaced in, the final committed log is reported', () => {
  const d = new Durability();
  const payload = new Uint8Array([1, 2, 3]);
  d.acknowledge(5, payload);
  const log = new Map([[5, { index: 5, term: 2, type: 'normal' as const, data: new Uint8Array([1, 2, 3]) }]]);
  d.finish(5, (i) => log.get(i));
  violates('Durability', () => d.finish(4, (i) => log.get(i)), /beyond the final commitIndex 4/);
  violates('Durability', () => d.finish(6, () => entry(5, 3, 9)), /replaced/);
});

test('Liveness: no leader, or no commit, by the deadline after healing is reported', () => {
  const none = new Liveness();
  none.start(1000, 500);
  none.check(1400, () => '');
  violates('Liveness', () => none.check(1500, () => 'all followers'), /no leader elected within 500 ms.*all followers/);
  const stuck = new Liveness();
  stuck.start(0, 100);
  stuck.leaderElected(10);
  violates('Liveness', () => stuck.check(100, () => ''), /no proposal committed/);
  const ok = new Liveness();
  ok.start(0, 100);
  ok.leaderElected(10);
  ok.committed(20, 7);
  ok.converged(30);
  ok.check(1000, () => '');
  assert.equal(ok.recoveryMs, 30);
});

test('Linearizable Reads: a read that misses an earlier acknowledged write is reported', () => {
  const r = new LinearizableReads();
  r.serve('n1', 1, 10, 10);
  violates('Linearizable Reads', () => r.serve('n1', 2, 9, 10), /index 10 was acknowledged/);
  assert.equal(r.count, 1);
});
