// Each invariant checker CAN fail: fed a fabricated bad history it reports the violation, and fed
// the matching good history it stays quiet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ApplyOnlyCommitted,
  commitIndexMonotonic,
  CountedCommit,
  DurableLogs,
  DurableMajority,
  PersistBeforeSend,
  CommittedLog,
  ConfigChangeOneAtATime,
  ConfigOnAppend,
  LeavingLeaderStepsDown,
  VoterQuorum,
  VoteLease,
  Durability,
  ElectionSafety,
  InvariantViolation,
  LeaderAppendOnly,
  LeaderCompleteness,
  LinearizableReads,
  Liveness,
  LogMatching,
  RemovalNotice,
  SingleVote,
  StateMachineSafety,
  termMonotonic,
  type InvariantName,
} from '../../src/sim/invariants/index.js';
import { entry, fakeNode, voters } from './fake-node.js';

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
  violates('Leader Completeness', () => c.observe(1, fakeNode({ id: 'n2', role: 'leader', term: 4, log: [1, 1] })), /log ending at 2, but 3 was committed before that term/);
  const c2 = new LeaderCompleteness(2, committed);
  violates('Leader Completeness', () => c2.observe(1, fakeNode({ id: 'n2', role: 'leader', term: 4, log: [1, 1, 3, 4] })), /lacks committed entry 3/);
  const c3 = new LeaderCompleteness(2, committed);
  violates('Leader Completeness', () => c3.observe(1, fakeNode({ id: 'n2', role: 'leader', term: 4, snapshotIndex: 3, snapshotTerm: 3, log: [4] })), /snapshot/);
  // Holding everything (part of it in a snapshot) is fine.
  new LeaderCompleteness(2, committed).observe(1, fakeNode({ id: 'n2', role: 'leader', term: 4, snapshotIndex: 2, snapshotTerm: 1, log: [2, 4] }));
});

test('Leader Completeness: a leader of a term below the one that committed an entry need not hold it (a paused candidate leading its stale term), one of a higher term must', () => {
  const committed = new CommittedLog(3);
  committed.observe(0, fakeNode({ id: 'n1', term: 3, log: [1, 1, 3], commit: 2 }));
  // n1, leader of term 5, commits index 3 (an entry of term 5) while n2 waits in term 4 with its votes.
  committed.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 5, log: [1, 1, 5], commit: 3 }));
  assert.equal(committed.committedBefore(4), 2);
  assert.equal(committed.committedBefore(6), 3);
  new LeaderCompleteness(3, committed).observe(1, fakeNode({ id: 'n2', role: 'leader', term: 4, log: [1, 1, 3, 4] }));
  violates('Leader Completeness', () => new LeaderCompleteness(3, committed).observe(2, fakeNode({ id: 'n3', role: 'leader', term: 6, log: [1, 1, 3] })), /lacks committed entry 3/);
  violates('Leader Completeness', () => new LeaderCompleteness(3, committed).observe(2, fakeNode({ id: 'n3', role: 'leader', term: 4, log: [1] })), /log ending at 1, but 2 was committed before that term/);
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
  const c = commitIndexMonotonic(1);
  c.observe(0, fakeNode({ id: 'n1', commit: 5 }));
  violates('Commit Index Monotonic', () => c.observe(0, fakeNode({ id: 'n1', commit: 4 })), /from 5 to 4/);
  c.durable(0, 'n1', { currentTerm: 1, votedFor: null, commitIndex: 7 });
  violates('Commit Index Monotonic', () => c.durable(0, 'n1', { currentTerm: 1, votedFor: null, commitIndex: 6 }), /persisted/);
  const r = commitIndexMonotonic(1);
  r.durable(0, 'n1', { currentTerm: 1, votedFor: null, commitIndex: 7 });
  violates('Commit Index Monotonic', () => r.restart(0, 'n1', { currentTerm: 1, votedFor: null, commitIndex: 3 }, 3));
  r.restart(0, 'n1', { currentTerm: 1, votedFor: null, commitIndex: 7 }, 7);
});

test('currentTerm never decreases, in memory or on disk', () => {
  const c = termMonotonic(1);
  c.observe(0, fakeNode({ id: 'n1', term: 3 }));
  violates('Term Monotonic', () => c.observe(0, fakeNode({ id: 'n1', term: 2 })));
  c.durable(0, 'n1', { currentTerm: 5, votedFor: null, commitIndex: 0 });
  violates('Term Monotonic', () => c.restart(0, 'n1', { currentTerm: 4, votedFor: null, commitIndex: 0 }, 4), /persisted currentTerm went back from 5 to 4/);
  const r = termMonotonic(1);
  violates('Term Monotonic', () => r.restart(0, 'n1', { currentTerm: 4, votedFor: null, commitIndex: 0 }, 3), /restarted with currentTerm 3 below its persisted 4/);
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

// ---- membership (thesis §4) ----------------------------------------------------------------

test('Config Change One At A Time: a leader holding two configuration entries above the commit point is reported', () => {
  const committed = new CommittedLog(2);
  committed.observe(1, fakeNode({ id: 'n2', log: [1, 1, 1, 1], commit: 2 }));
  const c = new ConfigChangeOneAtATime(2, committed);
  const one = { 3: voters('n1', 'n2', 'n3') };
  // One uncommitted configuration entry: fine. A second one, once the first committed: fine.
  c.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 1, 2, 2, 2], commit: 2, configEntries: one }));
  c.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 1, 2, 2, 2], commit: 3, configEntries: { ...one, 5: voters('n1', 'n2') } }));
  // The commit point is the cluster's: a new leader that has not learned it is judged by it.
  committed.observe(1, fakeNode({ id: 'n2', log: [1, 1, 2, 2], commit: 3 }));
  c.observe(1, fakeNode({ id: 'n2', role: 'leader', term: 3, log: [1, 1, 2, 2, 2], commit: 1, configEntries: { ...one, 5: voters('n1', 'n2') } }));
  violates(
    'Config Change One At A Time',
    () => c.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 4, log: [1, 1, 1, 4, 4, 4], commit: 3, configEntries: { 4: voters('n1', 'n2', 'n4'), 6: voters('n1', 'n2') } })),
    /n1, leader of term 4, holds configuration entries at 4 and 6/,
  );
});

test('Config On Append: a configuration acts from its append, and reverts with its truncation', () => {
  const c = new ConfigOnAppend();
  const joint = { voters: ['n1', 'n2', 'n4'], votersOutgoing: ['n1', 'n2', 'n3'], learners: [] };
  const good = fakeNode({ id: 'n2', log: [1, 1, 1], commit: 1, configEntries: { 1: voters('n1', 'n2', 'n3'), 3: joint } });
  c.persist(good, [good.entryAt(3)!]);
  c.fullCheck(good, null);
  // A follower that waits for the commit before switching.
  const waits = fakeNode({ id: 'n2', log: [1, 1, 1], commit: 1, configEntries: { 1: voters('n1', 'n2', 'n3'), 3: joint }, config: voters('n1', 'n2', 'n3'), configIndex: 1 });
  violates('Config On Append', () => c.persist(waits, [waits.entryAt(3)!]), /n2 appended the configuration entry at 3 \(term 1\) but acts on the one at 1/);
  // A follower whose configuration entry was truncated away but still acts on it.
  const stale = fakeNode({ id: 'n2', log: [1, 1], commit: 1, configEntries: { 1: voters('n1', 'n2', 'n3') }, config: joint, configIndex: 3 });
  violates('Config On Append', () => c.fullCheck(stale, null), /newest configuration entry is at 1 but it acts on the one at 3/);
  // The snapshot's configuration, when the log after it holds none.
  c.fullCheck(fakeNode({ id: 'n3', snapshotIndex: 5, snapshotTerm: 1, log: [1], config: joint }), joint);
  violates('Config On Append', () => c.fullCheck(fakeNode({ id: 'n3', snapshotIndex: 5, snapshotTerm: 1, log: [1], config: voters('n1') }), joint), /acts on/);
});

test('Leaving Leader Steps Down: a leader outside its committed C_new may not lead past the grace', () => {
  const c = new LeavingLeaderStepsDown(1, 300);
  const outside = { voters: ['n2', 'n3', 'n4'], votersOutgoing: [], learners: [] };
  // Not yet committed, or still joint: it manages the change.
  c.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 2, 2], commit: 2, configEntries: { 3: outside } }), 0);
  c.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 2, 2], commit: 2, configEntries: { 3: { ...outside, votersOutgoing: ['n1', 'n2', 'n3'] } } }), 1000);
  const committed = fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 2, 2], commit: 3, configEntries: { 3: outside } });
  c.observe(0, committed, 2000);
  c.poll(0, committed, 2300);
  violates('Leaving Leader Steps Down', () => c.poll(0, committed, 2301), /n1 still leads term 2 301 ms after committing the configuration at 3/);
  // Stepping down clears it.
  c.observe(0, fakeNode({ id: 'n1', role: 'follower', term: 2, log: [1, 2, 2], commit: 3, configEntries: { 3: outside } }), 2302);
  c.poll(0, committed, 9999);
});

test('Voter Quorum: learners are never asked, and a leader needs a majority of every voter set', () => {
  const c = new VoterQuorum(3);
  const config = { voters: ['n1', 'n2', 'n3'], votersOutgoing: [], learners: ['n4'] };
  const candidate = fakeNode({ id: 'n1', role: 'candidate', term: 5, config });
  const ask = (to: string) => ({ type: 'RequestVote', from: 'n1', to, term: 5, preVote: false, lastLogIndex: 0, lastLogTerm: 0, transfer: false }) as const;
  c.request(0, ask('n2'), candidate);
  violates('Voter Quorum', () => c.request(0, ask('n4'), candidate), /n1 asks n4 for a vote in term 5, but n4 is not a voter/);
  const grant = (from: string, to: string, term: number) => ({ type: 'RequestVoteResponse', from, to, term, preVote: false, voteGranted: true }) as const;
  // A learner's grant (which a core may send: it may not know it was promoted) does not count.
  c.grant(grant('n4', 'n1', 5));
  violates('Voter Quorum', () => c.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 5, config })), /n1 leads term 5 with votes from \{n1,n4\}, not a majority/);
  c.grant(grant('n3', 'n2', 6));
  c.observe(1, fakeNode({ id: 'n2', role: 'leader', term: 6, config }));
  // Joint consensus: a majority of C_new alone is not enough.
  const joint = { voters: ['n1', 'n4', 'n5'], votersOutgoing: ['n1', 'n2', 'n3'], learners: [] };
  c.grant(grant('n4', 'n1', 7));
  violates('Voter Quorum', () => c.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 7, config: joint })), /not a majority/);
  c.grant(grant('n2', 'n1', 8));
  c.grant(grant('n4', 'n1', 8));
  c.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 8, config: joint }));
});

test('Vote Lease: a server that heard its leader within the lease ignores vote requests (thesis §4.2.3)', () => {
  const c = new VoteLease(2, 290);
  const follower = (term: number, leaderId: string | null, votedFor: string | null = null) => ({ ...fakeNode({ id: 'n2', term, votedFor }), leaderId });
  const heartbeat = { type: 'AppendEntries', from: 'n1', to: 'n2', term: 5, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0, seq: 1 } as const;
  const ask = (term: number, transfer = false) => ({ type: 'RequestVote', from: 'n9', to: 'n2', term, preVote: false, lastLogIndex: 9, lastLogTerm: 5, transfer }) as const;
  c.before(follower(5, 'n1'));
  c.after(0, follower(5, 'n1'), heartbeat, 1000);
  // Ignored within the lease: fine, and counted (n9 is no member: a removed server).
  c.before(follower(5, 'n1'));
  c.after(0, follower(5, 'n1'), ask(6), 1200);
  assert.equal(c.ignored, 1);
  assert.equal(c.ignoredFromOutsiders, 1);
  // A transfer may bypass it; after the lease anyone may win the server over.
  c.before(follower(5, 'n1'));
  c.after(0, follower(6, null, 'n9'), ask(6, true), 1250);
  c.before(follower(5, 'n1'));
  c.after(1, follower(6, null, 'n9'), ask(6), 1250);
  c.before(follower(5, 'n1'));
  violates('Vote Lease', () => c.after(0, follower(6, null, 'n9'), ask(6), 1200), /n2 heard leader n1 of term 5 200 ms ago, yet a vote request from n9 for term 6 moved it to term 6, voting for n9/);
  c.before(follower(5, 'n1'));
  c.after(0, follower(6, null, 'n9'), ask(6), 1291);
});

test('Removal Notice: a server told it is out before the entry is committed, or by an entry that lists it, is reported', () => {
  const committed = new CommittedLog(3);
  const c = new RemovalNotice(committed);
  const without = { 4: voters('n1', 'n2') };
  // n1 leads; C_new = {n1, n2} at 4 is in its log but committed only up to 3.
  committed.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 1, 2, 2], commit: 3, configEntries: without }));
  violates('Removal Notice', () => c.observe(fakeNode({ id: 'n3', log: [1, 1, 2, 2], commit: 3, configEntries: without, removed: { by: 'n1', configIndex: 4 } })), /committed only up to 3/);
  // Once 4 is committed the same notice is sound.
  committed.observe(0, fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 1, 2, 2], commit: 4, configEntries: without }));
  const ok = new RemovalNotice(committed);
  ok.observe(fakeNode({ id: 'n3', log: [1, 1, 2, 2], commit: 4, configEntries: without, removed: { by: 'n1', configIndex: 4 } }));
  assert.equal(ok.count, 1);
  // A notice naming an entry that is not a configuration, or one that lists the server.
  violates('Removal Notice', () => ok.observe(fakeNode({ id: 'n3', log: [1, 1, 2, 2], commit: 4, removed: { by: 'n1', configIndex: 3 } })), /not a configuration/);
  violates('Removal Notice', () => ok.observe(fakeNode({ id: 'n2', log: [1, 1, 2, 2], commit: 4, configEntries: without, removed: { by: 'n1', configIndex: 4 } })), /lists it/);
});

test('Persist Before Send: an early acknowledgement, a term or vote not yet durable, or an acknowledgement past the durable log is reported', () => {
  const c = new PersistBeforeSend(3);
  const hs = { currentTerm: 2, votedFor: 'n1', commitIndex: 1 };
  const ack = (matchIndex: number) =>
    ({ type: 'AppendEntriesResponse', from: 'n2', to: 'n1', term: 2, success: true, matchIndex, rejectedIndex: 0, conflictTerm: 0, conflictIndex: 0, seq: 1 }) as const;
  c.restart(1, 3);
  c.send(1, ack(3), hs, false);
  violates('Persist Before Send', () => c.send(1, ack(3), hs, true), /before its Ready's writes are durable/);
  violates('Persist Before Send', () => c.send(1, ack(5), hs, false), /stable log ends at 3/);
  c.synced(1, [entry(4, 2), entry(5, 2)]);
  c.send(1, ack(5), hs, false);
  c.installed(1, { index: 9, term: 2, config: voters('n1', 'n2', 'n3') });
  c.send(1, { type: 'InstallSnapshotResponse', from: 'n2', to: 'n1', term: 2, matchIndex: 9, seq: 1 }, hs, false);
  // A leader's AppendEntries may race its write (thesis §10.2.1), but not its term.
  const ae = { type: 'AppendEntries', from: 'n1', to: 'n2', term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: [entry(2, 2)], leaderCommit: 1, seq: 1 } as const;
  c.send(0, ae, hs, true);
  violates('Persist Before Send', () => c.send(0, { ...ae, term: 3 }, hs, true), /term 3 .* holds term 2/);
  const rv = { type: 'RequestVote', from: 'n1', to: 'n2', term: 2, preVote: false, lastLogIndex: 1, lastLogTerm: 1, transfer: false } as const;
  c.send(0, rv, hs, false);
  violates('Persist Before Send', () => c.send(0, rv, { ...hs, votedFor: null }, false), /votedFor nobody/);
  // Pre-votes bind nobody: they may leave early, with the term they would campaign in.
  c.send(0, { ...rv, term: 3, preVote: true }, hs, true);
});

test('Counted Commit: a follower\'s own count must stand on its own and its leader\'s durable copies, a majority of its voters', () => {
  const counted = (id: string, index: number, count: number, config = voters('n1', 'n2', 'n3'), log = [1, 2, 2, 2]) =>
    ({ ...fakeNode({ id, log, commit: index, config }), leaderId: 'n1', commitsCountedAsFollower: count, lastCountedCommit: index });
  const c = new CountedCommit(5);
  for (let slot = 0; slot < 5; slot++) c.restart(slot, 0, [entry(1, 1)]);
  c.observe(0, { ...fakeNode({ id: 'n1', role: 'leader', log: [1, 2, 2, 2] }), leaderId: 'n1', commitsCountedAsFollower: 0, lastCountedCommit: 0 });
  c.synced(0, [entry(2, 2), entry(3, 2)]);
  c.synced(1, [entry(2, 2), entry(3, 2), entry(4, 2)]);
  c.observe(1, counted('n2', 3, 1));
  violates('Counted Commit', () => c.observe(1, counted('n2', 4, 2)), /leader n1's storage does not hold/);
  violates('Counted Commit', () => c.observe(2, counted('n3', 3, 1)), /its storage does not hold/);
  // A later batch overwrites the stored log from its first index.
  c.synced(1, [entry(3, 3)]);
  violates('Counted Commit', () => c.observe(1, counted('n2', 3, 3, voters('n1', 'n2', 'n3'), [1, 2, 2])), /its storage does not hold/);
  c.synced(3, [entry(2, 2), entry(3, 2)]);
  violates('Counted Commit', () => c.observe(3, counted('n4', 3, 1, voters('n1', 'n2', 'n3', 'n4', 'n5'))), /2 of 5 voters is no majority/);
  violates('Counted Commit', () => c.observe(4, counted('n5', 2, 1, { voters: ['n1', 'n5'], votersOutgoing: ['n1', 'n2', 'n3'], learners: [] })), /joint/);
  // A snapshot the storage installed covers what it holds below it.
  c.installed(2, { index: 3, term: 2, config: voters('n1', 'n2', 'n3') });
  c.observe(2, counted('n3', 3, 2));
});

test('§5.4.2 Counted Commit (Figure 8): a follower counts copies only of an entry of its current term', () => {
  const c = new CountedCommit(3);
  for (let slot = 0; slot < 3; slot++) c.restart(slot, 0, [entry(1, 1), entry(2, 2)]);
  const counted = (term: number, log: number[]) => ({ ...fakeNode({ id: 'n2', term, log, commit: 2, config: voters('n1', 'n2', 'n3') }), leaderId: 'n1', commitsCountedAsFollower: term, lastCountedCommit: 2 });
  c.observe(0, { ...fakeNode({ id: 'n1', role: 'leader', term: 2, log: [1, 2] }), leaderId: 'n1', commitsCountedAsFollower: 0, lastCountedCommit: 0 });
  // In term 2 both durable copies of the term-2 entry make a majority of three.
  c.observe(1, counted(2, [1, 2]));
  // In term 3 the same durable copies commit nothing: entry 2 is of an earlier term.
  violates('Counted Commit', () => c.observe(1, counted(3, [1, 2])), /committed 2 \(term 2\) by its own count in term 3: only an entry of the current term/);
});

test('Durable Majority (§5.4.2, thesis §10.2.1 and §4.3): a leader\'s commit must be of its term and held by the storage of a majority of its voters, of each half of a joint configuration', () => {
  const logs = new DurableLogs(5);
  ['n1', 'n2', 'n3', 'n4', 'n5'].forEach((id, slot) => {
    logs.restart(slot, 0, [entry(1, 1)]);
    logs.seen(id, slot);
  });
  const c = new DurableMajority(5, logs);
  const three = voters('n1', 'n2', 'n3');
  const leader = (commit: number, config = three, log = [1, 2, 2, 2], term = 2) => fakeNode({ id: 'n1', role: 'leader', term, log, commit, config });
  // Becoming leader: the commit index it brings is the baseline, not a count of its own.
  c.observe(0, leader(1));
  logs.synced(0, [entry(2, 2), entry(3, 2)]);
  logs.synced(1, [entry(2, 2), entry(3, 2), entry(4, 2)]);
  c.observe(0, leader(3));
  assert.equal(c.checked, 1);
  // 4 is durable on n2 alone: the leader's copy is not synced yet (thesis §10.2.1).
  violates('Durable Majority', () => c.observe(0, leader(4)), /committed 4, but only 1 of the voters n1, n2, n3 hold it durably \(n2\)/);
  // A later batch overwrites what storage held from its first index.
  const d = new DurableMajority(5, logs);
  logs.synced(1, [entry(3, 3)]);
  d.observe(0, leader(2));
  violates('Durable Majority', () => d.observe(0, leader(3)), /only 1 of the voters/);
  // Figure 8: an entry of an earlier term is never committed by counting.
  const e = new DurableMajority(5, logs);
  e.observe(0, leader(1, three, [1, 2, 2, 2], 3));
  violates('Durable Majority', () => e.observe(0, leader(2, three, [1, 2, 2, 2], 3)), /an entry of term 2: only an entry of its own term/);
  // Joint consensus: a majority of C_new = {n1, n2} holds 2, but of C_old = {n1, n3, n4, n5} only n1.
  const joint = { voters: ['n1', 'n2'], votersOutgoing: ['n1', 'n3', 'n4', 'n5'], learners: [] };
  const f = new DurableMajority(5, logs);
  f.observe(0, leader(1, joint));
  violates('Durable Majority', () => f.observe(0, leader(2, joint)), /only 1 of the voters n1, n3, n4, n5/);
  logs.synced(2, [entry(2, 2)]);
  logs.synced(3, [entry(2, 2)]);
  f.observe(0, leader(2, joint));
  // A server never seen holds nothing; a restart (reset) takes a new baseline.
  const g = new DurableMajority(5, logs);
  g.observe(0, leader(1, voters('n1', 'n2', 'n9')));
  violates('Durable Majority', () => g.observe(0, leader(3, voters('n1', 'n6', 'n9'))), /only 1 of the voters n1, n6, n9/);
  g.reset(0);
  g.observe(0, leader(4, voters('n1', 'n6', 'n9')));
  // Followers are not checked here (they learn the commit from a leader, or count it: Counted Commit).
  g.observe(1, fakeNode({ id: 'n2', role: 'follower', term: 2, log: [1, 2, 2, 2, 2], commit: 5, config: three }));
  // A slot given to a new server forgets the id it held: that id no longer names its storage.
  logs.reprovision(1);
  const h = new DurableMajority(5, logs);
  h.observe(0, leader(1));
  violates('Durable Majority', () => h.observe(0, leader(2, voters('n1', 'n2', 'n9'))), /only 1 of the voters n1, n2, n9 hold it durably \(n1\)/);
});

test('Apply Only Committed: an entry applied above the commit index is reported', () => {
  const c = new ApplyOnlyCommitted();
  c.apply('n1', entry(3, 2), 3);
  violates('Apply Only Committed', () => c.apply('n1', entry(4, 2), 3), /commitIndex 3/);
});
