// `raftkv cluster` (what `npm start` runs), end to end: it starts three `raftkv serve` children
// and narrates the leader; a member removed with `DELETE /v1/members/{id}` is told by the leader,
// stops by itself (exit 0) and is not restarted; the others keep serving; Ctrl-C (SIGINT) stops
// every node and the supervisor exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { freeBasePort } from '../../src/transport/free-ports.js';
import { childEnv, MAIN_JS, makeTempDir, pollUntil, removeTempDir } from './harness.js';
import { http, tryHttp, type NodeStatus } from './http.js';

test('raftkv cluster: a removed member stops by itself and is not restarted; Ctrl-C stops the rest and exits 0', { timeout: 90_000 }, async () => {
  const dir = makeTempDir('supervisor');
  const base = await freeBasePort([1, 2, 3, 101, 102, 103]);
  const urls = [1, 2, 3].map((i) => `http://127.0.0.1:${base + i}`);
  const child = spawn(process.execPath, [MAIN_JS, 'cluster', '--nodes', '3', '--base-port', String(base), '--dir', dir, '--heartbeat-ms', '50', '--election-ms', '300'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv(),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await pollUntil('the supervisor to name a leader', 30_000, async () => (/leader: n\d/.test(stdout) ? true : undefined), 100);
    const leader = await pollUntil('a leader that answers', 20_000, async () => {
      for (const url of urls) {
        const reply = await tryHttp(url, '/v1/status', { timeoutMs: 1000 });
        const s = reply?.status === 200 ? reply.json<NodeStatus>() : null;
        if (s !== null && s.role === 'leader') return { url, id: s.id };
      }
      return undefined;
    });
    const leaving = ['n1', 'n2', 'n3'].find((id) => id !== leader.id)!;

    const removed = await http(leader.url, `/v1/members/${leaving}`, { method: 'DELETE', timeoutMs: 10_000 });
    assert.equal(removed.status, 200, removed.text);
    await pollUntil(`${leaving} to stop and not be restarted`, 20_000, async () => (stdout.includes(`${leaving} stopped cleanly (exit 0); not restarting it`) ? true : undefined), 100);
    assert.match(stderr, new RegExp(`\\[${leaving}\\] raftkv: ${leaving} was removed from the cluster \\(configuration entry \\d+, by n\\d\\); stopping`));
    assert.doesNotMatch(stdout, new RegExp(`${leaving} exited .*restarting it`));

    // The two that stay still commit writes.
    const put = await http(leader.url, '/v1/kv/after-removal', { method: 'PUT', body: 'still here', timeoutMs: 10_000 });
    assert.equal(put.status, 200, put.text);

    child.kill('SIGINT');
    assert.equal(await exited, 0, `supervisor exit; stdout: ${stdout}`);
    assert.match(stdout, /SIGINT: stopping 3 nodes/);
    assert.match(stdout, /all nodes stopped/);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      child.kill('SIGKILL');
    }
    removeTempDir(dir);
  }
});
