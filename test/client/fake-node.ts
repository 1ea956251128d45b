// Scripted stand-ins for raftkv nodes on 127.0.0.1: real node:http (or node:https) servers whose
// answers a test writes, recording every request so the test can check what the client sent.
// Optionally they speak TLS with a test CA, require a client certificate, or require a bearer
// token the way a node with --auth-file does (401 UNAUTHENTICATED before the script is asked).
// Over plain HTTP they speak raftkv-mux too (the client's default), unless told not to.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { freePort } from '../../src/transport/free-ports.js';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { decodeMuxRequest, encodeMuxAnswer, MuxFrameReader, MUX_PATH, MUX_PROTOCOL } from '../../src/client/mux-frames.js';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly at: number;
  /** The common name of the client certificate presented, if any (https only). */
  readonly clientCertName: string | null;
}

export interface FakeNodeOptions {
  /** Serve HTTPS with this PEM certificate and key. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer; readonly ca?: Buffer; readonly requireClientCert?: boolean };
  /** Answer 401 UNAUTHENTICATED unless the request carries `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** Refuse the raftkv-mux upgrade, as a node from before it does. @default true (speak it) */
  readonly mux?: boolean;
}

export interface Reply {
  readonly status: number;
  readonly json?: unknown;
  readonly bytes?: Uint8Array;
  readonly headers?: Record<string, string>;
}

/** 'hang' never answers (until the server closes). */
export type Script = (req: SeenRequest, n: number) => Reply | 'hang' | Promise<Reply | 'hang'>;

export interface FakeNode {
  readonly url: string;
  readonly id: string;
  readonly requests: SeenRequest[];
  /** The leader URL sent in raftkv-leader; null sends none. */
  leader: string | null;
  script: Script;
  /** TCP connections accepted so far (keep-alive reuses one for many requests). */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startFakeNode(id: string, script: Script, options: FakeNodeOptions = {}): Promise<FakeNode> {
  const requests: SeenRequest[] = [];
  let server: Server | undefined;
  let connections = 0;
  const upgraded = new Set<Duplex>();
  const node: FakeNode = {
    url: '',
    id,
    requests,
    leader: null,
    script,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of upgraded) s.destroy();
        server!.closeAllConnections();
        server!.close(() => resolve());
      }),
  };
  /** The answer to `seen` as the script (and the token check) decides it. */
  const answerOf = async (seen: SeenRequest): Promise<{ status: number; headers: Record<string, string>; body: Buffer } | 'hang'> => {
    requests.push(seen);
    const isAuthorized = options.token === undefined || seen.headers.authorization === `Bearer ${options.token}`;
    const reply = await (isAuthorized ? node.script(seen, requests.length) : errorReply(401, 'UNAUTHENTICATED'));
    if (reply === 'hang') return 'hang';
    const headers: Record<string, string> = { 'raftkv-node': id, ...(node.leader !== null ? { 'raftkv-leader': node.leader } : {}), ...reply.headers };
    if (reply.bytes !== undefined) return { status: reply.status, headers: { 'content-type': 'application/octet-stream', ...headers }, body: Buffer.from(reply.bytes) };
    return { status: reply.status, headers: { 'content-type': 'application/json', ...headers }, body: Buffer.from(reply.json === undefined ? '' : JSON.stringify(reply.json)) };
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const peer = options.tls !== undefined ? (req.socket as TLSSocket).getPeerCertificate() : undefined;
      const clientCertName = peer !== undefined && typeof peer.subject?.CN === 'string' ? peer.subject.CN : null;
      const seen: SeenRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks), at: Date.now(), clientCertName };
      void answerOf(seen).then((answer) => {
        if (answer === 'hang') return;
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
      });
    });
  };
  // raftkv-mux, as a node speaks it (src/server/mux-server.ts), unless the test wants an older node.
  const onUpgrade = (req: IncomingMessage, socket: Duplex): void => {
    socket.on('error', () => undefined);
    if (options.mux === false || req.url !== MUX_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${MUX_PROTOCOL}\r\n\r\n`);
    const reader = new MuxFrameReader(64 << 20, (frame) => {
      const r = decodeMuxRequest(frame);
      const seen: SeenRequest = { method: r.method, url: r.path, headers: { ...r.headers }, body: Buffer.from(r.body), at: Date.now(), clientCertName: null };
      void answerOf(seen).then((answer) => {
        if (answer !== 'hang' && !socket.destroyed) socket.write(encodeMuxAnswer(r.id, answer.status, answer.headers, answer.body));
      });
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch {
        socket.destroy();
      }
    });
    upgraded.add(socket);
    socket.on('close', () => upgraded.delete(socket));
  };
  const tls = options.tls;
  server =
    tls === undefined
      ? createServer(handler)
      : createHttpsServer({ cert: tls.cert, key: tls.key, ...(tls.ca !== undefined ? { ca: tls.ca } : {}), requestCert: tls.requireClientCert === true, rejectUnauthorized: tls.requireClientCert === true }, handler);
  server.on('connection', () => connections++);
  server.on('upgrade', onUpgrade);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  (node as { url: string }).url = `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return node;
}

/** The URL of a port no one listens on (claimed for this process, outside the ephemeral range): a node that is down. */
export async function downNodeUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

export function errorReply(status: number, code: string, headers: Record<string, string> = {}): Reply {
  return { status, json: { error: { code, message: `scripted ${code}` } }, headers };
}

/** Runs `body` with fresh nodes and always closes them, whatever happens. */
export async function withNodes<T>(nodes: Promise<FakeNode>[], body: (nodes: FakeNode[]) => Promise<T>): Promise<T> {
  const started = await Promise.all(nodes);
  try {
    return await body(started);
  } finally {
    await Promise.all(started.map((n) => n.close()));
  }
}

/** A tiny in-memory KV on the wire format of docs/api.md, for round-trip tests. */
export function kvScript(): Script {
  const data = new Map<string, { value: Buffer; createIndex: number; modIndex: number; version: number }>();
  let index = 0;
  const strict = new TextDecoder('utf-8', { fatal: true });
  return (req) => {
    const url = new URL(req.url, 'http://x');
    if (!url.pathname.startsWith('/v1/kv/')) return errorReply(404, 'NOT_FOUND');
    const key = decodeURIComponent(url.pathname.slice('/v1/kv/'.length));
    if (req.method === 'PUT') {
      index++;
      const old = data.get(key);
      data.set(key, { value: req.body, createIndex: old?.createIndex ?? index, modIndex: index, version: (old?.version ?? 0) + 1 });
      // Every write here changes a key, so the revision is the index plus the store's first revision.
      return { status: 200, json: { index, revision: index + 1 } };
    }
    const rec = data.get(key);
    if (rec === undefined) return errorReply(404, 'NOT_FOUND');
    if (url.searchParams.has('raw')) return { status: 200, bytes: rec.value };
    let value: string;
    let encoding: string | undefined;
    try {
      value = strict.decode(rec.value);
    } catch {
      value = rec.value.toString('base64');
      encoding = 'base64';
    }
    return { status: 200, json: { key, value, ...(encoding ? { encoding } : {}), createIndex: rec.createIndex, modIndex: rec.modIndex, version: rec.version, createRevision: rec.createIndex + 1, modRevision: rec.modIndex + 1, lease: 0 } };
  };
}
