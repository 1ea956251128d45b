// The `raftkv` command as a process, driven by its command table (src/cli/commands.ts): --version,
// --help on every command (serve and cluster included) listing every flag of its table, flags
// before the command, -w json|table, values from stdin, and shell completion scripts that a real
// bash completes from. Client commands run against a scripted node on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../../src/cli/commands.js';
import { flagLabel } from '../../src/cli/help.js';
import { MAIN_JS } from '../../src/harness/index.js';
import { errorReply, kvScript, startFakeNode, withNodes } from '../client/fake-node.js';
import { assertUsage, type Run } from './usage.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));


function raftkv(args: string[], options: { stdin?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const env = { ...process.env, RAFTKV_ENDPOINTS: '', ...options.env };
    const child = execFile(process.execPath, [MAIN_JS, ...args], { env, timeout: 20_000, encoding: 'buffer' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8') });
    });
    // A command that stops reading early (a value over the limit) closes the pipe under us.
    child.stdin!.on('error', () => undefined);
    if (options.stdin !== undefined) child.stdin!.end(options.stdin);
    else child.stdin!.end();
  });
}

test('--version, -v and `version` print the package version; no command prints the usage and exits 2', async () => {
  const { version } = JSON.parse(readFileSync(`${REPO}package.json`, 'utf8')) as { version: string };
  for (const args of [['--version'], ['-v'], ['version']]) {
    const r = await raftkv(args);
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, `${version}\n`, ''], args.join(' '));
  }
  const none = await raftkv([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^usage: raftkv COMMAND/);
  const help = await raftkv(['--help']);
  assert.equal(help.code, 0);
  for (const c of COMMANDS) assert.match(help.stdout, new RegExp(`^  ${c.name} +\\S`, 'm'), `the main help lists ${c.name}`);
});

test('--help and -h on every command, serve and cluster included: exit 0, its usage, every flag of its table', async () => {
  const runs = await Promise.all(COMMANDS.flatMap((c) => [raftkv([c.name, '--help']).then((r) => ({ c, r, how: '--help' })), raftkv([c.name, '-h']).then((r) => ({ c, r, how: '-h' }))]));
  for (const { c, r, how } of runs) {
    assert.equal(r.code, 0, `${c.name} ${how}: ${r.stderr}`);
    assert.ok(r.stdout.startsWith(`usage: raftkv ${c.name}`), `${c.name} ${how}: ${r.stdout.slice(0, 80)}`);
    for (const [name, def] of Object.entries(c.flags)) assert.ok(r.stdout.includes(flagLabel(name, def)), `${c.name} ${how} does not show ${flagLabel(name, def)}`);
  }
  assert.match((await raftkv(['--help', 'cluster'])).stdout, /^usage: raftkv cluster/);
  assert.match((await raftkv(['help', 'status'])).stdout, /^usage: raftkv status/);
  // Help wins over other flags and writes nothing: serve --help with a data dir creates none.
  const serve = await raftkv(['serve', '--data-dir', '/nonexistent/never', '--help']);
  assert.equal(serve.code, 0);
});

test('usage errors around the command: one line, exit 2', async () => {
  assertUsage(await raftkv(['--bogus', 'get', 'k']), '--bogus');
  assertUsage(await raftkv(['--endpoints']), '--endpoints');
  assertUsage(await raftkv(['--json']), 'a command is required');
  assertUsage(await raftkv(['teleport']), 'teleport');
  assertUsage(await raftkv(['serve', '--bogus', '1']), '--bogus');
  assertUsage(await raftkv(['cluster', '--nodes', '12']), '--nodes');
  assertUsage(await raftkv(['completion', 'fish']), 'fish');
  assertUsage(await raftkv(['completion']), 'bash or zsh');
  assertUsage(await raftkv(['get', 'k', '--json', '-w', 'table', '--endpoints', 'http://127.0.0.1:1']), '--write-out');
  assertUsage(await raftkv(['get', 'k', '-w', 'yaml', '--endpoints', 'http://127.0.0.1:1']), '--write-out');
});

test('client flags before the command work as after it (raftkv --endpoints URL -w json get KEY)', () =>
  withNodes([startFakeNode('n1', kvScript())], async ([node]) => {
    assert.equal((await raftkv(['--endpoints', node!.url, 'put', 'k', 'v'])).code, 0);
    const r = await raftkv(['--endpoints', node!.url, '-w', 'json', 'get', 'k']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { value: string }).value, 'v');
    const eq = await raftkv([`--endpoints=${node!.url}`, '--json', 'get', 'k']);
    assert.equal((JSON.parse(eq.stdout) as { value: string }).value, 'v');
    // A flag the command does not take is refused by the command, naming it.
    assertUsage(await raftkv(['--learner', '--endpoints', node!.url, 'get', 'k']), '--learner');
  }));

test('-w table and -w json for get, list, status and members list', () =>
  withNodes(
    [
      startFakeNode('n1', (req) => {
        const url = new URL(req.url, 'http://x');
        const rec = (key: string, value: string, rev: number): object => ({ key, value, createIndex: rev, modIndex: rev, version: 1, createRevision: rev, modRevision: rev, lease: 0 });
        if (url.pathname === '/v1/kv/a') return { status: 200, json: rec('a', 'one', 2) };
        if (url.pathname === '/v1/kv' || url.pathname === '/v1/kv/') return { status: 200, json: { items: [rec('a', 'one', 2), rec('b', 'two words', 3)], more: false, revision: 3 } };
        if (url.pathname === '/v1/members') return { status: 200, json: { members: [{ id: 'n1', peerAddr: '127.0.0.1:8001', clientAddr: '127.0.0.1:7001', role: 'voter' }] } };
        if (url.pathname === '/v1/status') return { status: 200, json: { id: 'n1', role: 'leader', term: 2, leader: 'n1', commitIndex: 5, appliedIndex: 5, lastIndex: 5, members: [], alarms: [] } };
        if (url.pathname === '/readyz') return { status: 200, json: { ready: true } };
        return errorReply(404, 'NOT_FOUND');
      }),
    ],
    async ([node]) => {
      const e = ['--endpoints', node!.url];
      const get = await raftkv(['get', 'a', ...e, '-w', 'table']);
      assert.equal(get.code, 0, get.stderr);
      assert.match(get.stdout, /^KEY\s+CREATE_REV\s+MOD_REV\s+VERSION\s+LEASE\s+VALUE\na\s+2\s+2\s+1\s+-\s+one\n$/);
      const list = await raftkv(['list', '', ...e, '--write-out=table']);
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(list.stdout.trimEnd().split('\n').map((l) => l.split(/\s+/)[0]), ['KEY', 'a', 'b']);
      assert.match(list.stdout, /3\s+1\s+-\s+two words\n$/);
      const listJson = JSON.parse((await raftkv(['list', ...e, '-w', 'json'])).stdout) as { items: { key: string }[] };
      assert.deepEqual(listJson.items.map((i) => i.key), ['a', 'b']);
      const members = await raftkv(['members', 'list', ...e, '-w', 'table']);
      assert.match(members.stdout, /^ID\s+ROLE\s+PEER\s+CLIENT\nn1\s+voter/);
      assert.deepEqual((JSON.parse((await raftkv(['members', 'list', ...e, '-w', 'json'])).stdout) as { members: unknown[] }).members.length, 1);
      const status = await raftkv(['status', ...e, '-w', 'json']);
      assert.equal(status.code, 0, status.stderr);
      assert.equal((JSON.parse(status.stdout) as { status: { role: string } }[])[0]!.status.role, 'leader');
      assert.match((await raftkv(['status', ...e, '-w', 'table'])).stdout, /^ENDPOINT\s+ID\s+ROLE/);
    },
  ));

test('put reads the value from stdin: "-" byte for byte, or a piped stdin when no VALUE is given; an empty one is refused', () =>
  withNodes([startFakeNode('n1', kvScript())], async ([node]) => {
    const env = { RAFTKV_ENDPOINTS: node!.url };
    const binary = Buffer.from([0, 255, 10, 13, 0x80, 65]);
    assert.equal((await raftkv(['put', 'bin', '-'], { env, stdin: binary })).code, 0);
    assert.deepEqual(node!.requests.at(-1)!.body, binary);
    const piped = await raftkv(['put', 'text'], { env, stdin: 'line one\nline two\n' });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(node!.requests.at(-1)!.body.toString(), 'line one\nline two\n');
    const got = await raftkv(['get', 'text'], { env });
    assert.equal(got.stdout, 'line one\nline two\n\n');
    const sent = node!.requests.length;
    assertUsage(await raftkv(['put', 'k'], { env, stdin: '' }), 'stdin was empty');
    assert.equal(node!.requests.length, sent, 'nothing was sent');
    assert.equal((await raftkv(['put', 'empty', '-'], { env, stdin: '' })).code, 0, 'an empty value, asked for with -');
    assert.equal(node!.requests.at(-1)!.body.length, 0);
    // stdin is read no further than the largest value a node takes (64 MiB): nothing is sent.
    const before = node!.requests.length;
    assertUsage(await raftkv(['put', 'huge', '-'], { env, stdin: Buffer.alloc((64 << 20) + 1, 120) }), 'larger than');
    assert.equal(node!.requests.length, before);
  }));

test('completion bash: a real bash completes commands, flags, flag values and actions from the table', { skip: spawnSync('bash', ['--version']).status !== 0 ? 'no bash' : false }, async () => {
  const script = await raftkv(['completion', 'bash']);
  assert.equal(script.code, 0, script.stderr);
  const complete = (words: string[]): string[] => {
    const program = `${script.stdout}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _raftkv; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', program], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter((l) => l !== '').sort();
  };
  assert.deepEqual(complete(['raftkv', 'ser']), ['serve']);
  assert.deepEqual(complete(['raftkv', 'c']), ['cluster', 'compact', 'completion']);
  assert.deepEqual(complete(['raftkv', 'serve', '--data']), ['--data-dir']);
  assert.deepEqual(complete(['raftkv', 'serve', '--log-level', '']), ['debug', 'error', 'info', 'warn']);
  assert.deepEqual(complete(['raftkv', 'get', 'k', '-w', '']), ['json', 'simple', 'table']);
  assert.deepEqual(complete(['raftkv', 'members', '']), ['add', 'list', 'promote', 'remove']);
  assert.deepEqual(complete(['raftkv', '--endpoints', 'http://x:1', 'lease', 're']), ['revoke']);
  assert.ok(complete(['raftkv', 'cluster', '--']).includes('--secure'));
});

test('completion zsh: a script zsh accepts, with every command and every flag', async () => {
  const script = await raftkv(['completion', 'zsh']);
  assert.equal(script.code, 0, script.stderr);
  assert.match(script.stdout, /^#compdef raftkv\n/);
  for (const c of COMMANDS) {
    assert.ok(script.stdout.includes(`_raftkv_${c.name}() {`), `no function for ${c.name}`);
    for (const name of Object.keys(c.flags)) assert.ok(script.stdout.includes(`--${name}`), `${c.name} --${name}`);
  }
  if (spawnSync('zsh', ['--version']).status === 0) {
    const r = spawnSync('zsh', ['-n'], { input: script.stdout, encoding: 'utf8' });
    assert.equal(r.status, 0, `zsh -n: ${r.stderr}`);
  }
});
