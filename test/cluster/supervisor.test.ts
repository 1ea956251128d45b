// `raftkv cluster` (what `npm start` runs), end to end: it starts three `raftkv serve` children
// and narrates the leader; a member removed with `DELETE /v1/members/{id}` is told by the leader,
// stops by itself (exit 0) and is not restarted; the others keep serving; Ctrl-C (SIGINT) stops
// every node and the supervisor exits 0. A child that refuses its flags is not restarted. With
// --secure, the commands it prints work as pasted, and nothing works without the CA or a token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { parseServeConfig } from '../../src/cli/serve.js';
import { hasOpenssl } from '../../src/security/certs.js';
import { freeBasePort } from '../../src/transport/free-ports.js';
import { childEnv, MAIN_JS, makeTempDir, pollUntil, removeTempDir, runMain, stopSupervisor } from './harness.js';
import { http, tryHttp, type NodeStatus } from './http.js';

/** Starts `raftkv cluster ARGS` and collects its output. */
function startSupervisor(args: readonly string[]): { child: ChildProcessWithoutNullStreams; out: { stdout: string; stderr: string }; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [MAIN_JS, 'cluster', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: childEnv() });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out, exited };
}

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

test('raftkv cluster: a node that refuses its flags (exit 2) is not restarted; Ctrl-C still exits 0', { timeout: 60_000 }, async () => {
  const dir = makeTempDir('supervisor-usage');
  const base = await freeBasePort([1, 2, 101, 102]);
  // serve refuses an election timeout that is not above twice the heartbeat.
  const { child, out, exited } = startSupervisor(['--nodes', '2', '--base-port', String(base), '--dir', dir, '--heartbeat-ms', '100', '--election-ms', '150']);
  try {
    await pollUntil('both nodes to be given up', 20_000, async () => ((out.stderr.match(/refused its flags \(exit 2\); not restarting it/g) ?? []).length === 2 ? true : undefined), 50);
    assert.match(out.stderr, /\[n1\] raftkv: .*--election-ms/);
    // Long enough for a restart (1 s) to have happened if there were one.
    await new Promise((r) => setTimeout(r, 1500));
    assert.doesNotMatch(out.stdout, /restarting it/);
    child.kill('SIGINT');
    assert.equal(await exited, 0, out.stdout + out.stderr);
  } finally {
    await stopSupervisor(child, exited);
    removeTempDir(dir);
  }
});

/** The environment of every running process whose command line holds `needle`, by pid (Linux /proc). */
function environsOf(needle: string): Map<number, Map<string, string>> {
  const out = new Map<number, Map<string, string>>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle)) continue;
      const vars = readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').filter((v) => v.includes('='));
      out.set(Number(name), new Map(vars.map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)])));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

test('raftkv cluster starts its members with malloc on huge pages, and keeps GLIBC_TUNABLES a caller set (cli/member-env.ts)', { skip: process.platform !== 'linux' ? 'reads /proc' : false, timeout: 60_000 }, async () => {
  for (const given of [undefined, 'glibc.malloc.arena_max=4']) {
    const dir = makeTempDir('supervisor-env');
    const base = await freeBasePort([1, 2, 101, 102]);
    const env = childEnv();
    // childEnv() sets the tunable for the processes the harness starts; the supervisor here runs
    // without it, or with another tunable of the caller's.
    if (given === undefined) delete env['GLIBC_TUNABLES'];
    else env['GLIBC_TUNABLES'] = given;
    const child = spawn(process.execPath, [MAIN_JS, 'cluster', '--nodes', '2', '--base-port', String(base), '--dir', dir, '--heartbeat-ms', '50', '--election-ms', '300', '--no-ui'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.resume();
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await pollUntil('the supervisor to name a leader', 30_000, async () => (/leader: n\d/.test(stdout) ? true : undefined), 100);
      // The supervisor's command line names the dir (--dir), each member's its data dir in it.
      const running = environsOf(dir);
      assert.equal(running.get(child.pid!)?.get('GLIBC_TUNABLES'), given, 'the supervisor’s own environment is as it was given');
      running.delete(child.pid!);
      assert.equal(running.size, 2, `two members running under ${dir}`);
      for (const [pid, vars] of running) assert.equal(vars.get('GLIBC_TUNABLES'), given ?? 'glibc.malloc.hugetlb=1', `member pid ${pid}`);
    } finally {
      await stopSupervisor(child, exited);
      removeTempDir(dir);
    }
  }
});

/** Whether `serve` has the TLS flags of API.md "Security" (the server side of issue 9). */
function serveHasTls(): boolean {
  try {
    parseServeConfig(['--cert-file', 'x'], {});
  } catch (err) {
    return !/unknown flag/.test((err as Error).message);
  }
  return true;
}

const SECURE_SKIP = !hasOpenssl() ? 'openssl is not installed (CI installs it)' : !serveHasTls() ? 'serve has no --cert-file yet' : false;

function sh(command: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', command], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

test('raftkv cluster --secure: HTTPS and tokens on every node; the printed commands work as pasted; nothing works without the CA or a token', { skip: SECURE_SKIP, timeout: 120_000 }, async () => {
  const dir = makeTempDir('supervisor-secure');
  const base = await freeBasePort([1, 2, 3, 101, 102, 103]);
  const args = ['--secure', '--nodes', '3', '--base-port', String(base), '--dir', dir, '--heartbeat-ms', '50', '--election-ms', '300'];
  let run = startSupervisor(args);
  try {
    // The narration polls /v1/status over HTTPS with the admin token: a leader line proves both.
    await pollUntil('the supervisor to name a leader', 40_000, async () => (/leader: n\d/.test(run.out.stdout) ? true : undefined), 100);
    const lines = run.out.stdout.split('\n');
    const curl = lines.find((l) => l.trim().startsWith('curl '))!.trim();
    const status = lines.find((l) => / status --endpoints /.test(l))!.trim();
    const exportLine = lines.find((l) => l.trim().startsWith('export RAFTKV_ENDPOINTS='))!.trim();
    const putGet = lines.find((l) => / put hello world && /.test(l))!.trim();
    const env = childEnv();

    const statusRun = await sh(status, env);
    assert.equal(statusRun.code, 0, statusRun.stderr);
    assert.match(statusRun.stdout, /https:\/\/127\.0\.0\.1:\d+\s+n\d\s+leader\s.*\syes/);
    const putGetRun = await sh(`${exportLine} && ${putGet}`, env);
    assert.deepEqual([putGetRun.code, putGetRun.stdout.trim().split('\n').at(-1)], [0, 'world'], putGetRun.stderr);
    if ((await sh('command -v curl', env)).code === 0) {
      const curlRun = await sh(`${curl} -s -f`, env);
      assert.equal(curlRun.code, 0, curlRun.stderr);
      assert.match(curlRun.stdout, /"leader":"n\d"/);
    }

    // Without the token: 401 on one line; without the CA: a TLS error on one line. Nothing is written.
    const endpoints = /RAFTKV_ENDPOINTS=(\S+)/.exec(exportLine)![1]!;
    const caPath = `${dir}/pki/ca.crt`;
    const noToken = await runMain(['put', 'intruder', 'x', '--endpoints', endpoints, '--cacert', caPath]);
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /^error: .*--token T or RAFTKV_TOKEN\n$/);
    const noCa = await runMain(['status', '--endpoints', endpoints]);
    assert.equal(noCa.code, 1);
    assert.match(noCa.stderr, /^error: .*--cacert FILE or RAFTKV_CACERT\n$/);
    const plain = await tryHttp(endpoints.split(',')[0]!.replace('https:', 'http:'), '/v1/status', { timeoutMs: 2000 });
    assert.notEqual(plain?.status, 200, 'the client port does not answer plain HTTP');

    // A second run reuses the CA and the tokens: the commands printed the first time still work.
    run.child.kill('SIGINT');
    assert.equal(await run.exited, 0, run.out.stdout + run.out.stderr);
    run = startSupervisor(args);
    await pollUntil('the restarted cluster to name a leader', 40_000, async () => (/leader: n\d/.test(run.out.stdout) ? true : undefined), 100);
    assert.ok(run.out.stdout.includes(curl), 'the same CA and token are printed again');
    const getOnly = putGet.split(' && ')[1]!;
    const again = await sh(`${exportLine} && ${getOnly}`, env);
    assert.equal(again.stdout.trim(), 'world', again.stderr);
    run.child.kill('SIGINT');
    assert.equal(await run.exited, 0, run.out.stdout + run.out.stderr);
  } finally {
    await stopSupervisor(run.child, run.exited);
    removeTempDir(dir);
  }
});
