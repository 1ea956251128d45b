// Shared fixtures for the transport tests: message arbitraries for property tests, transports
// on 127.0.0.1 with silent logging, and a bounded wait.
import fc from 'fast-check';
import { TcpTransport, silentLogger } from '../../src/transport/index.js';
import type { Arbitrary } from 'fast-check';
import type { TestContext } from 'node:test';
import type { AppendEntries, Entry, Message, NodeId } from '../../src/raft/types.js';
import type { TcpTransportOptions } from '../../src/transport/index.js';

// Plain objects, as the decoder builds them (fast-check defaults to null prototypes).
function rec<T>(model: { [K in keyof T]: Arbitrary<T[K]> }): Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

const uint = fc.maxSafeNat();
const small = fc.nat({ max: 1000 });
// Ids in any script; graphemes keep the strings well-formed UTF-16, as real ids are.
export const nodeIdArb = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).filter((s) => Buffer.byteLength(s) <= 255);
const bytesArb = fc.uint8Array({ maxLength: 300 });

export const entryArb: Arbitrary<Entry> = rec({
  index: uint,
  term: uint,
  type: fc.constantFrom('normal' as const, 'config' as const),
  data: bytesArb,
});

const envelope = { from: nodeIdArb, to: nodeIdArb, term: uint };

export const messageArbs: Record<Message['type'], Arbitrary<Message>> = {
  RequestVote: rec({ type: fc.constant('RequestVote' as const), ...envelope, preVote: fc.boolean(), lastLogIndex: uint, lastLogTerm: uint, transfer: fc.boolean() }),
  RequestVoteResponse: rec({ type: fc.constant('RequestVoteResponse' as const), ...envelope, preVote: fc.boolean(), voteGranted: fc.boolean() }),
  AppendEntries: rec({
    type: fc.constant('AppendEntries' as const),
    ...envelope,
    prevLogIndex: uint,
    prevLogTerm: uint,
    entries: fc.array(entryArb, { maxLength: 8 }),
    leaderCommit: uint,
    seq: uint,
  }),
  AppendEntriesResponse: rec({
    type: fc.constant('AppendEntriesResponse' as const),
    ...envelope,
    success: fc.boolean(),
    matchIndex: uint,
    rejectedIndex: uint,
    conflictTerm: uint,
    conflictIndex: uint,
    seq: uint,
  }),
  InstallSnapshot: rec({
    type: fc.constant('InstallSnapshot' as const),
    ...envelope,
    seq: small,
    snapshot: rec({
      meta: rec({
        index: uint,
        term: uint,
        config: rec({ voters: fc.array(nodeIdArb, { maxLength: 5 }), votersOutgoing: fc.array(nodeIdArb, { maxLength: 5 }), learners: fc.array(nodeIdArb, { maxLength: 3 }) }),
      }),
      data: fc.uint8Array({ maxLength: 2000 }),
    }),
  }),
  InstallSnapshotResponse: rec({ type: fc.constant('InstallSnapshotResponse' as const), ...envelope, matchIndex: uint, seq: uint }),
  TimeoutNow: rec({ type: fc.constant('TimeoutNow' as const), ...envelope }),
  Removed: rec({ type: fc.constant('Removed' as const), ...envelope, configIndex: uint }),
};

export function entry(index: number, term: number, size: number, fill = index & 0xff): Entry {
  return { index, term, type: 'normal', data: new Uint8Array(size).fill(fill) };
}

export function heartbeat(from: NodeId, to: NodeId, seq: number): AppendEntries {
  return { type: 'AppendEntries', from, to, term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0, seq };
}

/** Polls `predicate` until true; fails the test after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export interface Node {
  readonly transport: TcpTransport;
  readonly received: Message[];
}

/** Starts a transport that is stopped when the test ends, whether it passes or fails. */
export async function startNode(t: TestContext, id: NodeId, extra: Partial<TcpTransportOptions> = {}): Promise<Node> {
  const received: Message[] = [];
  const transport = new TcpTransport({
    id,
    listenHost: '127.0.0.1',
    listenPort: 0,
    logger: silentLogger,
    onMessage: (m) => received.push(m),
    ...extra,
  });
  t.after(() => transport.stop());
  await transport.start();
  return { transport, received };
}

/** Connects every node to every other by its bound address. */
export function mesh(nodes: readonly Node[]): void {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.transport.addPeer(b.transport.id, b.transport.address());
}

export { freePort } from '../../src/transport/free-ports.js';
