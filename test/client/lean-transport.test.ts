// LeanHttpTransport (src/client/lean-transport.ts), the client's HTTP/1.1 transport for http://,
// against raw TCP servers on 127.0.0.1 that answer byte for byte what each test needs: bodies by
// Content-Length and chunked, answers split at every byte, keep-alive and Connection: close,
// a node closing an idle connection, interim answers, and what it must refuse (malformed or
// oversized answers, a CR or LF in a header it would send). And whether a failed request is
// marked as never sent, which decides "outcome unknown" for writes (http.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { LeanHttpTransport } from '../../src/client/lean-transport.js';
import { CONNECT_TIMEOUT, isMarkedNotSent, type FetchLikeInit } from '../../src/client/node-transport.js';

interface Raw {
  readonly server: Server;
  readonly url: string;
  /** Requests seen, as raw text, and the connection each came on (its index). */
  readonly requests: { text: string; connection: number }[];
  close(): Promise<void>;
}

/** A server that answers each complete request (head + Content-Length body) with `answer(i)`. */
async function rawServer(answer: (i: number, socket: Socket) => void): Promise<Raw> {
  const requests: { text: string; connection: number }[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const connection = connections++;
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        const text = buffered.slice(0, end + 4 + length);
        buffered = buffered.slice(end + 4 + length);
        requests.push({ text, connection });
        answer(requests.length - 1, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const init = (o: Partial<FetchLikeInit> = {}): FetchLikeInit => ({ method: 'GET', headers: {}, signal: AbortSignal.timeout(5000), ...o });

async function text(r: { arrayBuffer(): Promise<ArrayBuffer> }): Promise<string> {
  return Buffer.from(await r.arrayBuffer()).toString('utf8');
}

test('Content-Length and chunked bodies, also when every byte arrives alone; keep-alive reuses the connection', async () => {
  const answers = [
    'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nraftkv-leader: http://x:1\r\nContent-Length: 11\r\n\r\n{"index":7}',
    'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    'HTTP/1.1 204 No Content\r\n\r\n',
  ];
  for (const byteByByte of [false, true]) {
    const raw = await rawServer((i, socket) => {
      const bytes = Buffer.from(answers[i % answers.length]!, 'latin1');
      if (!byteByByte) socket.write(bytes);
      else for (let b = 0; b < bytes.length; b++) setTimeout(() => socket.write(bytes.subarray(b, b + 1)), b);
    });
    const t = new LeanHttpTransport();
    try {
      const a = await t.fetch(`${raw.url}/v1/kv/a`, init({ method: 'PUT', headers: { 'idempotency-key': 'k1' }, body: new TextEncoder().encode('v') }));
      assert.equal(a.status, 200);
      assert.equal(a.headers.get('RAFTKV-LEADER'), 'http://x:1');
      assert.equal(await text(a), '{"index":7}');
      const b = await t.fetch(`${raw.url}/v1/kv?prefix=a`, init());
      assert.equal(b.status, 201);
      assert.equal(await text(b), 'hello world');
      const c = await t.fetch(`${raw.url}/c`, init());
      assert.equal([c.status, await text(c)].join(' '), '200 ok', 'an interim 100 answer is skipped');
      const d = await t.fetch(`${raw.url}/d`, init({ method: 'DELETE' }));
      assert.equal([d.status, await text(d)].join(' '), '204 ');
      assert.deepEqual(raw.requests.map((r) => r.connection), [0, 0, 0, 0], 'one keep-alive connection for all four');
      assert.match(raw.requests[0]!.text, /^PUT \/v1\/kv\/a HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\nidempotency-key: k1\r\ncontent-length: 1\r\n\r\nv$/);
    } finally {
      t.close();
      await raw.close();
    }
  }
});

test('Connection: close and a node that closes an idle connection: the next request opens a new one, without an error', async () => {
  const raw = await rawServer((i, socket) => {
    if (i === 0) socket.end('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na');
    else if (i === 1) {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb');
      setTimeout(() => socket.end(), 20); // the node's keep-alive timeout, while the client is idle
    } else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc');
  });
  const t = new LeanHttpTransport();
  try {
    assert.equal(await text(await t.fetch(`${raw.url}/1`, init())), 'a');
    assert.equal(await text(await t.fetch(`${raw.url}/2`, init())), 'b');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await text(await t.fetch(`${raw.url}/3`, init())), 'c');
    assert.deepEqual(raw.requests.map((r) => r.connection), [0, 1, 2]);
  } finally {
    t.close();
    await raw.close();
  }
});

test('malformed or oversized answers are refused and the connection dropped; the request counts as sent', async () => {
  const bad = [
    'HTTP/2 200\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
    'HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\n\r\nbody until close',
    `HTTP/1.1 200 OK\r\nX: ${'y'.repeat(20_000)}\r\nContent-Length: 0\r\n\r\n`,
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  ];
  const raw = await rawServer((i, socket) => socket.write(bad[i]!));
  const t = new LeanHttpTransport();
  try {
    for (let i = 0; i < bad.length; i++) {
      await assert.rejects(t.fetch(`${raw.url}/${i}`, init()), (err: unknown) => {
        assert.ok(!isMarkedNotSent(err), `answer ${i}: the request was written, so it counts as sent`);
        return true;
      });
    }
    assert.equal(new Set(raw.requests.map((r) => r.connection)).size, bad.length, 'each bad answer cost its connection');
  } finally {
    t.close();
    await raw.close();
  }
});

test('a CR or LF in a header, whitespace in the path, or a bad header name: refused before anything is written', async () => {
  const raw = await rawServer((_, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
  const t = new LeanHttpTransport();
  try {
    const attempts: FetchLikeInit[] = [
      init({ headers: { authorization: 'Bearer x\r\nX-Evil: 1' } }),
      init({ headers: { 'bad name': 'v' } }),
      init({ headers: { 'x-nul': 'a\0b' } }),
    ];
    for (const a of attempts) {
      await assert.rejects(t.fetch(`${raw.url}/k`, a), (err: unknown) => err instanceof TypeError && isMarkedNotSent(err));
    }
    await assert.rejects(t.fetch(`${raw.url}/a b`, init()), (err: unknown) => err instanceof TypeError && isMarkedNotSent(err));
    await assert.rejects(t.fetch(`${raw.url}/a\r\nX: y`, init()), (err: unknown) => err instanceof TypeError && isMarkedNotSent(err));
    assert.equal(raw.requests.length, 0, 'nothing reached the server');
  } finally {
    t.close();
    await raw.close();
  }
});

test('an attempt that gives up: before the connection is ready it is marked never sent (CONNECT_TIMEOUT); after the request went, not', async () => {
  // A listener that never accepts cannot be had portably; an unroutable-free way: a server that
  // answers late, and a connection refused outright.
  const t = new LeanHttpTransport();
  const silent = await rawServer(() => undefined);
  try {
    const late = t.fetch(`${silent.url}/slow`, init({ signal: AbortSignal.timeout(100) }));
    await assert.rejects(late, (err: unknown) => !isMarkedNotSent(err) && (err as Error).name === 'TimeoutError');
    // Refused: nothing was ever sent.
    const port = (silent.server.address() as { port: number }).port;
    await silent.close();
    await assert.rejects(t.fetch(`http://127.0.0.1:${port}/x`, init()), (err: unknown) => isMarkedNotSent(err) && (err as { code?: string }).code === 'ECONNREFUSED');
    // Aborted before the socket connected: CONNECT_TIMEOUT, never sent.
    const controller = new AbortController();
    const pending = t.fetch(`http://127.0.0.1:${port}/y`, init({ signal: controller.signal }));
    controller.abort(new Error('deadline'));
    await assert.rejects(pending, (err: unknown) => isMarkedNotSent(err) && (err as { code?: string }).code === CONNECT_TIMEOUT);
  } finally {
    t.close();
  }
});

test('an idle keep-alive connection does not keep the process alive: a script that never calls close() exits at once', async () => {
  const raw = await rawServer((_, socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n{"index":1,"revision":2}'));
  try {
    const client = new URL('../../src/client/index.js', import.meta.url).href;
    const script = `import { RaftKvClient } from ${JSON.stringify(client)};
      const c = new RaftKvClient({ endpoints: [${JSON.stringify(raw.url)}] });
      await c.put('k', 'v');
      console.log('put done');`;
    const started = Date.now();
    // Not execFileSync: the server answering it runs on this process's event loop.
    const { execFile } = await import('node:child_process');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 }, (err, stdout) => (err !== null ? reject(err) : resolve(stdout))),
    );
    assert.match(out, /put done/);
    assert.ok(Date.now() - started < 3000, `exited ${Date.now() - started} ms after the start; the idle connection's 4 s timeout would show`);
  } finally {
    await raw.close();
  }
});
