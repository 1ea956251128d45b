// `raftkv cluster` without starting processes: the serve command lines it builds (plain and
// --secure), the PKI and auth file --secure makes and reuses, the commands it prints, its one
// line without openssl, and its leader narration, which must use the demo's CA and admin token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftKvClient } from '../../src/client/index.js';
import { planMembers } from '../../src/cli/cluster.js';
import { watchLeader } from '../../src/cli/cluster.js';
import { authFileJson, loadOrCreateAuthFile, prepareSecureFiles, secureHints, SecureSetupError, shellQuote, type SecureFiles } from '../../src/cli/cluster-secure.js';
import { MAIN_JS, childEnv, runMain } from '../cluster/harness.js';
import { startFakeNode, withNodes } from './fake-node.js';
import { NO_OPENSSL, testPki } from './test-pki.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'raftkv-cluster-plan-'));
}

/** The value after `flag` in an argument list. */
function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

const FAKE_FILES: SecureFiles = {
  caPath: '/d/pki/ca.crt',
  nodeCerts: new Map(['n1', 'n2', 'n3'].map((id) => [id, { cert: `/d/pki/${id}.crt`, key: `/d/pki/${id}.key` }])),
  authFile: '/d/auth.json',
  adminToken: 'ADMIN-TOKEN',
  appToken: 'APP-TOKEN',
};

test('plain plan: http URLs, the serve flags and ports of API.md, no TLS flags', () => {
  const plan = planMembers({ nodes: 3, basePort: 7000, dir: '/d', passThrough: ['--heartbeat-ms', '50'], secure: null });
  assert.deepEqual(plan.map((m) => m.clientUrl), ['http://127.0.0.1:7001', 'http://127.0.0.1:7002', 'http://127.0.0.1:7003']);
  const args = plan[1]!.args;
  assert.equal(args[1], 'serve');
  assert.deepEqual(
    ['--id', '--data-dir', '--peer-addr', '--client-addr', '--initial-cluster', '--heartbeat-ms'].map((f) => flagValue(args, f)),
    ['n2', '/d/n2', '127.0.0.1:7102', '127.0.0.1:7002', 'n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103', '50'],
  );
  assert.ok(!args.some((a) => /cert|auth|trusted/.test(a)), args.join(' '));
});

test('--etcd plan: each node also serves the etcd API on base+201..., and says where', () => {
  const plan = planMembers({ nodes: 3, basePort: 7000, dir: '/d', passThrough: [], secure: null, etcd: true });
  assert.deepEqual(plan.map((m) => m.etcdAddr), ['127.0.0.1:7201', '127.0.0.1:7202', '127.0.0.1:7203']);
  assert.deepEqual(plan.map((m) => flagValue(m.args, '--etcd-addr')), ['127.0.0.1:7201', '127.0.0.1:7202', '127.0.0.1:7203']);
  const plain = planMembers({ nodes: 1, basePort: 7000, dir: '/d', passThrough: [], secure: null });
  assert.equal(plain[0]!.etcdAddr, null);
  assert.ok(!plain[0]!.args.includes('--etcd-addr'));
});

test('secure plan: https URLs, and each node gets its own certificate on both ports, the CA and the auth file', () => {
  const plan = planMembers({ nodes: 3, basePort: 7000, dir: '/d', passThrough: [], secure: FAKE_FILES });
  assert.deepEqual(plan.map((m) => m.clientUrl), ['https://127.0.0.1:7001', 'https://127.0.0.1:7002', 'https://127.0.0.1:7003']);
  for (const m of plan) {
    const expected: Record<string, string> = {
      '--cert-file': `/d/pki/${m.id}.crt`,
      '--key-file': `/d/pki/${m.id}.key`,
      '--trusted-ca-file': '/d/pki/ca.crt',
      '--peer-cert-file': `/d/pki/${m.id}.crt`,
      '--peer-key-file': `/d/pki/${m.id}.key`,
      '--peer-trusted-ca-file': '/d/pki/ca.crt',
      '--auth-file': '/d/auth.json',
    };
    for (const [flag, value] of Object.entries(expected)) assert.equal(flagValue(m.args, flag), value, `${m.id} ${flag}`);
    // Addresses stay HOST:PORT: the scheme is the node's own affair (it has --cert-file).
    assert.equal(flagValue(m.args, '--client-addr'), m.clientUrl.replace('https://', ''));
  }
});

test('the auth file: an admin and a readwrite-every-key principal with fresh random tokens, 0600; reused, and refused when broken', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'auth.json');
    let n = 0;
    const first = loadOrCreateAuthFile(path, () => `token-${++n}`);
    assert.deepEqual(first, { adminToken: 'token-1', appToken: 'token-2' });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), {
      principals: [
        { name: 'admin', token: 'token-1', permissions: [{ access: 'admin' }] },
        { name: 'app', token: 'token-2', permissions: [{ access: 'readwrite', prefix: '' }] },
      ],
    });
    assert.deepEqual(readdirSync(dir), ['auth.json'], 'no temporary file left behind');
    assert.deepEqual(loadOrCreateAuthFile(path, () => 'never'), first, 'a second run keeps the tokens');
    writeFileSync(path, '{"principals":[]}');
    assert.throws(() => loadOrCreateAuthFile(path, () => 'x'), (err: unknown) => err instanceof SecureSetupError && /no admin principal.*delete it/.test(err.message));
    writeFileSync(path, '{oops');
    assert.throws(() => loadOrCreateAuthFile(path, () => 'x'), (err: unknown) => err instanceof SecureSetupError && !err.message.includes('\n') && /not valid JSON/.test(err.message));
    assert.match(authFileJson('a', 'b'), /\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without openssl: one line that says so, and nothing written', () => {
  const dir = tempDir();
  try {
    assert.throws(
      () => prepareSecureFiles(dir, ['n1'], { hasOpenssl: () => false, randomToken: () => 'x' }),
      (err: unknown) => err instanceof SecureSetupError && /openssl/.test(err.message) && !err.message.includes('\n'),
    );
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('raftkv cluster --secure without openssl on PATH exits 1 with one line and starts nothing', { timeout: 20_000 }, async () => {
  const dir = tempDir();
  try {
    const data = join(dir, 'data');
    const r = await runMain(['cluster', '--secure', '--dir', data], { env: childEnv({ PATH: join(dir, 'empty-path') }), timeoutMs: 10_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^raftkv: cluster --secure .*openssl.*run without --secure$/);
    assert.ok(!existsSync(data), 'the data dir was created');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the secure files: a CA, a certificate per node it signed (for 127.0.0.1), real random tokens; all reused on the next run', { skip: NO_OPENSSL, timeout: 60_000 }, () => {
  const dir = tempDir();
  try {
    prepareSecureFiles(join(dir, 'new'), ['n1']);
    const files = prepareSecureFiles(dir, ['n1', 'n2']);
    const ca = new X509Certificate(readFileSync(files.caPath));
    for (const id of ['n1', 'n2']) {
      const pair = files.nodeCerts.get(id)!;
      const cert = new X509Certificate(readFileSync(pair.cert));
      assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), `${id} is signed by the CA`);
      assert.ok(cert.checkIP('127.0.0.1') !== undefined, `${id} is valid for 127.0.0.1`);
      assert.equal(statSync(pair.key).mode & 0o777, 0o600);
    }
    assert.equal(statSync(join(dir, 'pki')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'new')).mode & 0o777, 0o700, 'a data dir it makes is 0700');
    assert.equal(statSync(files.authFile).mode & 0o777, 0o600);
    assert.notEqual(files.adminToken, files.appToken);
    for (const t of [files.adminToken, files.appToken]) assert.match(t, /^[0-9a-f]{64}$/, '32 random bytes, hex (a token never starts with "-")');

    const certBefore = readFileSync(files.nodeCerts.get('n1')!.cert);
    const again = prepareSecureFiles(dir, ['n1', 'n2', 'n3']);
    assert.deepEqual(readFileSync(again.nodeCerts.get('n1')!.cert), certBefore, 'a valid certificate is reused');
    assert.deepEqual([again.adminToken, again.appToken], [files.adminToken, files.appToken]);
    assert.ok(existsSync(again.nodeCerts.get('n3')!.cert), 'a new node gets a certificate');

    // A new CA (the old one deleted) makes every node certificate again: the old ones would not verify.
    rmSync(join(dir, 'pki', 'ca.crt'));
    const renewed = prepareSecureFiles(dir, ['n1']);
    const newCa = new X509Certificate(readFileSync(renewed.caPath));
    assert.ok(new X509Certificate(readFileSync(renewed.nodeCerts.get('n1')!.cert)).checkIssued(newCa));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the printed commands: curl and raftkv with the CA and a token, paths quoted for the shell', () => {
  const files = { ...FAKE_FILES, caPath: '/my data/pki/ca.crt' };
  const endpoints = ['https://127.0.0.1:7001', 'https://127.0.0.1:7002'];
  const text = secureHints(files, endpoints, MAIN_JS);
  assert.ok(text.includes(`curl --cacert '/my data/pki/ca.crt' -H "Authorization: Bearer ADMIN-TOKEN" https://127.0.0.1:7001/v1/status`), text);
  assert.ok(text.includes(`status --endpoints https://127.0.0.1:7001,https://127.0.0.1:7002 --cacert '/my data/pki/ca.crt' --token ADMIN-TOKEN`), text);
  assert.ok(text.includes(`export RAFTKV_ENDPOINTS=https://127.0.0.1:7001,https://127.0.0.1:7002 RAFTKV_CACERT='/my data/pki/ca.crt' RAFTKV_TOKEN=APP-TOKEN`), text);
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(shellQuote('/plain/path.crt'), '/plain/path.crt');
});

test('the leader narration reaches an https node that wants a token, with the CA and the admin token', { skip: NO_OPENSSL }, async () => {
  const pki = testPki();
  const status = { id: 'n1', role: 'leader', term: 3, leader: 'n1', commitIndex: 1, appliedIndex: 1, lastIndex: 1, members: [] };
  await withNodes([startFakeNode('n1', () => ({ status: 200, json: status }), { tls: pki.node, token: 'ADMIN' })], async ([node]) => {
    let out = '';
    const stop = watchLeader(new RaftKvClient({ endpoints: [node!.url], ca: pki.ca, token: 'ADMIN', timeoutMs: 1000, retries: 0 }), { stdout: (s) => (out += s), stderr: () => undefined }, 20);
    try {
      const deadline = Date.now() + 5000;
      while (!out.includes('leader:') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // Ten more polls of the same leader and term.
      const polled = node!.requests.length;
      while (node!.requests.length < polled + 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    } finally {
      stop();
    }
    assert.equal(out.split('\n')[0], 'leader: n1 (term 3)');
    assert.equal(out.split('\n').filter((l) => l !== '').length, 1, 'an unchanged leader is not repeated');
  });
});
