// Membership changes in the core (thesis chapter 4, paper §6) and leadership transfer (thesis
// §3.10), driven by hand: joint consensus needs both majorities, a configuration takes effect
// when appended, one change at a time, Ongaro's 2015 correction, learners, removed servers, and
// transfers that succeed, lag, time out, or meet a joint configuration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChangeInProgressError, ProposalDroppedError, bootstrapState, decodeConfiguration } from '../../src/raft/index.js';
import type { Configuration, InitialState, NodeId } from '../../src/raft/index.js';
import { Network, bytes, configOf } from './harness.js';
import type { NodeOptions } from './harness.js';

const ON: NodeOptions = { preVote: true, checkQuorum: true, electionTicks: 10 };
const EMPTY: InitialState = { hardState: { currentTerm: 0, votedFor: null, commitIndex: 0 }, snapshot: null, entries: [], applied: 0 };

/** A network of `all` servers of which only `founders` form the first configuration; the rest start empty. */
function cluster(founders: readonly NodeId[], all: readonly NodeId[], options: NodeOptions = ON): Network {
  return new Network(all, (id) => ({ ...options, state: founders.includes(id) ? bootstrapState(configOf(founders)) : EMPTY }));
}

const sorted = (ids: readonly NodeId[]): NodeId[] => [...ids].sort();
const isJoint = (c: Configuration): boolean => c.votersOutgoing.length > 0;

/** The configurations in `id`'s log, in order, with the term of the entry that carried each. */
function configEntries(net: Network, id: NodeId): { index: number; term: number; config: Configuration }[] {
  return net
    .node(id)
    .store.entries.filter((e) => e.type === 'config')
    .map((e) => ({ index: e.index, term: e.term, config: decodeConfiguration(e.data) }));
}

test('thesis §4.3 under C_old,new an entry commits only with separate majorities of C_old and of C_new', () => {
  const net = cluster(['a', 'b', 'c'], ['a', 'b', 'c', 'd', 'e']);
  net.elect('a');
  // a, d and e are a majority of C_new = {a..e} but only one of C_old = {a, b, c}.
  net.partition(['a', 'd', 'e'], ['b', 'c']);
  const joint = net.raft('a').proposeConfigChange([
    { type: 'add-voter', id: 'd' },
    { type: 'add-voter', id: 'e' },
  ]);
  net.tick(5);
  assert.ok(net.node('d').store.lastIndex >= joint && net.node('e').store.lastIndex >= joint, 'd and e store the joint entry');
  assert.ok(net.raft('a').commitIndex < joint, 'without a majority of C_old nothing commits');
  // b joins a: now {a, b} is a majority of C_old and {a, b, d, e} of C_new.
  net.heal();
  net.cut('a', 'c');
  net.tick(5);
  assert.ok(net.raft('a').commitIndex >= joint);
  const cfg = net.raft('a').config;
  assert.equal(isJoint(cfg), false, 'once C_old,new commits the leader appends C_new');
  assert.deepEqual(sorted(cfg.voters), ['a', 'b', 'c', 'd', 'e']);
  assert.ok(net.raft('a').commitIndex >= net.raft('a').configIndex, 'and C_new commits with a, b, d, e');
});

test('thesis §4.3 a configuration takes effect when appended, not when committed, on the leader and on followers', () => {
  const net = cluster(['a', 'b', 'c'], ['a', 'b', 'c', 'd']);
  net.elect('a');
  const index = net.raft('a').proposeConfigChange([{ type: 'add-voter', id: 'd' }]);
  assert.ok(isJoint(net.raft('a').config), 'the leader uses C_old,new as soon as it appends it');
  assert.ok(net.raft('a').commitIndex < index);
  net.flush();
  // Deliver only the AppendEntries that carries the entry to b; nothing commits yet.
  net.deliver((m) => m.type === 'AppendEntries' && m.to === 'b' && m.entries.length > 0);
  assert.ok(net.raft('b').commitIndex < index);
  assert.ok(isJoint(net.raft('b').config), 'the follower uses it from the moment it stores it');
  assert.deepEqual(sorted(net.raft('b').config.votersOutgoing), ['a', 'b', 'c']);
});

test('thesis §4.3 one change at a time: another request while one is in progress is refused', () => {
  const net = cluster(['a', 'b', 'c'], ['a', 'b', 'c', 'd', 'e']);
  net.elect('a');
  net.raft('a').proposeConfigChange([{ type: 'add-learner', id: 'd' }]);
  assert.throws(() => net.raft('a').proposeConfigChange([{ type: 'add-learner', id: 'e' }]), ChangeInProgressError);
  net.tick(3);
  // Done (learners need no joint phase): the next change is accepted.
  assert.doesNotThrow(() => net.raft('a').proposeConfigChange([{ type: 'add-learner', id: 'e' }]));
});

test("Ongaro 2015: a new leader starts no change before it has committed an entry of its own term", () => {
  const net = cluster(['a', 'b', 'c'], ['a', 'b', 'c', 'd']);
  net.dropWhere((m) => m.type === 'AppendEntriesResponse');
  net.raft('a').campaign();
  net.settle();
  assert.equal(net.raft('a').role, 'leader');
  assert.throws(() => net.raft('a').proposeConfigChange([{ type: 'add-voter', id: 'd' }]), ProposalDroppedError);
  net.heal();
  net.tick(3);
  assert.doesNotThrow(() => net.raft('a').proposeConfigChange([{ type: 'add-voter', id: 'd' }]));
});

test('thesis §4.3 a leader that is not in C_new manages the change to its end, then steps down', () => {
  const net = cluster(['a', 'b', 'c', 'd'], ['a', 'b', 'c', 'd']);
  net.elect('a');
  const term = net.raft('a').currentTerm;
  net.raft('a').proposeConfigChange([{ type: 'remove', id: 'a' }]);
  net.settle();
  assert.notEqual(net.raft('a').role, 'leader', 'a stepped down once C_new committed');
  const final = configEntries(net, 'a').at(-1)!;
  assert.equal(isJoint(final.config), false);
  assert.equal(final.term, term, 'a itself appended and committed C_new before leaving');
  assert.ok(net.raft('a').commitIndex >= final.index);
  assert.deepEqual(net.raft('a').removed, { by: 'a', configIndex: final.index }, 'a knows it is out of the cluster');
  net.tickUntil(() => ['b', 'c', 'd'].some((id) => net.raft(id).role === 'leader'), 100, ['b', 'c', 'd']);
  const leader = ['b', 'c', 'd'].find((id) => net.raft(id).role === 'leader')!;
  const at = net.raft(leader).propose(bytes('after'));
  net.tick(2, ['b', 'c', 'd']);
  assert.ok(net.raft(leader).commitIndex >= at, 'the remaining three commit without a');
});

test('thesis §4.2.1 a learner receives the log but never counts toward a majority and never campaigns', () => {
  const net = cluster(['a', 'b', 'c'], ['a', 'b', 'c', 'd']);
  net.elect('a');
  net.raft('a').proposeConfigChange([{ type: 'add-learner', id: 'd' }]);
  net.tick(3);
  assert.deepEqual(net.raft('a').config.learners, ['d']);
  const first = net.raft('a').propose(bytes('x'));
  net.tick(2);
  assert.ok(net.raft('d').commitIndex >= first);
  assert.deepEqual(net.node('d').machine, ['x'], 'the learner applies committed entries');

  // a and the learner d alone are not a majority of the voters {a, b, c}.
  net.partition(['a', 'd'], ['b', 'c']);
  const second = net.raft('a').propose(bytes('y'));
  net.tick(3, ['a', 'd']);
  assert.ok(net.node('d').store.lastIndex >= second, 'd stores it');
  assert.ok(net.raft('a').commitIndex < second, "but d's copy does not count");
  // Left alone for many election timeouts, the learner never becomes a candidate.
  net.isolate('d');
  for (let i = 0; i < 60; i++) {
    net.tick(1, ['d']);
    assert.equal(net.raft('d').role, 'follower');
  }
  assert.equal(net.sent.filter((m) => m.from === 'd' && m.type === 'RequestVote').length, 0);
});

test('thesis §4.2.3 a removed server that keeps running does not disrupt the cluster (PreVote and CheckQuorum)', () => {
  const net = cluster(['a', 'b', 'c', 'd'], ['a', 'b', 'c', 'd']);
  net.elect('a');
  // d is removed, and never hears of C_new (every message to it is lost until the leader gives up on it).
  net.dropWhere((m) => m.to === 'd' || m.from === 'd');
  net.raft('a').proposeConfigChange([{ type: 'remove', id: 'd' }]);
  net.tick(5);
  assert.deepEqual(sorted(net.raft('a').config.voters), ['a', 'b', 'c']);
  const term = net.raft('a').currentTerm;
  net.heal();
  // d times out again and again; its (pre-)votes reach everyone.
  net.tick(100);
  assert.equal(net.raft('a').role, 'leader', 'a still leads');
  assert.equal(net.raft('a').currentTerm, term, 'and no term was bumped by d');
  const at = net.raft('a').propose(bytes('still serving'));
  net.tick(2);
  assert.ok(net.raft('a').commitIndex >= at);
});

test('thesis §4.2.2 a removed follower is replicated to until it holds the committed C_new, then told it is out; then the leader lets it go', () => {
  const net = cluster(['a', 'b', 'c', 'd'], ['a', 'b', 'c', 'd']);
  net.elect('a');
  net.raft('a').proposeConfigChange([{ type: 'remove', id: 'd' }]);
  net.settle();
  const cNew = net.raft('a').configIndex;
  assert.deepEqual(sorted(net.raft('a').config.voters), ['a', 'b', 'c']);
  assert.ok(net.raft('a').commitIndex >= cNew);
  assert.ok(net.node('d').store.lastIndex >= cNew, 'd got C_new although it is not in it');
  assert.equal(net.raft('d').removed, null, 'not told before a heartbeat round');
  net.tick(3);
  assert.deepEqual(net.raft('d').removed, { by: 'a', configIndex: cNew });
  assert.ok(net.raft('d').commitIndex >= cNew, 'd learned C_new is committed');
  const notices = net.sent.filter((m) => m.type === 'Removed' && m.to === 'd').length;
  assert.ok(notices >= 1 && notices <= 3, `${notices} notices`);
  net.tick(5);
  assert.equal(net.raft('a').progress('d'), undefined, 'the leader no longer tracks d');
  const before = net.sent.length;
  net.tick(20, ['a', 'b', 'c']);
  assert.equal(net.sent.slice(before).filter((m) => m.to === 'd').length, 0, 'nor sends it anything');
  assert.equal(net.raft('a').role, 'leader');
});

test('thesis §4.2.2 a removed server is not told before the entry that removes it is committed', () => {
  const net = cluster(['a', 'b', 'c', 'd'], ['a', 'b', 'c', 'd']);
  net.elect('a');
  const joint = net.raft('a').proposeConfigChange([{ type: 'remove', id: 'd' }]);
  // Step until the joint entry commits and the leader appends C_new.
  for (let i = 0; i < 1000 && net.raft('a').configIndex === joint; i++) {
    net.flush();
    net.deliver();
  }
  const cNew = net.raft('a').configIndex;
  assert.ok(cNew > joint && !isJoint(net.raft('a').config));
  // b and c go quiet: C_new cannot commit, though d gets it.
  net.dropWhere((m) => m.type === 'AppendEntriesResponse' && (m.from === 'b' || m.from === 'c'));
  net.settle();
  net.tick(5);
  assert.ok(net.raft('a').commitIndex < cNew);
  assert.ok(net.node('d').store.lastIndex >= cNew);
  assert.equal(net.sent.filter((m) => m.type === 'Removed').length, 0, 'no notice while C_new is uncommitted');
  assert.equal(net.raft('d').removed, null);
  net.heal();
  net.tick(3);
  assert.ok(net.raft('a').commitIndex >= cNew);
  assert.deepEqual(net.raft('d').removed, { by: 'a', configIndex: cNew });
});

test('thesis §4.2.2 a Removed notice older than a configuration that lists the server again is ignored', () => {
  const net = cluster(['a', 'b', 'c', 'd'], ['a', 'b', 'c', 'd']);
  net.elect('a');
  // d is removed and never told (its notices are lost), then added back as a learner.
  net.dropWhere((m) => m.type === 'Removed');
  net.raft('a').proposeConfigChange([{ type: 'remove', id: 'd' }]);
  net.settle();
  const cNew = net.raft('a').configIndex;
  assert.ok(net.raft('a').commitIndex >= cNew);
  net.raft('a').proposeConfigChange([{ type: 'add-learner', id: 'd' }]);
  net.settle();
  const d = net.raft('d');
  assert.ok(d.configIndex > cNew && d.config.learners.includes('d'));
  // The notice the leader once sent for C_new arrives late.
  d.step({ type: 'Removed', from: 'a', to: 'd', term: d.currentTerm, configIndex: cNew });
  assert.equal(d.removed, null, 'its own newer configuration lists it');
  assert.deepEqual(d.droppedMessages, { invalid: 0, 'not-leader': 0, 'stale-sender': 0, misaddressed: 0, 'contradicts-committed': 0 }, 'a late notice is legitimate traffic');
  d.step({ type: 'Removed', from: 'a', to: 'd', term: d.currentTerm - 1, configIndex: d.configIndex });
  assert.equal(d.removed, null, 'a notice from an old term is stale');
});

test('thesis §4.2.2 a server C_new drops may stand for election while C_new is uncommitted, or a change can wedge', () => {
  // C_old = {a, b, c}, C_new = {c, d, e}. The leader a appends C_new, only b gets it, and a dies.
  const net = cluster(['a', 'b', 'c'], ['a', 'b', 'c', 'd', 'e']);
  net.elect('a');
  const joint = net.raft('a').proposeConfigChange([
    { type: 'remove', id: 'a' },
    { type: 'remove', id: 'b' },
    { type: 'add-voter', id: 'd' },
    { type: 'add-voter', id: 'e' },
  ]);
  for (let i = 0; i < 1000 && net.raft('a').configIndex === joint; i++) {
    net.flush();
    net.deliver();
  }
  const cNew = net.raft('a').configIndex;
  assert.ok(cNew > joint, 'a appended C_new');
  net.dropWhere((m) => m.from === 'a' && m.to !== 'b');
  net.settle();
  assert.ok(net.node('b').store.lastIndex >= cNew && net.node('c').store.lastIndex < cNew, 'only b holds C_new');
  net.heal();
  net.isolate('a');
  // c, d and e need a majority of C_old under C_old,new: c and the dead a or the longer-logged b.
  // b refuses them (§5.4.1), so b itself must stand, under C_new, where c, d and e elect it.
  const others = ['b', 'c', 'd', 'e'];
  const before = net.sent.length;
  net.tickUntil(() => ['c', 'd', 'e'].some((id) => net.raft(id).role === 'leader'), 300, others);
  assert.ok(
    net.sent.slice(before).some((m) => m.from === 'b' && m.type === 'AppendEntries'),
    'b, dropped by C_new, led to finish the change (it steps down as soon as C_new commits)',
  );
  const leader = ['c', 'd', 'e'].find((id) => net.raft(id).role === 'leader');
  assert.ok(leader !== undefined, 'then a member of C_new leads');
  assert.deepEqual(sorted(net.raft(leader).config.voters), ['c', 'd', 'e']);
  assert.ok(net.raft(leader).commitIndex >= cNew);
  assert.deepEqual(net.raft('b').removed, { by: 'b', configIndex: cNew }, 'b knows it is out once C_new commits');
});

test('thesis §3.10 a transfer brings a lagging target up to date, refuses proposals meanwhile, and the target wins at once', () => {
  const net = new Network(['a', 'b', 'c'], ON);
  net.elect('a');
  net.cut('a', 'c');
  for (let i = 0; i < 5; i++) net.raft('a').propose(bytes(`w${i}`));
  net.tick(2, ['a', 'b']);
  const last = net.raft('a').commitIndex;
  assert.ok(net.node('c').store.lastIndex < last, 'c lags');
  const term = net.raft('a').currentTerm;
  net.heal();
  assert.equal(net.raft('a').transferLeadership('c'), 'c');
  assert.throws(() => net.raft('a').propose(bytes('during')), ProposalDroppedError);
  // The next heartbeat round finds c behind; the leader catches it up, then sends TimeoutNow.
  net.tickUntil(() => net.raft('c').role === 'leader', 5);
  assert.equal(net.raft('c').role, 'leader');
  assert.equal(net.raft('c').currentTerm, term + 1, 'one election, no timeout waited for');
  assert.equal(net.raft('a').role, 'follower');
  assert.ok(net.node('c').store.lastIndex >= last, 'c had every entry before it campaigned');
  net.tick(2);
  for (const id of ['a', 'b', 'c']) assert.deepEqual(net.node(id).machine, ['w0', 'w1', 'w2', 'w3', 'w4'], id);
});

test('thesis §3.10 a transfer to a dead server lapses after an election timeout and the old leader carries on', () => {
  const net = new Network(['a', 'b', 'c'], ON);
  net.elect('a');
  const term = net.raft('a').currentTerm;
  net.crash('c');
  net.raft('a').transferLeadership('c');
  assert.equal(net.raft('a').leadTransferee, 'c');
  net.tick(10, ['a', 'b']);
  assert.equal(net.raft('a').leadTransferee, null);
  assert.equal(net.raft('a').role, 'leader');
  assert.equal(net.raft('a').currentTerm, term);
  const at = net.raft('a').propose(bytes('resumed'));
  net.tick(2, ['a', 'b']);
  assert.ok(net.raft('a').commitIndex >= at);
});

test('thesis §3.10 + §4.3 a transfer during the joint phase: C_new waits for the transfer, and the target wins and finishes the change', () => {
  const net = cluster(['a', 'b', 'c'], ['a', 'b', 'c', 'd']);
  net.elect('a');
  const joint = net.raft('a').proposeConfigChange([{ type: 'add-voter', id: 'd' }]);
  net.raft('a').transferLeadership('b');
  const oldTerm = net.raft('a').currentTerm;
  net.settle();
  assert.equal(net.raft('b').role, 'leader', 'b won the election the transfer started');
  assert.equal(net.raft('b').currentTerm, oldTerm + 1);
  net.tick(3);
  const configs = configEntries(net, 'b').filter((c) => c.index >= joint);
  assert.equal(configs.length, 2, 'C_old,new, then C_new');
  assert.equal(configs[0]!.term, oldTerm);
  assert.equal(configs[1]!.term, oldTerm + 1, 'C_new was appended by the new leader, not during the transfer');
  assert.deepEqual(sorted(net.raft('b').config.voters), ['a', 'b', 'c', 'd']);
  assert.equal(isJoint(net.raft('b').config), false);
});

test('thesis §3.10 + §4.3 a transfer that lapses during the joint phase: the old leader appends C_new when it resumes', () => {
  const net = cluster(['a', 'b', 'c'], ['a', 'b', 'c', 'd']);
  net.elect('a');
  net.raft('a').proposeConfigChange([{ type: 'add-voter', id: 'd' }]);
  // b never receives TimeoutNow, so the transfer cannot succeed.
  net.dropWhere((m) => m.type === 'TimeoutNow');
  net.raft('a').transferLeadership('b');
  net.tick(3);
  assert.ok(isJoint(net.raft('a').config), 'still joint while the transfer is pending');
  net.tick(10);
  assert.equal(net.raft('a').role, 'leader');
  assert.equal(net.raft('a').leadTransferee, null);
  assert.equal(isJoint(net.raft('a').config), false, 'C_new appended once the transfer lapsed');
  assert.ok(net.raft('a').commitIndex >= net.raft('a').configIndex);
});
