// Log replication from the leader's side (§5.3): proposals, AppendEntries from nextIndex,
// matchIndex/nextIndex bookkeeping, backtracking with the conflict hint, retries and flow control.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NotLeaderError } from '../../src/raft/index.js';
import { entryBytes } from '../../src/raft/log.js';
import type { AppendEntries, Message } from '../../src/raft/index.js';
import { Network, PAPER, bytes, entry, ofType, stateOf } from './harness.js';
import type { NodeOptions } from './harness.js';
import { FIGURE_7_FOLLOWERS, FIGURE_7_LEADER } from './figures.js';

const ABC = ['a', 'b', 'c'];

function appendsTo(ms: readonly Message[], to: string): AppendEntries[] {
  return ofType(ms, 'AppendEntries').filter((m) => m.to === to);
}

function elected(options: NodeOptions = PAPER): Network {
  const net = new Network(ABC, options);
  net.elect('a');
  return net;
}

test('§5.3 the leader appends a proposal to its log as an entry of its term and returns its index', () => {
  const net = elected();
  const a = net.node('a');
  const index = a.raft.propose(bytes('x'));
  assert.equal(index, 3);
  assert.deepEqual(a.raft.entryAt(3), { index: 3, term: 2, type: 'normal', data: bytes('x') });
  assert.deepEqual(a.drain().entries, [{ index: 3, term: 2, type: 'normal', data: bytes('x') }]);
});

test('§5.3 proposeBatch appends every entry in order and returns the first new index', () => {
  const net = elected();
  const first = net.raft('a').proposeBatch([bytes('x'), bytes('y'), bytes('z')]);
  assert.equal(first, 3);
  assert.deepEqual([3, 4, 5].map((i) => net.raft('a').entryAt(i)?.data), [bytes('x'), bytes('y'), bytes('z')]);
  net.settle();
  assert.deepEqual(net.node('c').machine, ['x', 'y', 'z']);
});

test('§5.1 a follower refuses a proposal with NotLeaderError naming the leader', () => {
  const net = elected();
  assert.throws(
    () => net.raft('b').propose(bytes('x')),
    (err: unknown) => err instanceof NotLeaderError && err.code === 'NOT_LEADER' && err.leaderId === 'a',
  );
  assert.equal(net.raft('b').lastIndex, 2);
});

test('§5.3 AppendEntries carries the entries from nextIndex, with prevLogIndex = nextIndex − 1 and its term', () => {
  const net = elected();
  const a = net.node('a');
  assert.deepEqual(a.raft.progress('b'), { matchIndex: 2, nextIndex: 3, state: 'replicate' });
  a.raft.propose(bytes('x'));
  const [m, ...more] = appendsTo(a.drain().messages, 'b');
  assert.equal(more.length, 0);
  assert.deepEqual(
    { prevLogIndex: m?.prevLogIndex, prevLogTerm: m?.prevLogTerm, entries: m?.entries, leaderCommit: m?.leaderCommit, term: m?.term },
    { prevLogIndex: 2, prevLogTerm: 2, entries: [{ index: 3, term: 2, type: 'normal', data: bytes('x') }], leaderCommit: 2, term: 2 },
  );
});

test('§5.3 a successful AppendEntriesResponse raises matchIndex and nextIndex', () => {
  const net = elected();
  net.raft('a').propose(bytes('x'));
  net.raft('a').propose(bytes('y'));
  net.settle();
  assert.deepEqual(net.raft('a').progress('b'), { matchIndex: 4, nextIndex: 5, state: 'replicate' });
  assert.deepEqual(net.raft('a').progress('c'), { matchIndex: 4, nextIndex: 5, state: 'replicate' });
});

test('§5.3 a stale success reporting less than matchIndex does not lower matchIndex', () => {
  const net = elected();
  net.raft('a').propose(bytes('x'));
  net.settle();
  net.node('a').stepOut({
    type: 'AppendEntriesResponse', from: 'b', to: 'a', term: 2, success: true,
    matchIndex: 2, rejectedIndex: 0, conflictTerm: 0, conflictIndex: 0, seq: 0,
  });
  assert.equal(net.raft('a').progress('b')?.matchIndex, 3);
});

/** A leader of term 8 with Figure 7's log, a twin that votes for it, and follower (f). */
function figure7(follower: readonly number[]): Network {
  const ids = ['L', 'T', 'F'];
  const net = new Network(ids, (id) => ({
    ...PAPER,
    state:
      id === 'F'
        ? stateOf(ids, { terms: follower, currentTerm: 7 })
        : stateOf(ids, { terms: FIGURE_7_LEADER, currentTerm: 7 }),
  }));
  net.elect('L');
  assert.equal(net.raft('L').currentTerm, 8);
  return net;
}

function rejectionsFrom(net: Network, id: string): number {
  return ofType(net.sent, 'AppendEntriesResponse').filter((m) => m.from === id && !m.success).length;
}

test('§5.3 after a rejection the leader backs nextIndex up a term at a time using the hint (Figure 7 f)', () => {
  const net = figure7(FIGURE_7_FOLLOWERS.f);
  net.settle();
  // (f) holds two terms the leader never had (2 and 3): one rejection per term, not per entry.
  assert.ok(rejectionsFrom(net, 'F') <= 2, `${rejectionsFrom(net, 'F')} rejections`);
  assert.deepEqual(net.terms('F'), net.terms('L'));
  assert.deepEqual(net.terms('L'), [...FIGURE_7_LEADER, 8]);
});

test('§5.3 a follower missing entries is found in one round trip per term, not per entry (Figure 7 e)', () => {
  const net = figure7(FIGURE_7_FOLLOWERS.e);
  net.settle();
  assert.ok(rejectionsFrom(net, 'F') <= 2, `${rejectionsFrom(net, 'F')} rejections`);
  const probes = appendsTo(net.sent, 'F').map((m) => m.prevLogIndex);
  // Entry at a time would probe 10, 9, 8, 7, 6, 5.
  assert.ok(probes.length <= 4, `probes at ${probes.join(',')}`);
  assert.deepEqual(net.terms('F'), net.terms('L'));
});

test('§5.3 the leader retries AppendEntries indefinitely: a follower whose messages were lost catches up', () => {
  const net = elected();
  net.dropWhere((m) => m.to === 'c' || m.from === 'c');
  net.raft('a').propose(bytes('x'));
  net.raft('a').propose(bytes('y'));
  net.settle();
  assert.equal(net.raft('a').commitIndex, 4, 'committed by a and b');
  assert.equal(net.raft('c').lastIndex, 2);
  net.heal();
  net.tick(5);
  assert.equal(net.raft('c').lastIndex, 4);
  assert.equal(net.raft('c').commitIndex, 4);
  assert.deepEqual(net.node('c').machine, ['x', 'y']);
});

test('flow control: at most maxInflightMessages AppendEntries are in flight to a replicating follower', () => {
  const net = elected({ ...PAPER, maxInflightMessages: 2 });
  const a = net.node('a');
  assert.equal(a.raft.progress('b')?.state, 'replicate');
  const sent: Message[] = [];
  for (let i = 0; i < 6; i++) {
    a.raft.propose(bytes(`p${i}`));
    sent.push(...a.drain().messages);
  }
  const withEntries = appendsTo(sent, 'b').filter((m) => m.entries.length > 0);
  assert.equal(withEntries.length, 2, 'two in flight, then paused until an acknowledgement');
  // The held messages are lost; the leader eventually resends everything.
  net.tick(10);
  assert.equal(net.raft('b').lastIndex, 8);
  assert.equal(net.raft('a').commitIndex, 8);
});

test('flow control: an acknowledgement frees a slot in the in-flight window', () => {
  const net = elected({ ...PAPER, maxInflightMessages: 1 });
  const a = net.node('a');
  a.raft.propose(bytes('p0'));
  const [first] = appendsTo(a.drain().messages, 'b');
  a.raft.propose(bytes('p1'));
  assert.deepEqual(appendsTo(a.drain().messages, 'b'), [], 'window full');
  assert.ok(first !== undefined);
  const b = net.node('b');
  const ack = ofType(b.stepOut(first).messages, 'AppendEntriesResponse');
  const next = appendsTo(a.stepOut(ack[0]!).messages, 'b');
  assert.equal(next.length, 1);
  assert.deepEqual(next[0]?.entries.map((e) => e.index), [4]);
});

test('flow control: a probing follower is sent one AppendEntries at a time', () => {
  const net = new Network(ABC, PAPER);
  net.dropWhere((m) => m.type === 'AppendEntries' && m.to === 'c');
  net.elect('a');
  const a = net.node('a');
  assert.equal(a.raft.progress('c')?.state, 'probe', 'c has not answered yet');
  const before = appendsTo(net.sent, 'c').length;
  for (let i = 0; i < 4; i++) {
    a.raft.propose(bytes(`p${i}`));
    net.settle();
  }
  assert.equal(appendsTo(net.sent, 'c').length, before, 'no second message while the probe is unanswered');
  assert.ok(before <= 1, `${before} probes sent at election`);
  assert.equal(net.raft('b').lastIndex, 6);
});

test('flow control: maxBytesPerMessage caps the entry bytes of one AppendEntries', () => {
  const net = elected({ ...PAPER, maxBytesPerMessage: 100 });
  const payload = (i: number): Uint8Array => bytes(String(i).padStart(40, '.'));
  net.raft('a').proposeBatch(Array.from({ length: 10 }, (_, i) => payload(i)));
  net.settle();
  const carrying = appendsTo(net.sent, 'b').filter((m) => m.entries.length > 0);
  for (const m of carrying) {
    const size = m.entries.reduce((n, e) => n + e.data.length, 0);
    assert.ok(m.entries.length === 1 || size <= 100, `${m.entries.length} entries, ${size} bytes`);
  }
  assert.ok(carrying.length >= 4, `10 × 40 bytes need at least 4 messages of ≤ 100, got ${carrying.length}`);
  assert.equal(net.raft('b').lastIndex, 12);
  assert.equal(net.node('b').machine.length, 10);
});

test('flow control: a replicating follower is sent a whole window at once, in messages of maxBytesPerMessage', () => {
  const net = elected({ ...PAPER, maxBytesPerMessage: 100, maxInflightMessages: 4 });
  const a = net.node('a');
  assert.equal(a.raft.progress('b')?.state, 'replicate');
  a.raft.proposeBatch(Array.from({ length: 10 }, (_, i) => bytes(String(i).padStart(40, '.'))));
  const carrying = appendsTo(a.drain().messages, 'b').filter((m) => m.entries.length > 0);
  assert.equal(carrying.length, 4, 'four messages in flight from one proposal, not one');
  const indexes = carrying.flatMap((m) => m.entries.map((e) => e.index));
  assert.deepEqual(indexes, Array.from({ length: indexes.length }, (_, i) => 3 + i), 'in order, none twice');
  // Those were taken, not delivered: the leader resends what b lacks.
  net.tick(10);
  assert.equal(net.raft('b').lastIndex, 12);
});

test('flow control: maxInflightBytes bounds the window in bytes below maxBytesPerMessage × maxInflightMessages', () => {
  // Entry bytes of each message a proposal of ten entries sends to b at once.
  const windowOf = (maxInflightBytes: number | undefined): number[] => {
    const net = elected({ ...PAPER, maxBytesPerMessage: 100, maxInflightMessages: 4, ...(maxInflightBytes !== undefined ? { maxInflightBytes } : {}) });
    const a = net.node('a');
    a.raft.proposeBatch(Array.from({ length: 10 }, (_, i) => bytes(String(i).padStart(40, '.'))));
    const carrying = appendsTo(a.drain().messages, 'b').filter((m) => m.entries.length > 0);
    return carrying.map((m) => m.entries.reduce((n, e) => n + entryBytes(e), 0));
  };
  assert.equal(windowOf(undefined).length, 4, 'the default (16 MiB) leaves the message count to bind');
  const bounded = windowOf(150);
  const total = bounded.reduce((n, b) => n + b, 0);
  assert.ok(bounded.length < 4, `the byte bound binds first: ${bounded.join(' + ')}`);
  assert.ok(total - bounded.at(-1)! < 150 && total >= 150, `sent until 150 bytes were in flight: ${bounded.join(' + ')}`);
});

test('flow control: a follower far behind is caught up a window per round trip once its probe is answered', () => {
  const net = new Network(ABC, { ...PAPER, maxBytesPerMessage: 100, maxInflightMessages: 4 });
  net.elect('a');
  // c misses 40 entries of 40 bytes (one a message under 100 bytes with its overhead), then is reachable again.
  net.isolate('c');
  for (let i = 0; i < 40; i++) {
    net.raft('a').propose(bytes(String(i).padStart(40, '.')));
    net.settle();
  }
  net.heal();
  const behind = net.raft('c').lastIndex;
  assert.ok(behind < 10, `c holds ${behind}`);
  // The leader heard nothing from c for its window: it probes c again after a few heartbeats.
  for (let t = 0; t < 100 && net.raft('a').progress('c')?.state !== 'probe'; t++) {
    net.raft('a').tick();
    net.flush();
    for (let n = net.queue.length; n > 0; n--) net.deliver();
  }
  assert.equal(net.raft('a').progress('c')?.state, 'probe');
  // Hops: every message in flight delivered once, then what that sent. A round trip is two.
  let hops = 0;
  while (net.raft('c').lastIndex < net.raft('a').lastIndex && hops < 200) {
    net.flush();
    for (let n = net.queue.length; n > 0; n--) net.deliver();
    hops++;
  }
  assert.equal(net.raft('c').lastIndex, net.raft('a').lastIndex);
  // 40 messages in windows of four: ten round trips, twenty hops; one message a round trip took eighty.
  assert.ok(hops <= 24, `c caught up in ${hops} hops`);
});

test('flow control: an answer that tells the leader nothing new sends nothing, so a duplicate cannot echo forever', () => {
  const net = new Network(ABC, { ...PAPER, maxBytesPerMessage: 100, maxInflightMessages: 4 });
  net.dropWhere((m) => m.type === 'AppendEntries' && m.to === 'c');
  net.elect('a');
  const a = net.node('a');
  assert.equal(a.raft.progress('c')?.state, 'probe');
  net.heal();
  // c answers a heartbeat: success at what it holds, which the leader knew. In probe state
  // that sends nothing (the heartbeat round itself sends the probe), however often it comes.
  const hb = { type: 'AppendEntries' as const, from: 'a', to: 'c', term: a.raft.currentTerm, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0, seq: 0, leaderStable: 0 };
  const [answer] = ofType(net.node('c').stepOut(hb).messages, 'AppendEntriesResponse');
  assert.ok(answer !== undefined && answer.success);
  a.stepOut(answer);
  // A rejection above the match point turns c back to probe (one probe out).
  const pr = a.raft.progress('c')!;
  const rejectedIndex = a.raft.lastIndex;
  assert.ok(rejectedIndex > pr.matchIndex);
  const probe = appendsTo(a.stepOut({ type: 'AppendEntriesResponse', from: 'c', to: 'a', term: a.raft.currentTerm, success: false, matchIndex: 0, rejectedIndex, conflictTerm: 0, conflictIndex: pr.matchIndex + 1, seq: 0 }).messages, 'c');
  assert.equal(a.raft.progress('c')?.state, 'probe');
  assert.equal(probe.length, 1);
  // The first answer again, ten times: it tells nothing new, and sends nothing.
  for (let i = 0; i < 10; i++) assert.deepEqual(appendsTo(a.stepOut(answer).messages, 'c'), [], `answer ${i + 1}`);
});

test('§5.3 a leader that becomes a follower keeps entries that match the new leader', () => {
  const net = elected();
  net.raft('a').propose(bytes('x'));
  net.settle();
  net.elect('b');
  assert.equal(net.raft('a').role, 'follower');
  assert.deepEqual(net.raft('a').entryAt(3), entry(3, 2, 'x'));
  assert.deepEqual(net.node('a').machine, ['x']);
});
