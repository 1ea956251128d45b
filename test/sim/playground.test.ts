// The playground's driver (src/sim/playground.ts, what /ui/playground runs in the browser): left
// alone, stepping it one event at a time is the seeded run of `npm run sim` (same trace hash);
// a fault by hand makes it another run and says so; its URL settings round-trip and refuse junk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvariantViolation, runSeed } from '../../src/sim/index.js';
import { FAULT_KINDS } from '../../src/sim/options.js';
import { Playground, queryFromCommand, settingsFromQuery, settingsToQuery, simCommand } from '../../src/sim/playground.js';

test('stepping the playground one event at a time ends in the same state as runSeed for the seed', () => {
  for (const seed of [3, 11]) {
    const expected = runSeed({ seed, nodes: 3, timeMs: 3000 });
    const p = new Playground({ seed, nodes: 3, timeSeconds: 3, faults: FAULT_KINDS, membershipRate: 1 });
    let steps = 0;
    while (p.step()) steps++;
    const got = p.result();
    assert.equal(got.violation, null);
    assert.equal(got.traceHash, expected.traceHash, `seed ${seed}`);
    assert.equal(got.events, expected.events);
    assert.equal(steps + 1, got.events);
    assert.equal(p.diverged, false);
    assert.ok(got.elections >= 1, 'a leader was elected');
  }
});

test('a view mid-run shows one leader per term, logs with terms, and messages in flight', () => {
  const p = new Playground({ seed: 5, nodes: 3, timeSeconds: 3, faults: [], membershipRate: 0 });
  assert.ok(p.advanceTo(1500, 1_000_000));
  const v = p.view();
  const leaders = v.servers.filter((s) => s.role === 'leader');
  assert.equal(leaders.length, 1);
  assert.ok(leaders[0]!.log.length > 0 && leaders[0]!.log.every(([i, t]) => i > 0 && t >= 1));
  assert.ok(v.messages.length > 0, 'heartbeats or appends are on the wire');
  assert.match(v.runningHash, /^[0-9a-f]{8}$/);
});

test('crashing the leader by hand marks the run diverged and a new leader is elected', () => {
  const p = new Playground({ seed: 5, nodes: 3, timeSeconds: 5, faults: [], membershipRate: 0 });
  p.advanceTo(1500, 1_000_000);
  const old = p.view().servers.find((s) => s.role === 'leader')!;
  p.crash(old.slot);
  assert.equal(p.diverged, true);
  assert.equal(p.view().servers[old.slot]!.state, 'down');
  p.advanceTo(3500, 1_000_000);
  const now = p.view().servers.filter((s) => s.role === 'leader' && s.state === 'up');
  assert.equal(now.length, 1);
  assert.notEqual(now[0]!.id, old.id);
  p.restart(old.slot);
  assert.equal(p.view().servers[old.slot]!.state, 'up');
});

test('pausing the leader by hand holds it two election timeouts: the others elect, and at its resume it follows the newer term', () => {
  const p = new Playground({ seed: 5, nodes: 3, timeSeconds: 6, faults: [], membershipRate: 0 });
  p.advanceTo(1500, 1_000_000);
  const old = p.view().servers.find((s) => s.role === 'leader')!;
  p.pause(old.slot);
  assert.equal(p.diverged, true);
  const held = p.view().servers[old.slot]!;
  assert.equal(held.paused, true);
  assert.equal(held.state, 'up', 'a held server is up, only not running');
  p.pause(old.slot);
  assert.equal(p.view().servers[old.slot]!.paused, true, 'a second pause while held does nothing');
  let newLeader: string | null = null;
  while (p.step() && p.view().servers[old.slot]!.paused) {
    const other = p.view().servers.find((s) => s.slot !== old.slot && s.role === 'leader' && s.term > old.term);
    if (other !== undefined) newLeader = other.id;
  }
  assert.ok(newLeader !== null, 'another server was elected while the leader was held');
  p.advanceTo(p.view().nowMs + 1000, 1_000_000);
  const after = p.view().servers[old.slot]!;
  assert.equal(after.paused, false);
  assert.ok(after.term > old.term && after.role !== 'leader', `the old leader follows the newer term: ${after.role} in ${after.term}`);
  assert.equal(p.result().violation, null);
});

test('adding a server by hand goes through the leader and the new server catches up', () => {
  const p = new Playground({ seed: 8, nodes: 3, timeSeconds: 5, faults: [], membershipRate: 1 });
  p.advanceTo(1200, 1_000_000);
  assert.match(p.addServer(), /appended at \d+|refused/);
  p.advanceTo(3000, 1_000_000);
  assert.ok(p.view().servers.some((s) => s.id.startsWith('u') && s.state === 'up' && s.appliedIndex > 0));
});

test('URL settings round-trip, junk falls back with a reason, and the CLI command matches', () => {
  const { settings, problems } = settingsFromQuery('seed=42&nodes=5&time=7&faults=crash,loss');
  assert.deepEqual(problems, []);
  assert.equal(settingsToQuery(settings), 'seed=42&nodes=5&time=7&faults=crash%2Closs');
  assert.equal(simCommand(settings), 'npm run sim -- --seed 42 --nodes 5 --time 7 --faults crash,loss');
  const bad = settingsFromQuery('seed=-1&nodes=99&time=abc&faults=meteor');
  assert.equal(bad.problems.length, 4);
  assert.equal(bad.settings.seed, 1);
  assert.equal(bad.settings.nodes, 3);
});

test('a violation stops the run at the event it happens in and the view carries it', () => {
  const p = new Playground({ seed: 5, nodes: 3, timeSeconds: 3, faults: [], membershipRate: 0 });
  p.advanceTo(500, 1_000_000);
  // A checker that finds a breach at the next step: the run must stop there and say so.
  const suite = p.sim.invariants as unknown as { step: (...args: unknown[]) => void };
  suite.step = () => {
    throw new InvariantViolation('Election Safety', 'two leaders in term 9 (planted by the test)');
  };
  const before = p.sim.eventCount;
  let steps = 0;
  while (p.step()) steps++;
  const v = p.view();
  assert.equal(v.isOver, true);
  assert.equal(v.violation?.invariant, 'Election Safety');
  assert.match(v.violation!.details, /planted by the test/);
  assert.ok(v.events - before <= steps + 1 && v.events - before < 50, `stopped ${v.events - before} events later`);
  assert.equal(p.step(), false, 'nothing runs after a violation');
  assert.ok(p.trace.some((l) => l.includes('VIOLATION Election Safety')));
});

test('a pasted replay line of the CLI becomes the same run, core switches and snapshot knobs included', () => {
  const line = 'npm run sim -- --seed 17 --nodes 3 --time 2 --faults crash,loss --snapshot-every 4 --snapshot-keep 1 --no-prevote --verbose';
  const { query, problems } = queryFromCommand(line);
  assert.deepEqual(problems, []);
  const { settings } = settingsFromQuery(query);
  assert.equal(simCommand(settings), line.replace(' --verbose', ''));
  const expected = runSeed({ seed: 17, nodes: 3, timeMs: 2000, faults: ['crash', 'loss'], snapshotEvery: 4, snapshotKeep: 1, preVote: false });
  assert.equal(new Playground(settings).runToEnd().traceHash, expected.traceHash);
  // The CLI's defaults where a line names none; what is not one run's setting is named.
  const bare = queryFromCommand('npm run sim -- --seed 3 --seeds 10 --workers 2');
  assert.equal(settingsFromQuery(bare.query).settings.nodes, 5);
  assert.equal(settingsFromQuery(bare.query).settings.timeSeconds, 60);
  assert.equal(bare.problems.length, 2);
});

test('the view marks a server held by a pause fault, and a restarted one still loading its state machine beside the core', () => {
  const p = new Playground({ seed: 7, nodes: 3, timeSeconds: 20, faults: ['pause', 'crash'], membershipRate: 0, snapshotEvery: 20, snapshotKeep: 5 });
  let paused = false;
  let loading = false;
  let resumed = false;
  while (p.step() && !(paused && loading && resumed)) {
    const v = p.view();
    for (const s of v.servers) {
      if (s.paused) paused = true;
      if (s.loading) {
        loading = true;
        assert.equal(s.state, 'up', 'a loading server is up: it votes and appends');
      }
    }
    if (paused && v.servers.every((s) => !s.paused)) resumed = true;
  }
  assert.ok(paused, 'a server was shown paused');
  assert.ok(resumed, 'and running again once it resumed');
  assert.ok(loading, 'a restarted server was shown loading');
});
