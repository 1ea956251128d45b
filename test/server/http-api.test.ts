// The HTTP layer against a hostile or careless client, in-process with a stand-in node: content
// types, CORS, tokens and permissions, bounded replies, slow and idle connections, the connection
// cap, a reply path that throws, and rate-limited error logs. Real sockets on 127.0.0.1.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Authenticator } from '../../src/server/auth.js';
import { createApiServer, type ApiServerOptions, type KvApi, type KvRecordView } from '../../src/server/http-api.js';
import { createLogger } from '../../src/server/logger.js';
import { Registry } from '../../src/server/metrics.js';


function fakeApi(overrides: Partial<KvApi> = {}): KvApi {
  const store = new Map<string, KvRecordView>();
  return {
    id: 'n1',
    isLeader: () => true,
    servesKv: () => true,
    leaderUrl: () => 'http://127.0.0.1:1',
    clusterId: () => 'c'.repeat(32),
    put: async (key, value) => {
      const index = store.size + 1;
      store.set(key, { key, value, createIndex: index, modIndex: index, version: 1, createRevision: index + 1, modRevision: index + 1, lease: 0 });
      return { index, revision: index + 1 };
    },
    delete: async (key) => ({ index: 1, deleted: store.delete(key), revision: 1 }),
    revision: () => store.size + 1,
    txn: async () => ({ succeeded: true }),
    readBarrier: async () => undefined,
    get: (key) => store.get(key) ?? null,
    list: (prefix, limit) => {
      const items = [...store.values()].filter((r) => r.key.startsWith(prefix)).slice(0, limit);
      return { items, more: false };
    },
    status: () => ({ id: 'n1', clusterId: null, role: 'leader', term: 1, leader: 'n1', commitIndex: 1, appliedIndex: 1, lastIndex: 1, members: [], alarms: [] }),
    members: () => [],
    ready: async () => ({ ready: true, id: 'n1', leader: 'n1', readIndex: 1, appliedIndex: 1 }),
    validateKey: () => undefined,
    validateValue: () => undefined,
    ...overrides,
  };
}

const logLines: string[] = [];
const servers: import('node:http').Server[] = [];
after(() => servers.forEach((s) => s.closeAllConnections?.() ?? s.close()));

async function start(options: Partial<ApiServerOptions> & { api?: KvApi } = {}): Promise<{ url: string; port: number; attach: (a: KvApi) => void }> {
  const api = createApiServer({
    nodeId: 'n1',
    logger: createLogger('debug', {}, (l) => void logLines.push(l)),
    registry: new Registry(),
    ...('api' in options ? {} : { api: fakeApi() }),
    ...options,
  });
  servers.push(api.server);
  await new Promise<void>((r) => api.server.listen(0, '127.0.0.1', r));
  const port = (api.server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, attach: api.attach };
}

async function call(url: string, path: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; json: { error?: { code: string } } & Record<string, unknown> }> {
  const res = await fetch(`${url}${path}`, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text === '' ? {} : (JSON.parse(text) as { error?: { code: string } }) };
}

test('a POST without Content-Type: application/json is refused with 415 before its body is read', async () => {
  const { url } = await start();
  for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const r = await call(url, '/v1/txn', { method: 'POST', body: '{}', headers: type === undefined ? {} : { 'content-type': type } });
    assert.equal(r.status, 415, `content type ${type}`);
    assert.equal(r.json.error?.code, 'UNSUPPORTED_MEDIA_TYPE');
  }
  const ok = await call(url, '/v1/txn', { method: 'POST', body: '{"success":[]}', headers: { 'content-type': 'application/json; charset=utf-8' } });
  assert.equal(ok.status, 200);
});

test('no CORS headers unless the origin is listed; a listed origin gets its preflight and its headers', async () => {
  const plain = await start();
  const r = await call(plain.url, '/v1/status', { headers: { origin: 'https://evil.example' } });
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  assert.equal((await call(plain.url, '/v1/txn', { method: 'OPTIONS', headers: { origin: 'https://evil.example' } })).status, 405);
  const cors = await start({ corsOrigins: ['https://app.example'] });
  const pre = await call(cors.url, '/v1/txn', { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
  assert.equal(pre.status, 204);
  const got = await call(cors.url, '/v1/status', { headers: { origin: 'https://app.example' } });
  assert.equal(got.headers.get('access-control-allow-origin'), 'https://app.example');
  const other = await call(cors.url, '/v1/status', { headers: { origin: 'https://evil.example' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
});

test('with --auth-file: 401 without a valid bearer token, 403 outside the permissions, health without a token', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-http-auth-'));
  try {
    const file = join(dir, 'auth.json');
    writeFileSync(file, JSON.stringify({ principals: [{ name: 'app', token: 'app-token-0123456789', permissions: [{ access: 'readwrite', prefix: 'app/' }] }] }));
    const { url } = await start({ auth: new Authenticator(file) });
    const none = await call(url, '/v1/kv/app%2Fa', { method: 'PUT', body: 'v' });
    assert.equal(none.status, 401);
    assert.equal(none.json.error?.code, 'UNAUTHENTICATED');
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await call(url, '/v1/kv/app%2Fa', { method: 'PUT', body: 'v', headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
    assert.equal((await call(url, '/v1/kv/app%2Fa', { method: 'PUT', body: 'v', headers: { authorization: 'Basic YTpi' } })).status, 401);
    const bearer = { authorization: 'Bearer app-token-0123456789' };
    assert.equal((await call(url, '/v1/kv/app%2Fa', { method: 'PUT', body: 'v', headers: bearer })).status, 200);
    const denied = await call(url, '/v1/kv/other', { method: 'PUT', body: 'v', headers: bearer });
    assert.equal(denied.status, 403);
    assert.equal(denied.json.error?.code, 'PERMISSION_DENIED');
    assert.equal((await call(url, '/v1/members', { method: 'POST', body: '{}', headers: { ...bearer, 'content-type': 'application/json' } })).status, 403);
    assert.equal((await call(url, '/metrics')).status, 401, 'metrics name members and keys counts: a token is needed');
    for (const p of ['/livez', '/readyz', '/healthz']) assert.equal((await call(url, p)).status, 200, p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('before the node is attached every request but /livez answers 503 STARTING', async () => {
  const s = await start({ api: undefined });
  assert.equal((await call(s.url, '/livez')).status, 200);
  const r = await call(s.url, '/v1/kv/a');
  assert.equal(r.status, 503);
  assert.equal(r.json.error?.code, 'STARTING');
  s.attach(fakeApi());
  assert.equal((await call(s.url, '/v1/kv/a')).status, 404);
});

test('no reply exceeds --max-response-bytes: a listing stops early with more: true; anything else is a 413', async () => {
  const big = new Uint8Array(40_000).fill(0x61);
  const records: KvRecordView[] = Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: big, createIndex: i + 1, modIndex: i + 1, version: 1, createRevision: i + 2, modRevision: i + 2, lease: 0 }));
  const { url } = await start({
    maxResponseBytes: 100_000,
    api: fakeApi({ list: () => ({ items: records, more: false }), txn: async () => ({ responses: records.map((r) => ({ value: new TextDecoder().decode(r.value) })) }) }),
  });
  const list = await call(url, '/v1/kv?prefix=k');
  assert.equal(list.status, 200);
  assert.equal((list.json['items'] as unknown[]).length, 2);
  assert.equal(list.json['more'], true);
  const txn = await call(url, '/v1/txn', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  assert.equal(txn.status, 413);
  assert.equal(txn.json.error?.code, 'REPLY_TOO_LARGE');
});

test('a reply path that throws, or a leader address with CR/LF, answers and leaves the server up', async () => {
  const { url } = await start({
    api: fakeApi({
      status: () => {
        throw new Error('boom');
      },
      leaderUrl: () => 'http://evil\r\nset-cookie: x=1',
    }),
  });
  const r = await call(url, '/v1/status');
  assert.equal(r.status, 500);
  assert.equal(r.headers.get('raftkv-leader'), null, 'the header is left out, not thrown');
  assert.equal(r.headers.get('set-cookie'), null);
  assert.equal((await call(url, '/livez')).status, 200);
});

function rawSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

function closedWithin(s: net.Socket, ms: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
    s.resume();
  });
}

test('slow headers and slow bodies are cut in seconds; idle keep-alive connections are closed', async () => {
  const { port } = await start({ headersTimeoutMs: 1000, bodyTimeoutMs: 1500, keepAliveTimeoutMs: 500 });
  const slowHeaders = await rawSocket(port);
  slowHeaders.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n');
  const slowBody = await rawSocket(port);
  slowBody.write('PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx');
  const idle = await rawSocket(port);
  idle.write('GET /livez HTTP/1.1\r\nHost: x\r\n\r\n');
  const [h, b, i] = await Promise.all([closedWithin(slowHeaders, 4000), closedWithin(slowBody, 5000), closedWithin(idle, 3000)]);
  assert.ok(h < 4000 && b < 5000 && i < 3000, `closed after ${h}, ${b}, ${i} ms`);
});

test('connections past the cap are refused; the server serves again once the flood ends', async () => {
  const { url, port } = await start({ maxConnections: 5 });
  const flood = await Promise.all(Array.from({ length: 20 }, () => rawSocket(port).catch(() => null)));
  const open = flood.filter((s): s is net.Socket => s !== null);
  const closed = await Promise.all(open.map((s) => closedWithin(s, 1000).then(() => true, () => false)));
  assert.ok(closed.filter(Boolean).length >= 15, `${closed.filter(Boolean).length} of 20 closed at once`);
  open.forEach((s) => s.destroy());
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await call(url, '/livez')).status, 200);
});

test('a connection that pipelines past 256 unsent answers is cut; 150 pipelined on one that reads are all answered; stack traces survive the cut', async () => {
  const registry = new Registry();
  const { url, port } = await start({ registry });
  const limit = Error.stackTraceLimit;
  // 2,000 requests in one write, none of the answers read: cut once past 256.
  const hostile = await rawSocket(port);
  hostile.pause();
  hostile.write('GET /v1/status HTTP/1.1\r\nHost: raftkv\r\n\r\n'.repeat(2000));
  await closedWithin(hostile, 5000);
  const refused = Number(/raftkv_http_refused_total\{reason="pipelined"\} (\d+)/.exec(registry.render())?.[1] ?? 0);
  // Counted: what node parsed past the cut (the rest of that read); nothing after it is read.
  assert.ok(refused > 0 && refused <= 2000 - 257, `${refused} pipelined requests refused`);
  // node aborts the refused requests on close with stack traces turned off; they are back.
  assert.equal(Error.stackTraceLimit, limit);
  assert.ok((new Error('probe').stack ?? '').split('\n').length > 2, 'an Error made after the cut still has its stack');
  // A client that pipelines 150 and reads them is served.
  const friendly = await rawSocket(port);
  let text = '';
  friendly.on('data', (d: Buffer) => (text += d.toString('latin1')));
  friendly.write('GET /v1/status HTTP/1.1\r\nHost: raftkv\r\n\r\n'.repeat(150));
  const until = Date.now() + 5000;
  while (text.split('HTTP/1.1 200').length - 1 < 150 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  friendly.destroy();
  assert.equal(text.split('HTTP/1.1 200').length - 1, 150);
  assert.equal((await call(url, '/livez')).status, 200);
});

test('a flood of failing requests costs a few log lines, not one each', async () => {
  logLines.length = 0;
  const { url } = await start({
    api: fakeApi({
      status: () => {
        throw new Error('boom');
      },
    }),
  });
  const started = Date.now();
  await Promise.all(Array.from({ length: 300 }, () => call(url, '/v1/status')));
  const seconds = Math.ceil((Date.now() - started) / 1000);
  const errors = logLines.filter((l) => l.includes('request failed'));
  // 20 lines a second at most (rateLimitedLogger), whatever the machine's speed.
  assert.ok(errors.length <= 20 * (seconds + 1), `${errors.length} error lines for 300 failures in ${seconds} s`);
  assert.ok(errors.length < 150, `${errors.length} error lines for 300 failures: not rate-limited`);
  assert.ok(errors.length >= 1);
});
