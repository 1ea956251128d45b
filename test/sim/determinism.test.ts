// The simulator is a function of its seed: the same seed replays the same trace, event for event,
// on this thread or a worker; different seeds explore different runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT_KINDS, EventQueue, Network, Rng, runSeed, runSeeds, runSeedsInline } from '../../src/sim/index.js';

function traced(seed: number, membershipRate = 1): { lines: string[]; hash: number } {
  const lines: string[] = [];
  const r = runSeed({ seed, nodes: 5, timeMs: 15_000, membershipRate, trace: (l) => lines.push(l) });
  assert.equal(r.violation, null, `seed ${seed}: ${r.violation?.details}`);
  return { lines, hash: r.traceHash };
}

test('the same seed twice gives an identical trace and fingerprint', () => {
  const a = traced(42);
  const b = traced(42);
  assert.ok(a.lines.length > 50, `expected a substantial trace, got ${a.lines.length} lines`);
  assert.ok(a.lines.some((l) => l.includes('became LEADER')));
  assert.deepEqual(a.lines, b.lines);
  assert.equal(a.hash, b.hash);
});

test('with membership changes on, the same seed gives the same run; off, a different one', async () => {
  // Seed 4 adds servers, commits joint changes and transfers leadership within 15 s.
  const a = traced(4);
  const b = traced(4);
  assert.ok(a.lines.some((l) => l.includes('PROVISION')), 'a server was added');
  assert.ok(a.lines.some((l) => /membership .*: appended/.test(l)), 'a change was appended');
  assert.deepEqual(a.lines, b.lines);
  assert.equal(a.hash, b.hash);
  const options = { nodes: 3, timeMs: 20_000, membershipRate: 2 } as const;
  const inline = runSeedsInline([11, 12], options);
  assert.ok(inline.every((r) => r.violation === null && r.membershipProposed > 0));
  assert.deepEqual(await runSeeds([11, 12], options, 2), inline);
  assert.notEqual(traced(4, 0).hash, a.hash);
  assert.ok(!traced(4, 0).lines.some((l) => l.includes('membership')), 'rate 0 turns membership changes off');
});

test('different seeds give different runs', () => {
  const hashes = new Set([1, 2, 3, 4, 5].map((s) => runSeed({ seed: s, nodes: 3, timeMs: 5000 }).traceHash));
  assert.equal(hashes.size, 5);
  assert.notDeepEqual(traced(42).lines, traced(43).lines);
});

test('tracing does not change the run, and a worker thread replays it exactly', async () => {
  const options = { nodes: 5, timeMs: 10_000 } as const;
  const inline = runSeedsInline([7, 8], options);
  const withTrace = runSeed({ ...options, seed: 7, trace: () => {} });
  assert.deepEqual(withTrace, inline[0]);
  const threaded = await runSeeds([7, 8], options, 2);
  assert.deepEqual(threaded, inline);
});

test('events at the same time run in the order they were scheduled', () => {
  const q = new EventQueue();
  const order: number[] = [];
  const times = [5, 1, 5, 3, 1, 5, 0];
  times.forEach((t, i) => (q.schedule(t, EVENT_KINDS.tick, i, 0).from = i));
  for (let e = q.pop(); e !== undefined; e = q.pop()) {
    order.push(e.from);
    q.release(e);
  }
  assert.deepEqual(order, [6, 1, 4, 3, 0, 2, 5]);
});

test('the generator is seeded: equal seeds and streams agree, others do not', () => {
  const draw = (seed: number, stream: number): number[] => {
    const r = new Rng(seed, stream);
    return Array.from({ length: 8 }, () => r.nextUint32());
  };
  assert.deepEqual(draw(1, 0), draw(1, 0));
  assert.notDeepEqual(draw(1, 0), draw(2, 0));
  assert.notDeepEqual(draw(1, 0), draw(1, 1));
  const r = new Rng(9);
  for (let i = 0; i < 1000; i++) {
    const x = r.next();
    assert.ok(x >= 0 && x < 1);
  }
});

test('the network drops messages across a partition and a one-way cut, in one direction only', () => {
  const q = new EventQueue();
  const net = new Network(3, q, new Rng(1), 1, 0);
  const m = { type: 'TimeoutNow', from: 'n1', to: 'n2', term: 1 } as const;
  assert.equal(net.send(0, 0, 1, m), true);
  net.partition([[0], [1, 2]]);
  assert.equal(net.isBlocked(0, 1), true);
  assert.equal(net.isBlocked(1, 0), true);
  assert.equal(net.isBlocked(1, 2), false);
  assert.equal(net.send(0, 0, 1, m), false);
  net.healLinks();
  net.cutOneWay(2, 0);
  assert.equal(net.isBlocked(2, 0), true);
  assert.equal(net.isBlocked(0, 2), false);
  assert.equal(q.size, 1);
});
