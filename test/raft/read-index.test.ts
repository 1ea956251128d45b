// Linearizable reads without log writes (thesis §6.4, ReadIndex): the leader records its commit
// index, confirms it is still leader with a heartbeat round a majority acknowledges, and only then
// releases the read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NotLeaderError } from '../../src/raft/index.js';
import type { AppendEntries, Message } from '../../src/raft/index.js';
import { Network, appendEntries, bytes, makeNode, ofType } from './harness.js';
import type { TestNode } from './harness.js';

const ABC = ['a', 'b', 'c'];
const ON = { preVote: true, checkQuorum: true, electionTicks: 10 };

function steady(): Network {
  const net = new Network(ABC, ON);
  net.elect('a');
  net.tick(1);
  assert.equal(net.raft('a').commitIndex, 2);
  return net;
}

/** The AppendEntries the leader sends after the request (a tick if it waits for the next round). */
function roundAfter(a: TestNode): AppendEntries[] {
  let sent = ofType(a.drain().messages, 'AppendEntries');
  if (sent.length === 0) {
    a.raft.tick();
    sent = ofType(a.drain().messages, 'AppendEntries');
  }
  assert.ok(sent.length > 0, 'the leader must contact the followers to confirm its leadership');
  return sent;
}

/** Delivers one request to its follower and that follower's answer back to the leader. */
function roundTrip(net: Network, m: Message): void {
  const answers = net.node(m.to).stepOut(m).messages;
  for (const r of ofType(answers, 'AppendEntriesResponse')) net.node('a').stepOut(r);
}

test('thesis §6.4 a read is released only after a majority acknowledged a heartbeat sent after the request', () => {
  const net = steady();
  const a = net.node('a');
  a.raft.readIndex(7);
  const round = roundAfter(a);
  assert.deepEqual(a.readStates, [], 'not before any acknowledgement');
  roundTrip(net, round.find((m) => m.to === 'b')!);
  assert.deepEqual(a.readStates, [{ requestId: 7, index: 2 }], 'a and b are a majority of three');
});

test("thesis §6.4 an acknowledgement of a heartbeat sent before the request does not confirm it", () => {
  const net = steady();
  const a = net.node('a');
  a.raft.tick();
  const early = ofType(a.drain().messages, 'AppendEntries').find((m) => m.to === 'b');
  assert.ok(early !== undefined, 'heartbeatTicks is 1');
  a.raft.readIndex(7);
  const round = roundAfter(a);
  roundTrip(net, early);
  assert.deepEqual(a.readStates, [], 'b answered a round the leader sent before the read');
  roundTrip(net, round.find((m) => m.to === 'b')!);
  assert.deepEqual(a.readStates, [{ requestId: 7, index: 2 }]);
});

test("thesis §6.4 the read index is the leader's commitIndex when the request arrived", () => {
  const net = steady();
  const a = net.node('a');
  a.raft.propose(bytes('x')); // in flight, not yet committed
  a.raft.readIndex(9);
  net.settle();
  net.tick(1);
  assert.equal(a.raft.commitIndex, 3);
  assert.deepEqual(a.readStates, [{ requestId: 9, index: 2 }]);
});

test('thesis §6.4 a new leader releases no read before it has committed an entry of its own term', () => {
  const net = new Network(ABC, ON);
  const strip = (m: Message): Message => (m.type === 'AppendEntries' ? { ...m, entries: [] } : m);
  net.raft('a').campaign();
  net.settle(strip);
  const a = net.node('a');
  assert.equal(a.raft.role, 'leader');
  assert.equal(a.raft.commitIndex, 1, "its no-op has reached nobody");
  a.raft.readIndex(5);
  for (let i = 0; i < 3; i++) {
    a.raft.tick();
    net.settle(strip); // heartbeats are acknowledged, the no-op never arrives
  }
  assert.deepEqual(a.readStates, [], 'commitIndex 1 may be stale: an earlier leader may have committed more');
  net.tick(10);
  assert.equal(a.raft.commitIndex, 2);
  assert.deepEqual(a.readStates, [{ requestId: 5, index: 2 }]);
});

test('thesis §6.4 readIndex on a follower throws NotLeaderError naming the leader', () => {
  const net = steady();
  assert.throws(() => net.raft('b').readIndex(1), (err: unknown) => err instanceof NotLeaderError && err.leaderId === 'a');
});

test('thesis §6.4 a leader cut off from the majority never releases a read', () => {
  const net = steady();
  net.isolate('a');
  net.raft('a').readIndex(3);
  net.tick(9, ['a']);
  assert.deepEqual(net.node('a').readStates, []);
});

test('thesis §6.4 a single-voter leader releases a read at once with its commitIndex', () => {
  const a = makeNode('a', ['a'], ON);
  a.raft.campaign();
  a.drain();
  a.drain();
  assert.equal(a.raft.commitIndex, 2);
  a.raft.readIndex(4);
  const out = a.drain();
  assert.deepEqual(out.readStates, [{ requestId: 4, index: 2 }]);
});

test('thesis §6.4 reads confirmed by one round are all released, in request order', () => {
  const net = steady();
  const a = net.node('a');
  a.raft.readIndex(1);
  a.raft.readIndex(2);
  a.raft.readIndex(3);
  net.settle();
  net.tick(1);
  assert.deepEqual(a.readStates.map((r) => r.requestId), [1, 2, 3]);
  assert.ok(a.readStates.every((r) => r.index === 2));
});

test("thesis §6.4 a follower's rejection of a stale leader's AppendEntries confirms no round of a later leadership", () => {
  // Found by the simulator (seed 9140, 5 nodes, --no-check-quorum): a leader that crashed and
  // restarted starts counting rounds from 0 again. An AppendEntries of its previous incarnation
  // (an earlier term, round 266) reached a follower already in the new term, which rejected it
  // with its term and echoed round 266; the restarted node, now leading that term, took the echo
  // as an acknowledgement of its own round 266 and confirmed every read up to it, isolated.
  const net = steady();
  const a = net.node('a');
  const b = net.node('b');
  const term = a.raft.currentTerm;
  const stale = appendEntries('a', 'b', term - 1, 0, 0, [], 0, 1000);
  const rejections = ofType(b.stepOut(stale).messages, 'AppendEntriesResponse');
  assert.equal(rejections.length, 1);
  assert.equal(rejections[0]!.term, term, 'the rejection carries the newer term');
  a.raft.readIndex(7);
  roundAfter(a);
  a.stepOut(rejections[0]!);
  assert.deepEqual(a.readStates, [], 'b acknowledged no round of this leadership');
});

test('thesis §6.4 with §5.4.2 counted by followers: the read index covers every write a follower may already have answered', () => {
  // A follower that counts the leader's announced durable copy with its own commits (and may
  // answer its client) before the leader has heard a single acknowledgement. The leader's
  // commitIndex then lags what is committed, and a read index taken from it alone lets a read
  // miss a write that was answered before the read began.
  const net = steady();
  const a = net.node('a');
  const b = net.node('b');
  a.raft.propose(bytes('x'));
  const toB = ofType(a.drain().messages, 'AppendEntries').find((m) => m.to === 'b' && m.entries.length > 0)!;
  const held = ofType(b.stepOut(toB).messages, 'AppendEntriesResponse');
  assert.equal(held.length, 1, 'b acknowledges entry 3; the acknowledgement is held back');
  assert.ok(a.raft.announceStable(['b']));
  const announced = ofType(a.drain().messages, 'AppendEntries').find((m) => m.to === 'b')!;
  assert.equal(announced.leaderStable, 3);
  b.stepOut(announced);
  assert.equal(b.raft.commitIndex, 3, 'b counted entry 3 committed (and could answer its client)');
  assert.equal(a.raft.commitIndex, 2, 'the leader has not heard of it');
  a.raft.readIndex(9);
  const round = roundAfter(a);
  roundTrip(net, round.find((m) => m.to === 'c')!);
  assert.equal(a.readStates.length, 1);
  assert.ok(a.readStates[0]!.index >= 3, `read index ${a.readStates[0]!.index} misses entry 3, which b counted committed`);
  const lease = a.raft.leaseReadIndex();
  assert.notEqual(lease, null, 'the round c just acknowledged holds the lease');
  assert.ok(lease! >= 3, `a lease read at ${lease} misses entry 3 too`);
});
