// Transport throughput: a leader and a follower transport on 127.0.0.1 in one process. The
// leader keeps a window of AppendEntries (64 entries of 256 bytes, fresh Entry objects each, as
// a leader's log would hand them over) in flight; the follower answers each with an
// AppendEntriesResponse, which opens the window again. Prints the median of several runs.
// Run: node dist/bench/transport.js [--runs 3] [--seconds 1.5] [--window 64]
import { TcpTransport, silentLogger } from '../src/transport/index.js';
import type { Entry, Message } from '../src/raft/types.js';

const ENTRIES_PER_MESSAGE = 64;
const ENTRY_BYTES = 256;

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

interface RunResult {
  readonly messagesPerSecond: number;
  readonly entriesPerSecond: number;
  readonly payloadMBPerSecond: number;
  readonly wireMBPerSecond: number;
}

async function run(seconds: number, window: number): Promise<RunResult> {
  const payload = new Uint8Array(ENTRY_BYTES).fill(7);
  let leader: TcpTransport | null = null;
  let acked = 0;
  let nextIndex = 1;
  let isRunning = true;
  let onAck = (): void => {};
  const follower = new TcpTransport({
    id: 'f',
    listenHost: '127.0.0.1',
    listenPort: 0,
    logger: silentLogger,
    onMessage: (m) => {
      if (m.type !== 'AppendEntries') return;
      const last = m.entries.length === 0 ? m.prevLogIndex : m.entries[m.entries.length - 1]!.index;
      follower.send({ type: 'AppendEntriesResponse', from: 'f', to: 'l', term: 1, success: true, matchIndex: last, rejectedIndex: m.prevLogIndex, conflictTerm: 0, conflictIndex: 0, seq: m.seq });
    },
  });
  leader = new TcpTransport({
    id: 'l',
    listenHost: '127.0.0.1',
    listenPort: 0,
    logger: silentLogger,
    onMessage: (m) => {
      if (m.type !== 'AppendEntriesResponse') return;
      acked++;
      onAck();
    },
  });
  await Promise.all([leader.start(), follower.start()]);
  leader.addPeer('f', follower.address());
  follower.addPeer('l', leader.address());

  const sendOne = (): void => {
    const entries: Entry[] = new Array<Entry>(ENTRIES_PER_MESSAGE);
    const prevLogIndex = nextIndex - 1;
    for (let i = 0; i < ENTRIES_PER_MESSAGE; i++) entries[i] = { index: nextIndex++, term: 1, type: 'normal', data: payload };
    const m: Message = { type: 'AppendEntries', from: 'l', to: 'f', term: 1, prevLogIndex, prevLogTerm: 1, entries, leaderCommit: prevLogIndex, seq: nextIndex };
    leader!.send(m);
  };
  onAck = () => {
    if (isRunning) sendOne();
  };
  const bytesBefore = (): number => leader!.stats().peers.get('f')!.bytesSent;
  // Warm up (connections, JIT), then measure.
  for (let i = 0; i < window; i++) sendOne();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const startAcked = acked;
  const startBytes = bytesBefore();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const elapsed = (performance.now() - started) / 1000;
  const messages = acked - startAcked;
  const wireBytes = bytesBefore() - startBytes;
  isRunning = false;
  const dropped = leader.stats().peers.get('f')!.messagesDropped;
  await Promise.all([leader.stop(), follower.stop()]);
  if (dropped > 0) console.error(`warning: ${dropped} messages dropped`);
  return {
    messagesPerSecond: messages / elapsed,
    entriesPerSecond: (messages * ENTRIES_PER_MESSAGE) / elapsed,
    payloadMBPerSecond: (messages * ENTRIES_PER_MESSAGE * ENTRY_BYTES) / elapsed / 1e6,
    wireMBPerSecond: wireBytes / elapsed / 1e6,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const runs = flag('runs', 3);
  const seconds = flag('seconds', 1.5);
  const window = flag('window', 64);
  console.log(`transport bench: AppendEntries of ${ENTRIES_PER_MESSAGE} x ${ENTRY_BYTES} B entries, window ${window}, ${runs} runs of ${seconds} s, one process`);
  const results: RunResult[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await run(seconds, window);
    results.push(r);
    console.log(
      `  run ${i + 1}: ${r.messagesPerSecond.toFixed(0)} msg/s, ${r.entriesPerSecond.toFixed(0)} entries/s, ` +
        `${r.payloadMBPerSecond.toFixed(1)} MB/s payload, ${r.wireMBPerSecond.toFixed(1)} MB/s on the wire`,
    );
  }
  console.log(
    `median: ${median(results.map((r) => r.messagesPerSecond)).toFixed(0)} msg/s, ` +
      `${median(results.map((r) => r.entriesPerSecond)).toFixed(0)} entries/s, ` +
      `${median(results.map((r) => r.payloadMBPerSecond)).toFixed(1)} MB/s payload, ` +
      `${median(results.map((r) => r.wireMBPerSecond)).toFixed(1)} MB/s on the wire`,
  );
}

await main();
