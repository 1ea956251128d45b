// One node's start-up after a kill -9, timed offline (issue 11: restart to first write). `--make
// DIR` fills a one-member data dir with `--keys` keys through the client and kills the node with
// SIGKILL (its WAL keeps the tail since the last snapshot, as after a crash); `--time DIR` starts
// a copy of that data dir `--runs` times and prints, per run, when the node logged 'transport
// listening' and 'serving', became leader, and acknowledged its first PUT (ms after the spawn).
// `--cpu-prof` writes one V8 profile per run beside the copy. One member, so no election waits
// for peers: what is left is the node's own start-up.
//   node dist/bench/startup.js --make /tmp/su --keys 1000000
//   node dist/bench/startup.js --time /tmp/su --runs 3 [--cpu-prof] [--main OTHER/dist/src/cli/main.js] [--node-flags '--flag …']
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../src/transport/free-ports.js';
import { memberEnv } from '../src/cli/member-env.js';
import { runFill } from './lib/fill.js';
import { raftkvWriter } from './lib/raftkv-load.js';
import { sendJson, targetOf } from './lib/http.js';
import { startupPhases } from './lib/raftkv-startup.js';

const MAIN = resolve(process.argv.includes('--main') ? process.argv[process.argv.indexOf('--main') + 1]! : resolve(fileURLToPath(import.meta.url), '../../src/cli/main.js'));

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  readonly logFile: string;
  readonly spawnedAt: number;
}

async function startNode(dataDir: string, logFile: string, nodeFlags: string[]): Promise<Started> {
  const [peer, client] = await freePorts(2);
  const out = openSync(logFile, 'a');
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [...nodeFlags, MAIN, 'serve', '--id', 'n1', '--data-dir', dataDir,
    '--peer-addr', `127.0.0.1:${peer}`, '--client-addr', `127.0.0.1:${client}`, '--initial-cluster', `n1=127.0.0.1:${peer}`, '--log-level', 'info'],
  { stdio: ['ignore', out, out], env: memberEnv(process.env) });
  return { child, url: `http://127.0.0.1:${client}`, logFile, spawnedAt };
}

async function firstAck(url: string, timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await sendJson(targetOf(url), 'PUT', '/v1/kv/startup-probe', undefined, 2000)).status === 200) return Date.now();
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return null;
}

/** User + system CPU time of a running process, from /proc (clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

async function make(dir: string, keys: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const data = join(dir, 'data');
  rmSync(data, { recursive: true, force: true });
  const node = await startNode(data, join(dir, 'make.log'), []);
  try {
    if ((await firstAck(node.url, 30_000)) === null) throw new Error('the node took no write within 30 s');
    const writer = raftkvWriter({ members: [{ id: 'n1', url: node.url }], leaderIndex: 0, routing: 'leader', concurrency: 256, keys, value: Buffer.alloc(256, 0x61) });
    try {
      const fill = await runFill({ concurrency: 256, count: keys, write: (c, n) => writer.write(c, 0, n), onStep: (s) => console.log(`${s.done} keys, ${s.opsPerSecond.toFixed(0)} writes/s`) });
      console.log(`loaded ${keys} keys in ${fill.seconds.toFixed(1)} s, ${fill.errors} failed attempts`);
    } finally {
      writer.close();
    }
  } finally {
    await kill9(node.child);
  }
  // Kept apart: every timed run starts a copy at the same path (the data dir's lock names it).
  rmSync(join(dir, 'base'), { recursive: true, force: true });
  execFileSync('mv', [data, join(dir, 'base')]);
  // Its lock names the data dir's inode; a copy is another directory, and no process holds it.
  rmSync(join(dir, 'base', 'raftkv.lock'), { force: true });
}

async function time(dir: string, runs: number, profile: boolean, nodeFlags: readonly string[]): Promise<void> {
  for (let r = 1; r <= runs; r++) {
    const copy = join(dir, 'data');
    rmSync(copy, { recursive: true, force: true });
    execFileSync('cp', ['-a', join(dir, 'base'), copy]);
    execFileSync('sync');
    const log = join(dir, `run-${r}.log`);
    rmSync(log, { force: true });
    const prof = profile ? ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', `run-${r}.cpuprofile`] : [];
    const node = await startNode(copy, log, [...nodeFlags, ...prof]);
    const ack = await firstAck(node.url, 60_000);
    const cpuMs = processCpuMs(node.child.pid!);
    if (profile) {
      // A clean stop writes the profile.
      const exited = new Promise((res) => node.child.once('exit', res));
      node.child.kill('SIGTERM');
      await exited;
    } else {
      await kill9(node.child);
    }
    const phases = startupPhases('n1', log, node.spawnedAt).map((p) => `${p.phase} ${p.ms}`).join(', ');
    console.log(`run ${r}: ${phases}, first ack ${ack === null ? 'none' : ack - node.spawnedAt} ms, CPU by then ${cpuMs} ms`);
  }
  rmSync(join(dir, 'data'), { recursive: true, force: true });
}

const dir = flag('make') ?? flag('time');
if (dir === undefined) throw new Error('usage: startup.js --make DIR [--keys N] | --time DIR [--runs N] [--cpu-prof]');
if (flag('make') !== undefined) await make(dir, Number(flag('keys') ?? 1_000_000));
else {
  if (!existsSync(join(dir, 'base'))) throw new Error(`no data dir in ${dir}: run --make first`);
  await time(dir, Number(flag('runs') ?? 3), process.argv.includes('--cpu-prof'), (flag('node-flags') ?? '').split(' ').filter((f) => f !== ''));
}
