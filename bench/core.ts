// npm run bench:core — three consensus cores in one process, no I/O: how many 128-byte entries
// per second can they commit? Messages are delivered in memory; "persisting" a Ready is free.
// Prints entries/s per run and the median.
import { Raft, bootstrapState, type Message, type NodeId } from '../src/raft/index.js';
import { Rng } from '../src/sim/random.js';

const ENTRY_BYTES = 128;
const BATCH = Number(process.env['BATCH'] ?? 256);
const ENTRIES_PER_RUN = Number(process.env['ENTRIES'] ?? 2_000_000);
const RUNS = Number(process.env['RUNS'] ?? 5);

function runOnce(run: number): number {
  const ids: NodeId[] = ['n1', 'n2', 'n3'];
  const state = bootstrapState({ voters: ids, votersOutgoing: [], learners: [] });
  const nodes = new Map<NodeId, Raft>();
  ids.forEach((id, i) => nodes.set(id, new Raft({ id, random: new Rng(run * 10 + i + 1).asFunction(), maxInflightMessages: 64 }, state)));
  let inbox: Message[] = [];
  let committed = 0;

  const pump = (): void => {
    for (const node of nodes.values()) {
      while (node.hasReady()) {
        const rd = node.ready();
        for (const m of rd.messages) inbox.push(m);
        for (const m of rd.messagesAfterSync) inbox.push(m);
        if (node.role === 'leader') committed += rd.committedEntries.length;
        node.advance();
      }
    }
    const batch = inbox;
    inbox = [];
    for (const m of batch) nodes.get(m.to)!.step(m);
  };

  const n1 = nodes.get('n1')!;
  n1.campaign();
  for (let i = 0; i < 100 && n1.role !== 'leader'; i++) pump();
  if (n1.role !== 'leader') throw new Error('no leader elected');
  for (let i = 0; i < 20; i++) pump();

  const payloads: Uint8Array[] = [];
  for (let i = 0; i < BATCH; i++) payloads.push(new Uint8Array(ENTRY_BYTES).fill(i & 0xff));
  committed = 0;
  const start = process.hrtime.bigint();
  let proposed = 0;
  let rounds = 0;
  while (committed < ENTRIES_PER_RUN) {
    // Keep a few batches in flight, as a loaded runtime would.
    if (proposed - committed < BATCH * 8) {
      n1.proposeBatch(payloads);
      proposed += BATCH;
    }
    pump();
    if (++rounds % 64 === 0) n1.tick();
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  // Not a benchmark of a broken core: every node must have applied the same log.
  for (let i = 0; i < 50; i++) { n1.tick(); pump(); }
  for (const node of nodes.values()) {
    if (node.lastApplied !== n1.commitIndex || node.termAt(node.lastApplied) !== n1.termAt(n1.commitIndex)) {
      throw new Error(`${node.id} applied ${node.lastApplied}, leader committed ${n1.commitIndex}`);
    }
  }
  return committed / seconds;
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
