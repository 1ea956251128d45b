// npm run bench:core — three consensus cores in one process, no I/O: how many 128-byte entries
// per second can they commit? Each core's Readies are carried out by the shipping runtime
// (src/node/runtime.ts) over ports that cost nothing: messages are delivered in memory,
// "persisting" completes at once, the state machine counts. Prints entries/s per run and the median.
import { Runtime, type StoragePort } from '../src/node/runtime.js';
import { Raft, bootstrapState, type Entry, type Message, type NodeId, type StateMachine } from '../src/raft/index.js';
import { Rng } from '../src/sim/random.js';

const ENTRY_BYTES = 128;
const BATCH = Number(process.env['BATCH'] ?? 256);
const ENTRIES_PER_RUN = Number(process.env['ENTRIES'] ?? 2_000_000);
const RUNS = Number(process.env['RUNS'] ?? 5);

const FREE_STORAGE: StoragePort = {
  append: () => undefined,
  setHardState: () => undefined,
  sync: (done) => done(null),
  installSnapshot: (_snapshot, done) => done(null),
  saveSnapshot: (_snapshot, done) => done(null),
  compact: (_index, done) => done(null),
};

const NO_TIMERS = {
  now: (): number => 0,
  setTimer(): () => void {
    throw new Error('nothing here fails, so nothing is retried');
  },
};

/** Counts what it applies, and nothing else. */
class CountingMachine implements StateMachine<void> {
  applied = 0;
  apply(_entry: Entry): void {
    this.applied++;
  }
  snapshot(): Uint8Array {
    return new Uint8Array(0);
  }
  restore(): void {}
}

function runOnce(run: number): number {
  const ids: NodeId[] = ['n1', 'n2', 'n3'];
  const state = bootstrapState({ voters: ids, votersOutgoing: [], learners: [] });
  const runtimes = new Map<NodeId, Runtime<void>>();
  let inbox: Message[] = [];
  const transport = { send: (m: Message): void => void inbox.push(m) };
  const machines = new Map<NodeId, CountingMachine>();
  ids.forEach((id, i) => {
    const core = new Raft({ id, random: new Rng(run * 10 + i + 1).asFunction(), maxInflightMessages: 64 }, state);
    const stateMachine = new CountingMachine();
    machines.set(id, stateMachine);
    runtimes.set(id, new Runtime<void>({ core, storage: FREE_STORAGE, transport, stateMachine, clock: NO_TIMERS, applied: 0, latestSnapshot: null, snapshotEntries: Number.POSITIVE_INFINITY }));
  });
  const nodes = new Map<NodeId, Raft>([...runtimes].map(([id, rt]) => [id, rt.core]));
  const leaderMachine = machines.get('n1')!;
  let committed = 0;

  const pump = (): void => {
    for (const rt of runtimes.values()) rt.pump();
    committed = leaderMachine.applied;
    const batch = inbox;
    inbox = [];
    for (const m of batch) runtimes.get(m.to)!.receive(m);
  };

  const n1 = nodes.get('n1')!;
  n1.campaign();
  for (let i = 0; i < 100 && n1.role !== 'leader'; i++) pump();
  if (n1.role !== 'leader') throw new Error('no leader elected');
  for (let i = 0; i < 20; i++) pump();

  const base = leaderMachine.applied;
  const payloads: Uint8Array[] = [];
  for (let i = 0; i < BATCH; i++) payloads.push(new Uint8Array(ENTRY_BYTES).fill(i & 0xff));
  const start = process.hrtime.bigint();
  let proposed = 0;
  let rounds = 0;
  while (committed - base < ENTRIES_PER_RUN) {
    // Keep a few batches in flight, as a loaded runtime would.
    if (proposed - (committed - base) < BATCH * 8) {
      n1.proposeBatch(payloads);
      proposed += BATCH;
    }
    pump();
    if (++rounds % 64 === 0) n1.tick();
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const entries = committed - base;
  // Not a benchmark of a broken core: every node must have applied the same log.
  for (let i = 0; i < 50; i++) { n1.tick(); pump(); }
  for (const [id, rt] of runtimes) {
    const node = rt.core;
    if (rt.appliedIndex !== n1.commitIndex || node.termAt(rt.appliedIndex) !== n1.termAt(n1.commitIndex)) {
      throw new Error(`${id} applied ${rt.appliedIndex}, leader committed ${n1.commitIndex}`);
    }
  }
  return entries / seconds;
}

const rates: number[] = [];
for (let run = 1; run <= RUNS; run++) {
  const rate = runOnce(run);
  rates.push(rate);
  console.log(`run ${run}: ${Math.round(rate).toLocaleString('en-US')} entries/s committed`);
}
rates.sort((a, b) => a - b);
const median = rates[Math.floor(rates.length / 2)]!;
console.log(`bench:core 3 nodes, ${ENTRY_BYTES}-byte entries, batches of ${BATCH}: median ${Math.round(median).toLocaleString('en-US')} entries/s (target ≥ 300,000)`);
