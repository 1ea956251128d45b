// The client commands with TLS and tokens (API.md "Security"): --token/--cacert/--cert/--key and
// their RAFTKV_* variables, one-line errors that say what to pass, and `raftkv status`, which keeps
// its table when nodes are down and exits 1 when no endpoint is ready (no quorum).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runClientCommand } from '../../src/cli/client-commands.js';
import { downNodeUrl, errorReply, kvScript, startFakeNode, withNodes, type FakeNode, type Reply } from './fake-node.js';
import { NO_OPENSSL, testPki } from './test-pki.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runClientCommand(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) }, env);
  return { code, stdout, stderr };
}

function oneLine(r: Run): string {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one stderr line, got: ${JSON.stringify(r.stderr)}`);
  return lines[0]!;
}

const TOKEN = 'Zm9vYmFy-token_1';

test('--token and RAFTKV_TOKEN are sent as a bearer token; without one, one line says to pass it', () =>
  withNodes([startFakeNode('n1', kvScript(), { token: TOKEN })], async ([node]) => {
    const put = await run(['put', 'k', 'v', '--endpoints', node!.url, '--token', TOKEN]);
    assert.equal(put.code, 0, put.stderr);
    // A token read from a file with $(cat ...) or pasted keeps its line break in the variable.
    const get = await run(['get', 'k'], { RAFTKV_ENDPOINTS: node!.url, RAFTKV_TOKEN: `${TOKEN}\n` });
    assert.deepEqual([get.code, get.stdout], [0, 'v\n'], get.stderr);
    assert.equal(node!.requests.length, 2);
    const without = await run(['get', 'k', '--endpoints', node!.url]);
    assert.equal(without.code, 1);
    assert.match(oneLine(without), /^error: .*--token T or RAFTKV_TOKEN/);
    const wrong = await run(['get', 'k', '--endpoints', node!.url, '--token', 'nope']);
    assert.match(oneLine(wrong), /did not accept the token/);
    assert.ok(!wrong.stderr.includes('nope'), 'the token is not echoed');
    const denied = await withNodes([startFakeNode('n2', () => errorReply(403, 'PERMISSION_DENIED'))], ([n]) => run(['members', 'remove', 'n3', '--endpoints', n!.url, '--token', TOKEN, '--json']));
    assert.equal(denied.code, 1);
    assert.equal((JSON.parse(oneLine(denied)) as { error: { code: string } }).error.code, 'PERMISSION_DENIED');
  }));

test('bad security flags: exit 2, one line naming the flag or variable, nothing sent', () =>
  withNodes([startFakeNode('n1', () => ({ status: 200, json: { index: 1, revision: 1 } }))], async ([node]) => {
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-cli-sec-'));
    try {
      const junk = join(dir, 'junk.pem');
      writeFileSync(junk, 'hello');
      const badPem = join(dir, 'bad.pem');
      writeFileSync(badPem, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
      const cases: [string[], Record<string, string>, RegExp][] = [
        [['--cacert', join(dir, 'missing.pem')], {}, /^--cacert: cannot read .*missing\.pem \(ENOENT\)$/],
        [[], { RAFTKV_CACERT: join(dir, 'missing.pem') }, /^RAFTKV_CACERT: cannot read/],
        [['--cacert', junk], {}, /^--cacert: .*junk\.pem is not a PEM file with a certificate$/],
        [['--cacert', badPem], {}, /^--cacert/],
        [['--cert', junk], {}, /^--cert/],
        [['--token', 'has space'], {}, /^--token must be a bearer token/],
        [[], { RAFTKV_TOKEN: 'a\nb' }, /^RAFTKV_TOKEN must be a bearer token/],
        [['--token'], {}, /--token needs a value/],
      ];
      for (const [flags, env, expected] of cases) {
        const r = await run(['get', 'k', '--endpoints', node!.url, ...flags], env);
        assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stderr}`);
        assert.match(oneLine(r), expected);
      }
      assert.equal(node!.requests.length, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }));

test('https endpoints: --cacert (or RAFTKV_CACERT) works; without it one line says to pass it', { skip: NO_OPENSSL }, async () => {
  const pki = testPki();
  await withNodes([startFakeNode('n1', kvScript(), { tls: pki.node })], async ([node]) => {
    const put = await run(['put', 'k', 'secure', '--endpoints', node!.url, '--cacert', pki.caPath]);
    assert.equal(put.code, 0, put.stderr);
    const get = await run(['get', 'k'], { RAFTKV_ENDPOINTS: node!.url, RAFTKV_CACERT: pki.caPath });
    assert.equal(get.stdout, 'secure\n', get.stderr);
    const without = await run(['get', 'k', '--endpoints', node!.url]);
    assert.equal(without.code, 1);
    assert.match(oneLine(without), /^error: https:\/\/127\.0\.0\.1:\d+: the node's certificate is not trusted \(.+\); pass the CA that signed it: --cacert FILE or RAFTKV_CACERT$/);
    const status = await run(['status', '--endpoints', node!.url]);
    assert.equal(status.code, 1);
    assert.match(oneLine(status), /^error: the endpoint gave no status: .*--cacert FILE or RAFTKV_CACERT$/);
  });
});

test('--cert/--key (or RAFTKV_CERT/RAFTKV_KEY) present a client certificate; without them one line says so', { skip: NO_OPENSSL }, async () => {
  const pki = testPki();
  await withNodes([startFakeNode('n1', kvScript(), { tls: { ...pki.node, ca: pki.ca, requireClientCert: true } })], async ([node]) => {
    const env = { RAFTKV_ENDPOINTS: node!.url, RAFTKV_CACERT: pki.caPath };
    const put = await run(['put', 'k', 'v', '--cert', pki.client.certPath, '--key', pki.client.keyPath], env);
    assert.equal(put.code, 0, put.stderr);
    const get = await run(['get', 'k'], { ...env, RAFTKV_CERT: pki.client.certPath, RAFTKV_KEY: pki.client.keyPath });
    assert.equal(get.code, 0, get.stderr);
    assert.deepEqual(node!.requests.map((r) => r.clientCertName), ['raftkv-cli', 'raftkv-cli']);
    const without = await run(['get', 'k'], env);
    assert.equal(without.code, 1);
    assert.match(oneLine(without), /refused the TLS connection .*--cert FILE --key FILE$/);
    const half = await run(['get', 'k', '--cert', pki.client.certPath], env);
    assert.equal(half.code, 2);
    assert.match(oneLine(half), /^--cert needs --key/);
  });
});

function node(id: string, isReady: boolean, leader: string | null, alarms: string[] = []): Promise<FakeNode> {
  return startFakeNode(id, (r): Reply => {
    if (r.url === '/readyz') return isReady ? { status: 200, json: { ready: true, leader } } : { status: 503, json: { error: { code: 'NOT_READY', message: 'no leader with a quorum' } } };
    return { status: 200, json: { id, role: leader === id ? 'leader' : 'follower', term: 7, leader, commitIndex: 5, appliedIndex: 5, lastIndex: 5, members: [], clusterId: 'abc', alarms } };
  });
}

test('status without quorum: every row still a full row, exit 1 and one stderr line; with quorum, exit 0', async () => {
  const down = await downNodeUrl();
  await withNodes([node('n1', false, null), node('n2', false, null, ['NO_SPACE'])], async ([a, b]) => {
    const endpoints = ['--endpoints', `${a!.url},${b!.url},${down}`];
    const human = await run(['status', ...endpoints]);
    assert.equal(human.code, 1);
    assert.match(oneLine(human), /^error: no quorum: none of the 3 endpoints is ready/);
    const lines = human.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 4);
    const header = lines[0]!.split(/\s+/);
    assert.deepEqual(header, ['ENDPOINT', 'ID', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'LAST', 'READY', 'NOTE']);
    // Each row has a cell under every column up to READY, aligned with the header.
    const readyAt = lines[0]!.indexOf('READY');
    for (const line of lines.slice(1)) assert.equal(line.slice(readyAt, readyAt + 3), 'no ', line);
    assert.match(lines[1]!, /n1\s+follower\s+7\s+-\s+5\s+5\s+5\s+no\s+not ready: no leader with a quorum$/);
    assert.match(lines[2]!, /no\s+not ready: no leader with a quorum; alarm NO_SPACE$/);
    assert.match(lines[3]!, /-\s+unreachable\s+-\s+-\s+-\s+-\s+-\s+no\s+connect ECONNREFUSED/);

    const json = await run(['status', ...endpoints, '--json']);
    assert.equal(json.code, 1);
    const parsed = JSON.parse(json.stdout) as { ready: boolean; notReady?: { code: string }; status?: { alarms: string[]; clusterId: string } }[];
    assert.deepEqual(parsed.map((p) => [p.ready, p.notReady?.code]), [[false, 'NOT_READY'], [false, 'NOT_READY'], [false, 'UNREACHABLE']]);
    assert.deepEqual(parsed[1]!.status?.alarms, ['NO_SPACE']);
    assert.equal(parsed[0]!.status?.clusterId, 'abc');
    assert.equal((JSON.parse(oneLine(json)) as { error: { code: string } }).error.code, 'NO_QUORUM');
  });
  await withNodes([node('n1', true, 'n1'), node('n2', false, 'n1')], async ([a, b]) => {
    const r = await run(['status', '--endpoints', `${a!.url},${b!.url},${down}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  });
});
