// runClientCommand: strict flag parsing (one line naming the flag, exit 2, nothing sent), the
// exit codes, and --json output that parses, against a scripted node on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runClientCommand } from '../../src/cli/client-commands.js';
import { downNodeUrl, errorReply, kvScript, startFakeNode, withNodes, type FakeNode } from './fake-node.js';
import { assertUsage, type Run } from '../cli/usage.js';


async function run(argv: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runClientCommand(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) }, env);
  return { code, stdout, stderr };
}

const usageCases: [string[], string | RegExp][] = [
  [['get', 'k', '--bogus'], '--bogus'],
  [['watch'], 'KEY or --prefix P'],
  [['watch', 'a', '--prefix', 'b'], 'not both'],
  [['watch', 'a', 'b'], 'unexpected argument "b"'],
  [['watch', 'a', '--from', '0'], '--from'],
  [['watch', 'a', '--prev-value=yes'], '--prev-value'],
  [['watch', ''], 'non-empty KEY'],
  [['put', 'k', 'v', '--prev-exist', 'maybe'], '--prev-exist'],
  [['put', 'k', 'v', '--prev-index', '-3'], '--prev-index'],
  [['put', 'k', 'v', '--prev-index', 'x1'], '--prev-index'],
  [['list', 'a/', '--limit'], '--limit'],
  [['list', 'a/', '--limit', '0'], '--limit'],
  [['get', 'k', '--consistency', 'strong'], '--consistency'],
  [['get', 'k', '--json=yes'], '--json'],
  [['get', 'k', '--timeout-ms', 'soon'], '--timeout-ms'],
  [['get', 'k', '--endpoints', 'not a url'], '--endpoints'],
  [['del', 'k', '--prev-exist', 'false'], '--prev-exist'],
  [['members', 'add', 'n4', '--client-addr', 'http://127.0.0.1:7004'], '--peer-addr'],
  [['members', 'add', 'n4', '--peer-addr', 'nowhere', '--client-addr', 'http://x:1'], '--peer-addr'],
  [['members', 'remove', 'n4', '--learner'], '--learner'],
  [['leader', 'transfer', '--to'], '--to'],
  [['put', 'k'], 'VALUE'],
  [['get'], 'KEY'],
  [['get', 'a', 'b'], '"b"'],
  [['members', 'frobnicate'], 'frobnicate'],
  [['leader', 'elect'], 'elect'],
  [['teleport'], 'teleport'],
  [[], /command/],
];

test('a wrong or missing flag or argument: exit 2, one stderr line naming it, nothing sent', () =>
  withNodes([startFakeNode('n1', () => ({ status: 200, json: { index: 1, revision: 1 } }))], async ([node]) => {
    for (const [argv, mentions] of usageCases) {
      const r = await run(argv, { RAFTKV_ENDPOINTS: node!.url });
      assertUsage(r, mentions);
    }
    assert.equal(node!.requests.length, 0);
  }));

test('--json output parses: put, get, del, list; a missing key exits 3', () =>
  withNodes([startFakeNode('n1', kvScript())], async ([node]) => {
    const e = ['--endpoints', node!.url, '--json'];
    const put = await run(['put', 'greeting', 'hello world', ...e]);
    assert.equal(put.code, 0, put.stderr);
    assert.deepEqual(JSON.parse(put.stdout), { index: 1, revision: 2 });
    const get = await run(['get', 'greeting', ...e, '--consistency', 'lease']);
    assert.equal(get.code, 0, get.stderr);
    assert.deepEqual(JSON.parse(get.stdout), { key: 'greeting', value: 'hello world', createIndex: 1, modIndex: 1, version: 1, createRevision: 2, modRevision: 2, lease: 0 });
    assert.ok(node!.requests[1]!.url.endsWith('?consistency=lease'));
    const missing = await run(['get', 'nope', ...e]);
    assert.equal(missing.code, 3);
    assert.equal(missing.stdout, '');
    assert.equal((JSON.parse(missing.stderr) as { error: { code: string } }).error.code, 'NOT_FOUND');
  }));

test('human output: get prints the value alone; put and del say what happened', () =>
  withNodes([startFakeNode('n1', kvScript())], async ([node]) => {
    const env = { RAFTKV_ENDPOINTS: node!.url };
    assert.equal((await run(['put', 'k', '--', '-dash value'], env)).stdout, 'OK (index 1, revision 2)\n');
    const got = await run(['get', 'k'], env);
    assert.deepEqual([got.code, got.stdout, got.stderr], [0, '-dash value\n', '']);
  }));

test('compare failed exits 4; an unreachable cluster exits 1 with one error line', async () => {
  await withNodes([startFakeNode('n1', () => errorReply(412, 'COMPARE_FAILED'))], async ([node]) => {
    const r = await run(['put', 'k', 'v', '--prev-value', 'old', '--endpoints', node!.url]);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /^error: .*COMPARE_FAILED\n$/);
    assert.equal(new URL(node!.requests[0]!.url, 'http://x').searchParams.get('prevValue'), 'old');
  });
  const r = await run(['del', 'k', '--endpoints', await downNodeUrl(), '--timeout-ms', '500', '--json']);
  assert.equal(r.code, 1);
  assert.equal((JSON.parse(r.stderr) as { error: { code: string } }).error.code, 'UNREACHABLE');
});

function statusNode(id: string, role: string): Promise<FakeNode> {
  return startFakeNode(id, () => ({ status: 200, json: { id, role, term: 4, leader: 'n1', commitIndex: 12, appliedIndex: 12, lastIndex: 13, members: [] } }));
}

test('status: a small table per endpoint, unreachable ones marked; --json parses', async () => {
  const down = await downNodeUrl();
  await withNodes([statusNode('n1', 'leader'), statusNode('n2', 'follower')], async ([a, b]) => {
    const endpoints = ['--endpoints', `${a!.url},${b!.url},${down}`];
    const human = await run(['status', ...endpoints]);
    assert.equal(human.code, 0, human.stderr);
    assert.equal(human.stderr, '');
    const lines = human.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 4);
    assert.match(lines[0]!, /^ENDPOINT\s+ID\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+LAST\s+READY\s+NOTE$/);
    assert.match(lines[1]!, /n1\s+leader\s+4\s+n1\s+12\s+12\s+13\s+yes$/);
    assert.match(lines[3]!, /^\S+\s+-\s+unreachable\s+-\s+-\s+-\s+-\s+-\s+no\s+connect ECONNREFUSED/);
    const json = await run(['status', ...endpoints, '--json']);
    const parsed = JSON.parse(json.stdout) as { endpoint: string; ready: boolean; status?: { role: string }; error?: { code: string } }[];
    assert.deepEqual(parsed.map((p) => p.status?.role ?? p.error?.code), ['leader', 'follower', 'UNREACHABLE']);
    assert.deepEqual(parsed.map((p) => p.ready), [true, true, false]);
  });
  const none = await run(['status', '--endpoints', down]);
  assert.equal(none.code, 1);
  assert.equal(none.stderr.split('\n').filter((l) => l !== '').length, 1, none.stderr);
});

test('members and leader transfer reach their endpoints; a 404 (not yet implemented) exits 3', () =>
  withNodes(
    [
      startFakeNode('n1', (r) => {
        if (r.method === 'GET') return { status: 200, json: { members: [{ id: 'n1', peerAddr: '127.0.0.1:8001', clientAddr: 'http://127.0.0.1:7001', role: 'voter' }] } };
        if (r.url === '/v1/leader/transfer') return errorReply(404, 'NOT_FOUND');
        return { status: 200, json: { ok: true } };
      }),
    ],
    async ([node]) => {
      const env = { RAFTKV_ENDPOINTS: node!.url };
      const list = await run(['members', 'list'], env);
      assert.match(list.stdout, /^ID\s+ROLE\s+PEER\s+CLIENT\nn1\s+voter\s+127\.0\.0\.1:8001\s+http:\/\/127\.0\.0\.1:7001\n$/);
      const add = await run(['members', 'add', 'n4', '--peer-addr', '127.0.0.1:8004', '--client-addr', 'http://127.0.0.1:7004', '--learner', '--json'], env);
      assert.equal(add.code, 0, add.stderr);
      assert.deepEqual(JSON.parse(node!.requests[1]!.body.toString()), { id: 'n4', peerAddr: '127.0.0.1:8004', clientAddr: '127.0.0.1:7004', role: 'learner' });
      assert.equal((await run(['members', 'promote', 'n4'], env)).stdout, 'promoted n4\n');
      assert.equal(node!.requests[2]!.url, '/v1/members/n4/promote');
      const transfer = await run(['leader', 'transfer', '--to', 'n2'], env);
      assert.equal(transfer.code, 3);
      assert.match(transfer.stderr, /^error: /);
    },
  ));

test('--help prints the usage and exits 0 without contacting anyone', async () => {
  const r = await run(['put', '--help'], { RAFTKV_ENDPOINTS: await downNodeUrl() });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^usage: raftkv put KEY VALUE/);
});
