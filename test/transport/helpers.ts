// Shared fixtures for the transport tests: message arbitraries for property tests, transports
// on 127.0.0.1 with silent logging, a bounded wait, hand-driven hostile clients, and a test PKI.
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { makeCertificate, makeCertificateAuthority, readPem } from '../../src/security/certs.js';
import { FrameDecoder, FrameType, MESSAGE_FORMAT, encodeHelloAck } from '../../src/transport/frame.js';
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
    leaderStable: uint,
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

/** A hand-driven client on a raw socket (plain or TLS): what a hostile peer would send. */
export interface RawClient {
  readonly socket: net.Socket;
  /** Frames the server sent back, copied. */
  readonly frames: Buffer[];
  /** Resolves with the time (ms since the socket was opened) at which it closed. */
  readonly closed: Promise<number>;
  readonly isClosed: () => boolean;
}

export interface RawClientOptions {
  /** Dial with TLS using these (PEM contents); omit cert/key to present no certificate. */
  readonly tls?: { readonly ca: string | Buffer; readonly cert?: string | Buffer; readonly key?: string | Buffer };
  /** Sent first, once connected (after the TLS handshake with tls). */
  readonly send?: Buffer;
}

export function rawClient(t: TestContext, port: number, options: RawClientOptions = {}): RawClient {
  const openedAt = performance.now();
  const frames: Buffer[] = [];
  const decoder = new FrameDecoder(64 * 1024 * 1024);
  let isClosed = false;
  const socket =
    options.tls === undefined
      ? net.connect({ host: '127.0.0.1', port })
      : tls.connect({ host: '127.0.0.1', port, ca: options.tls.ca, cert: options.tls.cert, key: options.tls.key });
  // Written at once (the socket holds it until connected), so later writes keep their order.
  if (options.send !== undefined) socket.write(options.send);
  socket.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk, (f) => frames.push(Buffer.from(f)) > 0);
    } catch {
      socket.destroy();
    }
  });
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) =>
    socket.on('close', () => {
      isClosed = true;
      resolve(performance.now() - openedAt);
    }),
  );
  t.after(() => socket.destroy());
  return { socket, frames, closed, isClosed: () => isClosed };
}

/** Resolves with what `p` resolves to, or rejects after `ms` naming `what`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** Builds a frame of `type` around `body` by hand, as an attacker would. */
export function rawFrame(type: number, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(body.length + 1, 0);
  h[4] = type;
  return Buffer.concat([h, body]);
}

export interface TestPki {
  /** The cluster's CA and certificates it signed for n1..n3 (SANs 127.0.0.1, localhost). */
  readonly ca: Buffer;
  readonly nodes: ReadonlyMap<string, { readonly cert: Buffer; readonly key: Buffer }>;
  /** Another CA and a certificate it signed: a stranger with a well-formed but foreign identity. */
  readonly otherCa: Buffer;
  readonly stranger: { readonly cert: Buffer; readonly key: Buffer };
  /** Signed by the cluster's CA, but for another address (10.9.9.9, elsewhere.example). */
  readonly misaddressed: { readonly cert: Buffer; readonly key: Buffer };
}

/** Makes the test PKI once per test file in a temporary directory, removed when the process exits. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-transport-pki-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const read = (p: { cert: string; key: string }): { cert: Buffer; key: Buffer } => ({ cert: readPem(p.cert, 'cert'), key: readPem(p.key, 'key') });
  const ca = makeCertificateAuthority(dir);
  const nodes = new Map(['n1', 'n2', 'n3'].map((id) => [id, read(makeCertificate(ca, dir, id, { commonName: id }))] as const));
  const other = makeCertificateAuthority(dir, 'other-ca');
  return {
    ca: readPem(ca.cert, 'ca'),
    nodes,
    otherCa: readPem(other.cert, 'ca'),
    stranger: read(makeCertificate(other, dir, 'stranger', { commonName: 'n1' })),
    misaddressed: read(makeCertificate(ca, dir, 'misaddressed', { commonName: 'n2', dnsNames: ['elsewhere.example'], ipAddresses: ['10.9.9.9'] })),
  };
}

/**
 * A peer that speaks just enough protocol: it acknowledges every HELLO (announcing message
 * format `format`, frame.ts) and hands each frame after it to `onFrame` with the connection's
 * number (0, 1, ...). Returns its port.
 */
export async function scriptedPeer(t: TestContext, onFrame: (socket: net.Socket, connection: number, frame: Buffer) => void, format: number = MESSAGE_FORMAT): Promise<number> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    const n = connections++;
    sockets.add(socket);
    const decoder = new FrameDecoder(1 << 20);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) =>
      decoder.push(chunk, (frame) => {
        if (frame[4] === FrameType.hello) socket.write(encodeHelloAck(format));
        else onFrame(socket, n, frame);
        return true;
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}
