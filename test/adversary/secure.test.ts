// The adversary suite against a secure 3-node cluster (issue 9, "Proof"; API.md "Security"):
// HTTPS on the client port, mutual TLS between peers, and --auth-file with an admin, a readwrite
// principal limited to "app/" and a read-only one. On the peer port: plain TCP, TLS without a
// client certificate and with one from another CA are turned away by the TLS layer before any
// frame is read; a certificate of the cluster's own CA does not make a stranger a member. On the
// client port: 401 without a valid token on every node, 403 outside a principal's permissions
// (through a follower as through the leader, and for a whole transaction that touches one foreign
// key), and the leader judges a forwarded principal by its own auth file. After each attack,
// assertUnharmed (unharmed.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import tls from 'node:tls';
import { writeFileSync } from 'node:fs';
import { makeCertificate, makeCertificateAuthority, readPem } from '../../src/security/certs.js';
import { TestCluster, pollUntil, type TestNode } from '../cluster/harness.js';
import { assertApiError, http, type HttpReply, type NodeStatus } from '../cluster/http.js';
import { HostilePeer, destroyHostilePeers, hello, messageFrame, peerPort, type PeerTls } from './hostile-peer.js';
import { sendSignal } from './node-process.js';
import { decodeMuxAnswer, encodeMuxRequest, MuxFrameReader } from '../../src/client/mux-frames.js';
import { Ledger, assertUnharmed, coreRefused, metricsOf, peerRefused, transportRejected } from './unharmed.js';

let cluster: TestCluster | undefined;
let ledger: Ledger;
let ca: Buffer;
/** A certificate of the cluster's own CA, for an id that is no member. */
let insider: PeerTls;
/** A well-formed certificate, for a member's name, from another CA. */
let stranger: PeerTls;

const appToken = `app-${randomBytes(16).toString('hex')}`;
const readerToken = `reader-${randomBytes(16).toString('hex')}`;
const ghostToken = `ghost-${randomBytes(16).toString('hex')}`;
const badToken = `bad-${randomBytes(16).toString('hex')}`;

interface PrincipalSpec {
  readonly name: string;
  readonly token: string;
  readonly permissions: readonly { readonly access: string; readonly prefix?: string }[];
}

function writeAuthFile(principals: readonly PrincipalSpec[]): void {
  const security = cluster!.security!;
  const admin: PrincipalSpec = { name: 'admin', token: security.adminToken, permissions: [{ access: 'admin' }] };
  writeFileSync(security.authFile, JSON.stringify({ principals: [admin, ...principals] }), { mode: 0o600 });
}

const APP: PrincipalSpec = { name: 'app', token: appToken, permissions: [{ access: 'readwrite', prefix: 'app/' }] };
const READER: PrincipalSpec = { name: 'reader', token: readerToken, permissions: [{ access: 'read' }] };

/** SIGHUPs `nodes` and waits until each answers `token` with `status` (the reload has happened). */
async function reloadAuth(nodes: readonly TestNode[], probe: { token: string; status: number }): Promise<void> {
  for (const n of nodes) sendSignal(n, 'SIGHUP');
  for (const n of nodes) {
    await pollUntil(`${n.id} to reload --auth-file`, 10_000, async () => ((await as(n, probe.token, '/v1/status')).status === probe.status ? true : undefined));
  }
}

before(async () => {
  cluster = await TestCluster.start({ size: 3, secure: true, name: 'adv-secure' });
  const security = cluster.security!;
  ca = readPem(security.ca.cert, 'ca');
  const pem = (p: { cert: string; key: string }): { cert: Buffer; key: Buffer } => ({ cert: readPem(p.cert, 'cert'), key: readPem(p.key, 'key') });
  insider = { ca, ...pem(makeCertificate(security.ca, security.dir, 'mallory', { commonName: 'mallory' })) };
  const otherCa = makeCertificateAuthority(security.dir, 'other-ca');
  stranger = { ca, ...pem(makeCertificate(otherCa, security.dir, 'stranger', { commonName: 'n2' })) };
  ledger = await Ledger.open(cluster, { peerTls: insider });
  ledger.attackerIds.add('mallory');
  writeAuthFile([APP, READER]);
  await reloadAuth(cluster.nodes, { token: appToken, status: 200 });
});
after(async () => {
  destroyHostilePeers();
  await cluster?.destroy();
});

/** One request with `token` instead of the admin's (or with no Authorization header at all when null). */
function as(node: TestNode, token: string | null, path: string, options: { method?: string; body?: string; authorization?: string } = {}): Promise<HttpReply> {
  if (token !== null || options.authorization !== undefined) {
    return http(node.url, path, {
      method: options.method ?? 'GET',
      ...(options.body !== undefined ? { body: options.body } : {}),
      headers: { authorization: options.authorization ?? `Bearer ${token}`, ...(options.method === 'POST' ? { 'content-type': 'application/json' } : {}) },
    });
  }
  // The test client adds the admin token to every request; this one must carry none.
  const url = new URL(node.url);
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = request(
      { host: url.hostname, port: Number(url.port), path, method: options.method ?? 'GET', ca, agent: false, timeout: 5000, headers: body ? { 'content-length': String(body.length), 'content-type': 'application/json' } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, text, json: <T>() => JSON.parse(text) as T });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function roles(): Promise<{ leader: TestNode; followers: TestNode[] }> {
  const leader = await cluster!.waitForLeader(10_000);
  return { leader, followers: cluster!.nodes.filter((n) => n !== leader) };
}

test('peer port: plain TCP, TLS without a client certificate and a certificate from another CA are refused before any frame is read', async () => {
  const { leader } = await roles();
  const term = (await http(leader.url, '/v1/status')).json<NodeStatus>().term;
  for (const node of cluster!.nodes) {
    const member = cluster!.nodes.find((n) => n !== node)!;
    // Frames that would each be counted if they were read: a member's HELLO, then a term past MAX_TERM.
    const frames = [
      hello(member.id, node.id, ledger.clusterId),
      messageFrame({ type: 'AppendEntries', from: member.id, to: node.id, term: Number.MAX_SAFE_INTEGER, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0, seq: 1 }),
      messageFrame({ type: 'TimeoutNow', from: member.id, to: node.id, term }),
    ];
    const series = [transportRejected('tls'), transportRejected('notMember'), transportRejected('malformed'), coreRefused('invalid'), coreRefused('not-leader'), peerRefused('not-member'), peerRefused('other-cluster')];
    const before = await metricsOf(node, series);
    const attempts = {
      'plain TCP': new HostilePeer(peerPort(node)).send(...frames),
      'TLS without a client certificate': new HostilePeer(peerPort(node), { tls: { ca } }).send(...frames),
      'a certificate from another CA': new HostilePeer(peerPort(node), { tls: stranger }).send(...frames),
    };
    for (const [what, peer] of Object.entries(attempts)) {
      const outcome = await peer.handshake(5000);
      assert.equal(outcome.kind, 'closed', `${node.id}, ${what}: ${JSON.stringify(outcome)}`);
    }
    const after = await pollUntil(`${node.id} to count three TLS refusals`, 5000, async () => {
      const m = await metricsOf(node, series);
      return m[transportRejected('tls')]! >= before[transportRejected('tls')]! + 3 ? m : undefined;
    });
    // Nothing behind the TLS layer saw a byte of them.
    for (const s of series.slice(1)) assert.equal(after[s], before[s], `${node.id}: ${s} moved, so a frame was read`);
  }
  await assertUnharmed(ledger, 'peer connections without a trusted certificate');
});

test("peer port: a certificate of the cluster's CA does not make a stranger a member", async () => {
  for (const node of cluster!.nodes) {
    const before = await metricsOf(node, [peerRefused('not-member')]);
    const peer = new HostilePeer(peerPort(node), { tls: insider }).send(hello('mallory', node.id, ledger.clusterId, 'rpc'));
    const outcome = await peer.handshake(5000);
    assert.equal(outcome.kind, 'rejected', `${node.id}: ${JSON.stringify(outcome)}`);
    const after = await metricsOf(node, [peerRefused('not-member')]);
    assert.ok(after[peerRefused('not-member')]! >= before[peerRefused('not-member')]! + 1);
    peer.destroy();
  }
  await assertUnharmed(ledger, 'a stranger with a certificate of the cluster CA');
});

test('client port: 401 without a token, with a bad one or another scheme, on every node; health answers without one', async () => {
  ledger.foreignKeys.add('foreign/unauthenticated');
  const ledgerKey = `/v1/kv/${encodeURIComponent([...ledger.acknowledged.keys()][0]!)}`;
  for (const node of cluster!.nodes) {
    for (const [what, token, authorization] of [
      ['no token', null, undefined],
      ['a bad token', badToken, undefined],
      ['an empty bearer', null, 'Bearer '],
      ['Basic auth', null, `Basic ${Buffer.from(`admin:${cluster!.security!.adminToken}`).toString('base64')}`],
      ['the token without a scheme', null, cluster!.security!.adminToken],
    ] as const) {
      for (const [method, path, body] of [
        ['PUT', '/v1/kv/foreign%2Funauthenticated', 'pwned'],
        ['GET', ledgerKey, undefined],
        ['GET', '/v1/status', undefined],
        ['GET', '/metrics', undefined],
        ['DELETE', ledgerKey, undefined],
        ['POST', '/v1/leader/transfer', '{}'],
      ] as const) {
        const reply = await as(node, token, path, { method, ...(body !== undefined ? { body } : {}), ...(authorization !== undefined ? { authorization } : {}) });
        assertApiError(reply, 401, 'UNAUTHENTICATED', `${method} ${path} on ${node.id} with ${what}`);
        assert.match(String(reply.headers['www-authenticate']), /^Bearer/, 'a 401 names the scheme');
      }
    }
    assert.equal((await as(node, null, '/livez')).status, 200, `${node.id} /livez needs no token`);
    assert.equal((await as(node, null, '/readyz')).status, 200, `${node.id} /readyz needs no token`);
  }
  await assertUnharmed(ledger, 'requests without a valid token');
});

test('client port: 403 for a readwrite token outside its prefix (through a follower and the leader) and for membership and transfer', async () => {
  const { leader, followers } = await roles();
  const ledgerKey = `/v1/kv/${encodeURIComponent([...ledger.acknowledged.keys()][0]!)}`;
  const denied = async (via: TestNode, token: string, method: string, path: string, body?: string): Promise<void> => {
    assertApiError(await as(via, token, path, { method, ...(body !== undefined ? { body } : {}) }), 403, 'PERMISSION_DENIED', `${method} ${path} through ${via.id}`);
  };
  ledger.attackerIds.add('mallory-app');
  for (const via of [followers[0]!, leader]) {
    // Inside its prefix: allowed (so the refusals below are about the prefix, not the token).
    const own = `app/own-${via.id}`;
    assert.equal((await as(via, appToken, `/v1/kv/${encodeURIComponent(own)}`, { method: 'PUT', body: 'mine' })).status, 200);
    assert.equal((await as(via, appToken, `/v1/kv/${encodeURIComponent(own)}`)).status, 200);
    const foreign = `other/app-${via.id}`;
    ledger.foreignKeys.add(foreign);
    await denied(via, appToken, 'PUT', `/v1/kv/${encodeURIComponent(foreign)}`, 'pwned');
    await denied(via, appToken, 'PUT', `/v1/kv/${encodeURIComponent('ap')}`, 'pwned');
    await denied(via, appToken, 'DELETE', ledgerKey);
    await denied(via, appToken, 'GET', ledgerKey);
    await denied(via, appToken, 'GET', '/v1/kv?prefix=');
    await denied(via, appToken, 'POST', '/v1/members', JSON.stringify({ id: 'mallory-app', peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10' }));
    await denied(via, appToken, 'DELETE', `/v1/members/${followers[1]!.id}`);
    await denied(via, appToken, 'POST', `/v1/members/${followers[1]!.id}/promote`);
    await denied(via, appToken, 'POST', '/v1/leader/transfer', JSON.stringify({ to: followers[1]!.id }));
    // A read-only token writes nothing, but reads.
    ledger.foreignKeys.add(`app/reader-${via.id}`);
    await denied(via, readerToken, 'PUT', `/v1/kv/${encodeURIComponent(`app/reader-${via.id}`)}`, 'pwned');
    assert.equal((await as(via, readerToken, ledgerKey)).status, 200, 'a read token reads');
  }
  assert.equal((await cluster!.waitForLeader(5000)).id, leader.id, 'no transfer happened');
  await assertUnharmed(ledger, 'requests outside the permissions of their token');
});

test('client port: a transaction touching one key outside the token\'s prefix is refused whole', async () => {
  const { leader, followers } = await roles();
  for (const via of [followers[0]!, leader]) {
    const mine = `app/txn-${via.id}`;
    const theirs = `other/txn-${via.id}`;
    ledger.foreignKeys.add(mine);
    ledger.foreignKeys.add(theirs);
    const txns = [
      { compare: [], success: [{ type: 'put', key: mine, value: 'a' }, { type: 'put', key: theirs, value: 'b' }], failure: [] },
      { compare: [{ key: theirs, target: 'version', op: '=', value: 0 }], success: [{ type: 'put', key: mine, value: 'a' }], failure: [] },
      { compare: [], success: [{ type: 'put', key: mine, value: 'a' }], failure: [{ type: 'delete', key: theirs }] },
      { compare: [], success: [{ type: 'put', key: mine, value: 'a' }, { type: 'range', prefix: '' }], failure: [] },
      { compare: [], success: [{ type: 'put', key: mine, value: 'a' }, { type: 'get', key: [...ledger.acknowledged.keys()][0]! }], failure: [] },
    ];
    for (const txn of txns) {
      assertApiError(await as(via, appToken, '/v1/txn', { method: 'POST', body: JSON.stringify(txn) }), 403, 'PERMISSION_DENIED', `${JSON.stringify(txn).slice(0, 160)} through ${via.id}`);
    }
  }
  await assertUnharmed(ledger, 'transactions touching foreign keys');
});

test('the leader judges a forwarded principal by its own --auth-file, not by what the follower believed', async () => {
  const { leader, followers } = await roles();
  // The followers reload a file that lets "app" write anywhere and knows a "ghost"; the leader keeps the strict one.
  writeAuthFile([{ ...APP, permissions: [{ access: 'readwrite' }, { access: 'admin' }] }, READER, { name: 'ghost', token: ghostToken, permissions: [{ access: 'readwrite' }] }]);
  await reloadAuth(followers, { token: ghostToken, status: 200 });
  assert.equal((await as(leader, ghostToken, '/v1/status')).status, 401, 'the leader still has the strict file');
  try {
    for (const via of followers) {
      const foreign = `other/forwarded-${via.id}`;
      ledger.foreignKeys.add(foreign);
      assertApiError(await as(via, appToken, `/v1/kv/${encodeURIComponent(foreign)}`, { method: 'PUT', body: 'pwned' }), 403, 'PERMISSION_DENIED', `app writing ${foreign} through ${via.id}, judged by the leader`);
      const txn = { compare: [], success: [{ type: 'put', key: `app/forwarded-${via.id}`, value: 'a' }, { type: 'put', key: foreign, value: 'b' }], failure: [] };
      ledger.foreignKeys.add(`app/forwarded-${via.id}`);
      assertApiError(await as(via, appToken, '/v1/txn', { method: 'POST', body: JSON.stringify(txn) }), 403, 'PERMISSION_DENIED', `app's transaction through ${via.id}, judged by the leader`);
      const ghostKey = `app/ghost-${via.id}`;
      ledger.foreignKeys.add(ghostKey);
      assertApiError(await as(via, ghostToken, `/v1/kv/${encodeURIComponent(ghostKey)}`, { method: 'PUT', body: 'boo' }), 401, 'UNAUTHENTICATED', `a principal the leader does not know, through ${via.id}`);
      // Not a key-value write (those go as proposals): a leader-only admin request the follower
      // forwards whole. The follower's file makes "app" an admin; the leader's does not.
      assertApiError(await as(via, appToken, '/v1/members/no-such-member', { method: 'DELETE' }), 403, 'PERMISSION_DENIED', `app removing a member through ${via.id}, judged by the leader`);
    }
  } finally {
    writeAuthFile([APP, READER]);
    await reloadAuth(followers, { token: ghostToken, status: 401 });
  }
  assert.equal((await cluster!.waitForLeader(5000)).id, leader.id, 'the leader did not change meanwhile, so it judged every request');
  await assertUnharmed(ledger, 'forwarded principals the leader does not grant');
});

test('raftkv-mux over TLS: each request is authenticated and judged as over HTTP (401, 403, 200), through a follower too', async () => {
  const { leader, followers } = await roles();
  for (const node of [leader, followers[0]!]) {
    const [host, port] = node.clientAddr.split(':') as [string, string];
    const socket = tls.connect({ host, port: Number(port), ca, servername: host });
    socket.on('error', () => undefined);
    const answers = new Map<number, { status: number; body: string }>();
    let upgraded = false;
    let head = '';
    const reader = new MuxFrameReader(1 << 20, (frame) => {
      const a = decodeMuxAnswer(frame);
      answers.set(a.id, { status: a.status, body: a.body.toString() });
    });
    socket.on('data', (chunk: Buffer) => {
      if (upgraded) return reader.push(chunk);
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      assert.match(head, /^HTTP\/1\.1 101 /, 'the upgrade needs no token');
      upgraded = true;
      const rest = Buffer.from(head.slice(end + 4), 'latin1');
      if (rest.length > 0) reader.push(rest);
    });
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    socket.write('GET /v1/mux HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: raftkv-mux/1\r\n\r\n');
    await pollUntil('the upgrade', 5000, async () => (upgraded ? true : undefined));
    // Refused writes go to keys nobody may have written; the one allowed to its own key.
    const refusedKey = `app/mux-refused-${node.id}`;
    const foreign = `other/mux-${node.id}`;
    ledger.foreignKeys.add(refusedKey);
    ledger.foreignKeys.add(foreign);
    const put = (id: number, k: string, headers: Record<string, string>): void => {
      socket.write(encodeMuxRequest(id, 'PUT', `/v1/kv/${encodeURIComponent(k)}`, headers, Buffer.from('v')));
    };
    put(1, refusedKey, {});
    put(2, refusedKey, { authorization: `Bearer ${badToken}` });
    put(3, foreign, { authorization: `Bearer ${appToken}` });
    put(4, refusedKey, { authorization: `Bearer ${readerToken}` });
    put(5, `app/mux-${node.id}`, { authorization: `Bearer ${appToken}` });
    await pollUntil('five answers', 10_000, async () => (answers.size === 5 ? true : undefined));
    const codes = [1, 2, 3, 4, 5].map((id) => `${answers.get(id)!.status} ${(JSON.parse(answers.get(id)!.body) as { error?: { code: string } }).error?.code ?? 'ok'}`);
    assert.deepEqual(codes, ['401 UNAUTHENTICATED', '401 UNAUTHENTICATED', '403 PERMISSION_DENIED', '403 PERMISSION_DENIED', '200 ok'], `through ${node.id}`);
    socket.destroy();
  }
  await assertUnharmed(ledger, 'raftkv-mux requests without, with bad and with narrow tokens');
});
