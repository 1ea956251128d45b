// The dashboard's endpoints on a real process cluster, as an attacker and a careless browser would
// use them: /ui/ serves only the built files (no path reaches the disk: traversal in every
// spelling is a 404), with the content type, CSP and caching a page needs; /v1/ui/events streams
// the whole cluster (every member's role, term, vote, log with terms, indexes, membership) within a
// second; a crowd of streams that vanish mid-way leaves nothing behind, the cap answers 503, and the
// node is unharmed. On a cluster with --auth-file the stream needs a token and the files do not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { TestCluster } from '../cluster/harness.js';
import { http } from '../cluster/http.js';
import type { UiClusterView } from '../../src/server/ui-types.js';

interface Raw {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A raw request (paths sent byte for byte, no token unless given); reads at most `maxMs` of body. */
function raw(url: string, path: string, options: { method?: string; token?: string; ca?: Buffer; headers?: Record<string, string>; maxMs?: number } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      { host: u.hostname, port: u.port, path, method: options.method ?? 'GET', headers: { ...(options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {}), ...options.headers }, ...(options.ca !== undefined ? { ca: options.ca } : {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        const done = (): void => {
          clearTimeout(cut);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          req.destroy();
        };
        const cut = setTimeout(done, options.maxMs ?? 5000);
        res.on('data', (c: string) => {
          body += c;
          // A stream is read up to its first view.
          if (res.headers['content-type']?.startsWith('text/event-stream') === true && body.includes('\ndata: ')) {
            if (body.slice(body.indexOf('\ndata: ')).includes('\n\n')) done();
          }
        });
        res.on('end', done);
        res.on('error', done);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Opens a stream and keeps it open: its status, and a way to drop it without a goodbye. */
function hold(url: string, path: string): Promise<{ status: number; drop: () => void }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = httpRequest({ host: u.hostname, port: u.port, path }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, drop: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

function firstView(body: string): UiClusterView {
  const line = body.split('\n').find((l) => l.startsWith('data: '));
  assert.ok(line !== undefined, `no view in ${body.slice(0, 200)}`);
  return JSON.parse(line.slice(6)) as UiClusterView;
}

test('/ui/ and /v1/ui/events on a 3-node cluster: the files, the view, traversal, a crowd of vanishing streams', { timeout: 90_000 }, async () => {
  const cluster = await TestCluster.start({ size: 3, name: 'ui-endpoints' });
  try {
    const url = cluster.nodes[0]!.url;
    const page = await raw(url, '/ui/');
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.match(page.body, /<script type="module" src="dashboard.js">/);
    assert.doesNotMatch(page.body, /https?:\/\/(?!www\.w3\.org)/, 'no asset from the net');
    const script = await raw(url, '/ui/dashboard.js');
    assert.equal(script.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.match(String(script.headers['cache-control']), /max-age/);
    assert.equal((await raw(url, '/ui/dashboard.js', { headers: { 'if-none-match': String(script.headers['etag']) } })).status, 304);
    assert.equal((await raw(url, '/ui/playground')).status, 200);
    const moved = await raw(url, '/ui');
    assert.equal(moved.status, 301);
    assert.equal(moved.headers['location'], '/ui/');
    assert.equal((await raw(url, '/ui/', { method: 'POST' })).status, 405);
    for (const path of ['/ui/../package.json', '/ui/..%2f..%2fpackage.json', '/ui/%2e%2e/%2e%2e/package.json', '/ui/....//package.json', '/ui/dashboard.js%00.html', '/ui/DASHBOARD.JS', '/ui//etc/passwd', '/ui/.tsbuildinfo', '/ui/%ff%fe', `/ui/${'a'.repeat(5000)}.js`]) {
      const r = await raw(url, path);
      assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
      assert.doesNotMatch(r.body, /"name": "raftkv"|root:/, path);
    }
    // The same through a raw socket (no client-side normalisation of the path at all).
    const sock = await new Promise<string>((resolve) => {
      const s = connect(Number(new URL(url).port), '127.0.0.1', () => s.end('GET /ui/../../../package.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    assert.match(sock, /^HTTP\/1\.1 404/);

    // The view: every member, within a second of asking.
    const asked = Date.now();
    const stream = await raw(url, '/v1/ui/events', { maxMs: 3000 });
    assert.equal(stream.status, 200);
    assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
    const view = firstView(stream.body);
    assert.ok(Date.now() - asked < 1500, `first view after ${Date.now() - asked} ms`);
    assert.equal(view.members.length, 3);
    const leaders = view.members.filter((m) => m.state?.role === 'leader');
    assert.equal(leaders.length, 1);
    assert.equal(view.leader, leaders[0]!.id);
    for (const m of view.members) {
      const s = m.state!;
      assert.equal(m.error, null, `${m.id}: ${m.error}`);
      assert.equal(s.term, view.term);
      assert.equal(s.votedFor !== null || s.role !== 'leader', true);
      assert.ok(s.log.length > 0 && s.log.every(([i, t]) => i > s.snapshotIndex && t >= 1 && t <= s.term));
      assert.ok(s.commitIndex <= s.lastIndex && s.appliedIndex <= s.commitIndex);
      assert.deepEqual([...s.config.voters].sort(), cluster.nodes.map((n) => n.id).sort());
    }
    assert.equal(leaders[0]!.state!.progress.length, 2, 'the leader shows its followers\' matchIndex');
    assert.equal(view.leaderChanges.at(-1)?.leader, view.leader);

    // A crowd: 40 streams at once (the cap is 32), each dropped without a goodbye.
    const crowd = await Promise.all(Array.from({ length: 40 }, () => hold(url, '/v1/ui/events')));
    const served = crowd.filter((r) => r.status === 200).length;
    assert.equal(served, 32);
    assert.equal(crowd.filter((r) => r.status === 503).length, 8);
    const overloaded = await raw(url, '/v1/ui/events');
    assert.equal(overloaded.status, 503);
    assert.match(overloaded.body, /OVERLOADED/);
    for (const c of crowd) c.drop();
    await new Promise((r) => setTimeout(r, 300));
    // Every dropped stream is let go: a page after the crowd is served at once.
    const later = await raw(url, '/v1/ui/events', { maxMs: 3000 });
    assert.equal(later.status, 200);
    assert.equal(firstView(later.body).members.length, 3);
    assert.equal((await raw(url, '/v1/ui/events?x=1')).status, 400);
    assert.equal((await raw(url, '/v1/ui/events', { method: 'DELETE' })).status, 405);
    // Unharmed: it still commits writes.
    const put = await http(url, '/v1/kv/after-the-crowd', { method: 'PUT', body: 'fine', timeoutMs: 10_000 });
    assert.equal(put.status, 200, put.text);
  } finally {
    await cluster.destroy();
  }
});

test('with --auth-file: /v1/ui/events needs a token (401 without), the page files do not', { timeout: 90_000 }, async () => {
  const cluster = await TestCluster.start({ size: 1, name: 'ui-secure', secure: true });
  try {
    const node = cluster.nodes[0]!;
    const sec = cluster.security!;
    const ca = sec.client.ca;
    const page = await raw(node.url, '/ui/', { ca });
    assert.equal(page.status, 200);
    const refused = await raw(node.url, '/v1/ui/events', { ca });
    assert.equal(refused.status, 401);
    assert.match(refused.body, /UNAUTHENTICATED/);
    assert.equal((await raw(node.url, '/v1/ui/events', { ca, token: 'not-a-token' })).status, 401);
    const ok = await raw(node.url, '/v1/ui/events', { ca, token: sec.adminToken, maxMs: 3000 });
    assert.equal(ok.status, 200);
    assert.equal(firstView(ok.body).members[0]!.state?.role, 'leader');
  } finally {
    await cluster.destroy();
  }
});
