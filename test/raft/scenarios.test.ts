// Whole-cluster scenarios from the paper: the 5-server election example, Figure 7's followers,
// Figure 8's sequence, split votes, partitions and a stale leader. Driven by hand, step by step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Network, PAPER, bytes, stateOf } from './harness.js';
import type { NodeOptions } from './harness.js';
import { FIGURE_7_FOLLOWERS, FIGURE_7_LEADER } from './figures.js';

const FIVE = ['a', 'b', 'c', 'd', 'e'];
const ON: NodeOptions = { preVote: true, checkQuorum: true, electionTicks: 10 };

/** Every live server holds the same log, entry for entry. */
function assertSameLogs(net: Network, ids: readonly string[]): void {
  const [first, ...rest] = ids;
  for (const id of rest) assert.deepEqual(net.terms(id), net.terms(first!), `${id} differs from ${first}`);
}

test('§5.2/§5.4.1 leader a fails; b and d stand; c and e vote for d, whose log is more up to date; d wins 3 of 5', () => {
  const logs: Record<string, number[]> = { a: [1, 2, 2, 2], b: [1, 2], c: [1, 2, 2], d: [1, 2, 2, 2], e: [1, 2, 2] };
  const net = new Network(FIVE, (id) => ({ ...PAPER, state: stateOf(FIVE, { terms: logs[id]!, currentTerm: 2, votedFor: 'a' }) }));
  net.crash('a');
  net.raft('b').campaign();
  net.raft('d').campaign();
  net.settle();
  assert.equal(net.raft('d').role, 'leader');
  assert.equal(net.raft('d').currentTerm, 3);
  assert.equal(net.raft('b').role, 'follower');
  assert.equal(net.raft('c').votedFor, 'd');
  assert.equal(net.raft('e').votedFor, 'd');
  assert.ok(net.trace.includes('c->b RequestVoteResponse t3 refused'), 'c refused b: its log is behind');
  net.tick(1);
  assertSameLogs(net, ['b', 'c', 'd', 'e']);
  assert.deepEqual(net.terms('d'), [1, 2, 2, 2, 3]);
  assert.equal(net.raft('d').commitIndex, 5, "a's term-2 entry 4 is committed with d's no-op");
  net.restart('a');
  net.tick(2);
  assertSameLogs(net, FIVE);
  assert.equal(net.raft('a').leaderId, 'd');
});

test("Figure 7: followers (a)–(f) converge to the leader's log, which itself never changes", () => {
  const ids = ['L', ...Object.keys(FIGURE_7_FOLLOWERS)];
  const net = new Network(ids, (id) => {
    const terms = id === 'L' ? FIGURE_7_LEADER : FIGURE_7_FOLLOWERS[id as keyof typeof FIGURE_7_FOLLOWERS];
    return { ...ON, state: stateOf(ids, { terms, currentTerm: 7 }) };
  });
  net.elect('L');
  assert.equal(net.raft('L').currentTerm, 8);
  net.tick(3);
  const expected = [...FIGURE_7_LEADER, 8];
  assert.deepEqual(net.terms('L'), expected, 'Leader Append-Only');
  for (const id of ids) {
    assert.deepEqual(net.terms(id), expected, id);
    assert.equal(net.raft(id).commitIndex, 11, id);
  }
});

/**
 * Figure 8 (a)–(c) in five servers S1..S5. Our leaders append a no-op on election, so the
 * figure's "entry 2 of term 2" is S1's no-op and S5's entry 2 of term 3 is its no-op.
 */
function figure8c(): Network {
  const ids = ['s1', 's2', 's3', 's4', 's5'];
  const net = new Network(ids, PAPER);
  // (a) S1 leads term 2 and replicates index 2 only to S2.
  net.dropWhere((m) => m.type === 'AppendEntries' && m.to !== 's2');
  net.elect('s1');
  assert.deepEqual([net.terms('s1'), net.terms('s2'), net.terms('s3')], [[1, 2], [1, 2], [1]]);
  assert.equal(net.raft('s1').commitIndex, 1);
  // (b) S1 crashes; S5 is elected in term 3 by S3, S4 and itself, and writes index 2 alone.
  net.crash('s1');
  net.heal();
  net.dropWhere((m) => m.type === 'AppendEntries');
  net.elect('s5');
  assert.deepEqual([net.raft('s5').currentTerm, net.terms('s5')], [3, [1, 3]]);
  // (c) S5 crashes; S1 restarts and is elected in term 4 (its term-3 attempt loses to the votes S3
  // and S4 gave S5); it replicates index 2 to S3 but its own entry 3 reaches nobody. S2 confirms
  // it holds index 2, so S1 knows a majority (S1, S2, S3) stores it.
  net.crash('s5');
  net.restart('s1');
  net.raft('s1').campaign();
  net.settle();
  assert.notEqual(net.raft('s1').role, 'leader');
  net.heal();
  net.dropWhere((m) => m.type === 'AppendEntries' && m.to !== 's3' && m.to !== 's2');
  net.raft('s1').campaign();
  net.settle((m) => (m.type === 'AppendEntries' ? { ...m, entries: m.entries.filter((e) => e.index <= 2) } : m));
  assert.equal(net.raft('s1').role, 'leader');
  assert.equal(net.raft('s1').currentTerm, 4);
  assert.deepEqual([net.terms('s1'), net.terms('s2'), net.terms('s3'), net.terms('s4')], [[1, 2, 4], [1, 2], [1, 2], [1]]);
  return net;
}

test('Figure 8 (c): an entry of term 2 stored on a majority is not committed by the leader of term 4', () => {
  const net = figure8c();
  assert.equal(net.raft('s1').commitIndex, 1);
  assert.deepEqual([net.raft('s1').progress('s2')?.matchIndex, net.raft('s1').progress('s3')?.matchIndex], [2, 2]);
  for (const id of ['s1', 's2', 's3', 's4']) assert.ok(net.node(id).applied.every((e) => e.index < 2), id);
});

test('Figure 8 (d): if S1 then crashes, S5 can be elected and overwrite index 2 everywhere, and nobody applied it', () => {
  const net = figure8c();
  net.crash('s1');
  net.heal();
  net.restart('s5');
  net.raft('s5').campaign(); // term 4: refused by S2, S3, S4, which voted in term 4 already
  net.settle();
  net.raft('s5').campaign(); // term 5: its last log term 3 beats their 2
  net.settle();
  assert.equal(net.raft('s5').role, 'leader');
  net.tick(2);
  for (const id of ['s2', 's3', 's4', 's5']) {
    assert.deepEqual(net.terms(id), [1, 3, 5], id);
    assert.equal(net.raft(id).commitIndex, 3, id);
  }
  net.restart('s1');
  net.tick(2);
  assert.deepEqual(net.terms('s1'), [1, 3, 5]);
  for (const id of ['s1', 's2', 's3', 's4', 's5']) {
    assert.deepEqual(net.node(id).applied.map((e) => `${e.index}@${e.term}`).filter((x) => x !== '1@1'), ['2@3', '3@5'], id);
  }
});

test('Figure 8 (e): once S1 replicates an entry of its own term to a majority, index 2 is committed and S5 cannot win', () => {
  const net = figure8c();
  net.heal();
  net.dropWhere((m) => m.to === 's4');
  net.tick(10, ['s1', 's2', 's3']);
  assert.deepEqual(net.terms('s2'), [1, 2, 4]);
  assert.equal(net.raft('s1').commitIndex, 3);
  net.crash('s1');
  net.heal();
  net.restart('s5');
  for (let i = 0; i < 3; i++) {
    net.raft('s5').campaign();
    net.settle();
    assert.notEqual(net.raft('s5').role, 'leader', `attempt ${i + 1}`);
  }
  assert.deepEqual(net.terms('s2'), [1, 2, 4], 'the committed entries survive');
});

test('§5.2 a split vote elects nobody; randomized timeouts then elect exactly one leader in a later term', () => {
  const ids = ['a', 'b', 'c', 'd'];
  const net = new Network(ids, { ...PAPER, seed: 11 });
  net.dropWhere((m) => m.type === 'RequestVote' && ((m.from === 'a' && m.to === 'd') || (m.from === 'b' && m.to === 'c')));
  net.raft('a').campaign();
  net.raft('b').campaign();
  net.settle();
  assert.deepEqual(net.leaders(), []);
  assert.deepEqual([net.raft('c').votedFor, net.raft('d').votedFor], ['a', 'b'], 'two votes each');
  net.heal();
  net.tickUntil(() => net.leaders().length > 0, 100);
  const [leader, ...others] = net.leaders();
  assert.deepEqual(others, []);
  assert.ok(net.raft(leader!).currentTerm >= 3);
  net.tick(2);
  for (const id of ids) assert.equal(net.raft(id).leaderId, leader, id);
});

test('a minority partition cannot commit; the majority elects and commits; on healing the minority\'s entries are replaced', () => {
  const net = new Network(FIVE, { ...ON, seed: 5 });
  net.elect('a');
  net.partition(['a', 'b'], ['c', 'd', 'e']);
  const lost = net.raft('a').propose(bytes('lost'));
  net.tick(5);
  assert.equal(net.raft('a').commitIndex, lost - 1, 'two of five cannot commit');
  net.tickUntil(() => ['c', 'd', 'e'].some((id) => net.raft(id).role === 'leader'), 100);
  const leader = ['c', 'd', 'e'].find((id) => net.raft(id).role === 'leader')!;
  net.raft(leader).propose(bytes('kept'));
  net.tick(2);
  assert.deepEqual(net.node(leader).machine, ['kept']);
  net.tick(20);
  assert.notEqual(net.raft('a').role, 'leader', 'CheckQuorum: a lost its majority');
  net.heal();
  net.tick(5);
  assertSameLogs(net, FIVE);
  for (const id of FIVE) assert.deepEqual(net.node(id).machine, ['kept'], id);
});

test('§5.1 a stale leader that returns from a partition steps down on seeing the higher term, and its entry is replaced', () => {
  const ids = ['a', 'b', 'c'];
  const net = new Network(ids, PAPER);
  net.elect('a');
  net.isolate('a');
  net.raft('a').propose(bytes('stale'));
  net.elect('b');
  net.raft('b').propose(bytes('fresh'));
  net.settle();
  assert.equal(net.raft('a').role, 'leader', 'a has not heard of term 3 yet');
  net.heal();
  net.tick(4);
  assert.equal(net.raft('a').role, 'follower');
  assert.equal(net.raft('a').currentTerm, 3);
  assert.equal(net.raft('a').leaderId, 'b');
  assertSameLogs(net, ids);
  for (const id of ids) assert.deepEqual(net.node(id).machine, ['fresh'], id);
});
