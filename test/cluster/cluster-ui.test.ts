// `raftkv cluster`'s dashboard controls (src/cli/cluster-ui.ts, cluster-hook.ts): only its own page
// can command it (Host, Origin, JSON content type, bounded bodies, known actions and targets), and
// its partition button really cuts a node off through the IPC hook: the isolated leader loses its
// place, the others elect one, and after healing the cluster is whole again; pause and resume
// freeze and thaw a node's process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { ClusterUi, type ClusterControls } from '../../src/cli/cluster-ui.js';
import { parseBlockMessage } from '../../src/cli/cluster-hook.js';
import { freeBasePort, freePorts } from '../../src/transport/free-ports.js';
import { childEnv, MAIN_JS, makeTempDir, pollUntil, removeTempDir, stopSupervisor } from './harness.js';
import { tryHttp, type NodeStatus } from './http.js';

function post(port: number, body: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/ui/control', method: 'POST', headers: { host: `127.0.0.1:${port}`, 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the control endpoint takes only well-formed JSON commands from its own origin', { timeout: 20_000 }, async () => {
  const done: string[] = [];
  const controls: ClusterControls = {
    members: [{ id: 'n1', clientUrl: 'http://127.0.0.1:1' }],
    state: () => 'running',
    stop: (id) => (done.push(`stop ${id}`), 'stopped'),
    restart: (id) => (done.push(`restart ${id}`), 'restarted'),
    pause: (id) => (done.push(`pause ${id}`), 'paused'),
    resume: (id) => (done.push(`resume ${id}`), 'resumed'),
    partition: (id) => (done.push(`partition ${id}`), 'partitioned'),
    heal: (id) => (done.push(`heal ${id}`), 'healed'),
    write: (key, _v, count) => (done.push(`write ${key} ${count}`), Promise.resolve('written')),
  };
  const [port] = await freePorts(1);
  const ui = new ClusterUi({ port: port!, controls });
  await ui.listen();
  try {
    assert.equal((await post(port!, '{"action":"stop","target":"n1"}')).status, 200);
    assert.equal((await post(port!, '{"action":"write","key":"k","count":3}')).status, 200);
    assert.deepEqual(done, ['stop n1', 'write k 3']);
    const refused: [string, string, Record<string, string>, number][] = [
      ['another site (Origin)', '{"action":"stop","target":"n1"}', { origin: 'http://evil.example' }, 403],
      ['DNS rebinding (Host)', '{"action":"stop","target":"n1"}', { host: 'evil.example' }, 421],
      ['a form post', 'action=stop&target=n1', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
      ['text/plain (no preflight)', '{"action":"stop","target":"n1"}', { 'content-type': 'text/plain' }, 415],
      ['not JSON', '{"action":', {}, 400],
      ['an array', '[]', {}, 400],
      ['an unknown action', '{"action":"rm -rf","target":"n1"}', {}, 400],
      ['an unknown target', '{"action":"stop","target":"n9"}', {}, 400],
      ['a target that is not a string', '{"action":"stop","target":{"id":"n1"}}', {}, 400],
      ['too many writes', '{"action":"write","key":"k","count":100000}', {}, 400],
      ['an empty key', '{"action":"write","key":"","count":1}', {}, 400],
      ['a body past 16 KiB', JSON.stringify({ action: 'write', key: 'k', value: 'x'.repeat(20_000) }), {}, 400],
    ];
    for (const [what, body, headers, status] of refused) {
      const r = await post(port!, body, headers).catch(() => ({ status: 0, text: 'connection cut' }));
      assert.ok(r.status === status || (status === 400 && r.status === 0), `${what}: ${r.status} ${r.text}`);
    }
    assert.deepEqual(done, ['stop n1', 'write k 3'], 'nothing refused was done');
  } finally {
    ui.close();
  }
});

test('a block message is checked before a node obeys it', () => {
  assert.deepEqual(parseBlockMessage({ type: 'block', peers: ['n1', 'n2'] }), { type: 'block', peers: ['n1', 'n2'] });
  for (const bad of [null, 'block', { type: 'block' }, { type: 'block', peers: 'n1' }, { type: 'block', peers: [1] }, { type: 'block', peers: ['a b'] }, { type: 'heal', peers: [] }, { type: 'block', peers: Array(65).fill('n1') }]) {
    assert.equal(parseBlockMessage(bad), null, JSON.stringify(bad));
  }
});

test('the dashboard\'s partition cuts the leader off: the others elect a new one; healing makes the cluster whole', { timeout: 90_000 }, async () => {
  const dir = makeTempDir('ui-partition');
  const base = await freeBasePort([0, 1, 2, 3, 101, 102, 103]);
  const urls = [1, 2, 3].map((i) => `http://127.0.0.1:${base + i}`);
  const child = spawn(process.execPath, [MAIN_JS, 'cluster', '--nodes', '3', '--base-port', String(base), '--dir', dir, '--heartbeat-ms', '100', '--election-ms', '500'], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const statuses = async (): Promise<NodeStatus[]> => (await Promise.all(urls.map(async (u) => (await tryHttp(u, '/v1/status', { timeoutMs: 1000 }))?.json<NodeStatus>() ?? null))).filter((s): s is NodeStatus => s !== null);
  try {
    await pollUntil('the dashboard', 20_000, async () => (stdout.includes('dashboard:') ? true : undefined), 100);
    const old = await pollUntil('a leader', 20_000, async () => (await statuses()).find((s) => s.role === 'leader'));
    const cut = await post(base, JSON.stringify({ action: 'partition', target: old.id }));
    assert.equal(cut.status, 200, cut.text);
    const next = await pollUntil('a new leader on the majority side', 20_000, async () => {
      const all = await statuses();
      const lead = all.find((s) => s.role === 'leader' && s.id !== old.id && s.term > old.term);
      const isolated = all.find((s) => s.id === old.id);
      return lead !== undefined && isolated !== undefined && isolated.role !== 'leader' ? lead : undefined;
    });
    assert.notEqual(next.id, old.id);
    assert.equal((await post(base, JSON.stringify({ action: 'heal', target: old.id }))).status, 200);
    await pollUntil('the old leader to follow the new one', 20_000, async () => {
      const all = await statuses();
      const leaders = all.filter((s) => s.role === 'leader');
      return all.length === 3 && leaders.length === 1 && all.every((s) => s.leader === leaders[0]!.id && s.term === leaders[0]!.term) ? true : undefined;
    });

    // Pause freezes the process (its port stops answering); resume brings it back.
    const follower = (await statuses()).find((s) => s.role !== 'leader')!;
    const followerUrl = urls[Number(follower.id.slice(1)) - 1]!;
    assert.equal((await post(base, JSON.stringify({ action: 'pause', target: follower.id }))).status, 200);
    assert.equal(await tryHttp(followerUrl, '/livez', { timeoutMs: 700 }), null, 'a paused node answers nothing');
    assert.equal((await post(base, JSON.stringify({ action: 'resume', target: follower.id }))).status, 200);
    await pollUntil('the resumed node to answer', 10_000, async () => ((await tryHttp(followerUrl, '/livez', { timeoutMs: 1000 }))?.status === 200 ? true : undefined));
  } finally {
    await stopSupervisor(child, exited);
    removeTempDir(dir);
  }
});
