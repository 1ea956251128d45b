// The scale benchmark (bench/scale.ts) end to end against raftkv, in a tiny configuration: every
// phase must print numbers that make sense (a load of every key, RSS and heap of every member,
// a restart that reaches an acknowledged write, a stability run that wrote), with no errors, and
// leave no process or temp dir behind, also when interrupted; restart A/Bs alternate a build
// (--other-main) or the members' environment (--other-env). Plus the arithmetic of the fill and
// of the first/last-minute ratio.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runFill } from '../../bench/lib/fill.js';
import type { LoadResult } from '../../bench/lib/load.js';
import { summarizeStability } from '../../bench/lib/scale-report.js';
import { startupPhases } from '../../bench/lib/raftkv-startup.js';
import { maxOf, median } from '../../bench/lib/stats.js';

const SCALE = fileURLToPath(new URL('../../bench/scale.js', import.meta.url));
const TINY = ['--systems', 'raftkv', '--keys', '2000', '--clients', '64', '--settle-seconds', '1', '--stability-seconds', '3', '--window-seconds', '1', '--timeout', '90'];

interface Run {
  readonly code: number | null;
  readonly output: string;
}

/** Runs the bench; `interruptOn`: SIGINT once the output matches it. */
function runScale(args: readonly string[], interruptOn?: RegExp): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('NODE_TEST') || k.startsWith('BENCH_') || k.startsWith('SCALE_')) delete env[k];
  const child = spawn(process.execPath, [SCALE, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let isInterrupted = false;
  const collect = (d: Buffer): void => {
    output += d.toString();
    if (interruptOn !== undefined && !isInterrupted && interruptOn.test(output)) {
      isInterrupted = true;
      child.kill('SIGINT');
    }
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}

/** `metric=NAME system=S k=v … value=X` lines, parsed. */
function metricLines(output: string): { metric: string; labels: Record<string, string>; value: number }[] {
  return output.split('\n').filter((l) => l.startsWith('metric=')).map((line) => {
    const labels: Record<string, string> = {};
    for (const pair of line.split(' ')) {
      const eq = pair.indexOf('=');
      labels[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    return { metric: labels['metric']!, labels, value: Number(labels['value']) };
  });
}

/** Processes with an argument under `dir` (a node's --data-dir, an etcd's). */
function processesUnder(dir: string): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.startsWith(dir));
    } catch {
      return false;
    }
  });
}

/** The data dirs the run printed are gone, and no process runs on them. */
function assertLeftNothing(run: Run): void {
  const dirs = [...run.output.matchAll(/data dirs (.+)$/gm)].flatMap((m) => m[1]!.split(', '));
  assert.ok(dirs.length >= 3, `the run named no data dirs:\n${run.output}`);
  for (const dir of dirs) {
    assert.ok(!existsSync(dir), `${dir} was left behind`);
    assert.ok(!existsSync(dirname(dir)), `${dirname(dir)} was left behind`);
    assert.deepEqual(processesUnder(dir), [], `processes left running on ${dir}`);
  }
}

test('a tiny run against raftkv: every phase prints sane numbers, no errors, nothing left behind', { timeout: 120_000 }, async () => {
  const run = await runScale(TINY);
  assert.equal(run.code, 0, `exit ${run.code}:\n${run.output}`);
  assertLeftNothing(run);
  const metrics = metricLines(run.output);
  const one = (metric: string): { labels: Record<string, string>; value: number } => {
    const found = metrics.filter((m) => m.metric === metric);
    assert.equal(found.length, 1, `${metric}: ${found.length} lines`);
    return found[0]!;
  };
  const all = (metric: string): number[] => metrics.filter((m) => m.metric === metric).map((m) => m.value);

  assert.ok(one('load_seconds').value > 0);
  assert.equal(one('load_errors').value, 0);
  const steps = metrics.filter((m) => m.metric === 'load_ops_per_second');
  assert.deepEqual(steps.map((s) => Number(s.labels['step'])), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(steps.at(-1)!.labels['done'], '2000', 'the load ends with every key written');
  assert.ok(steps.every((s) => s.value > 0));

  for (const phase of ['after-load', 'after-settle', 'after-stability']) {
    for (const metric of ['rss_mb', 'peak_rss_mb', 'heap_used_mb', 'data_dir_mb']) {
      const values = metrics.filter((m) => m.metric === metric && m.labels['phase'] === phase);
      assert.deepEqual(values.map((m) => m.labels['member']), ['n1', 'n2', 'n3'], `${metric} ${phase}`);
      assert.ok(values.every((m) => m.value > 0), `${metric} ${phase}: ${values.map((m) => m.value).join(', ')}`);
    }
    const rss = metrics.filter((m) => m.metric === 'rss_mb' && m.labels['phase'] === phase);
    const heap = metrics.filter((m) => m.metric === 'heap_used_mb' && m.labels['phase'] === phase);
    rss.forEach((r, i) => assert.ok(heap[i]!.value < r.value, `${r.labels['member']} ${phase}: heap ${heap[i]!.value} MB is not below RSS ${r.value} MB`));
  }

  const ack = one('restart_first_ack_ms');
  assert.ok(ack.value > 0 && ack.value < 60_000, `first ack ${ack.value} ms`);
  assert.match(ack.labels['member']!, /^n[123]$/);
  for (const metric of ['restart_up_ms', 'restart_ready_ms']) {
    const values = all(metric);
    assert.equal(values.length, 3, metric);
    assert.ok(values.every((v) => v > 0 && v < 60_000), `${metric}: ${values.join(', ')}`);
  }
  // Each node's log names its start: serving, and a role.
  const phases = metrics.filter((m) => m.metric === 'restart_phase_ms');
  for (const member of ['n1', 'n2', 'n3']) assert.ok(phases.some((p) => p.labels['member'] === member && p.labels['phase'] === 'serving'), `${member} logged no serving`);
  assert.ok(phases.some((p) => p.labels['phase'] === 'leader'), 'no node logged becoming leader');
  // The load's 2,000 writes are a tail every member replays (no snapshot is due): the earliest
  // end of a replay is reported beside the first write.
  const replays = phases.filter((p) => p.labels['phase'] === 'replayed');
  assert.equal(replays.length, 3, 'each member logged the end of its replay');
  const earliest = one('restart_earliest_replayed_ms');
  assert.equal(earliest.value, Math.min(...replays.map((p) => p.value)));
  assert.equal(earliest.labels['member'], replays.find((p) => p.value === earliest.value)!.labels['member']);
  assert.match(run.output, /the earliest replay ended at \d+ ms \(n[123]\)/);

  const windows = all('stability_ops_per_second');
  assert.equal(windows.length, 3);
  assert.ok(windows.reduce((a, b) => a + b, 0) > 0, 'the stability phase wrote nothing');
  assert.equal(one('stability_errors').value, 0);
  const rises = metrics.filter((m) => m.metric === 'term_rises');
  assert.deepEqual(rises.map((m) => m.labels['phase']), ['load', 'stability']);
  assert.ok(rises.every((m) => m.value >= 0), `term rises: ${rises.map((m) => m.value).join(', ')}`);
  assert.ok(Number.isFinite(one('stability_ratio').value));
  // RSS sampled through the stability run: each member, at least one sample, median ≤ max.
  for (const [i, median] of metrics.filter((m) => m.metric === 'stability_rss_median_mb').entries()) {
    const max = metrics.filter((m) => m.metric === 'stability_rss_max_mb')[i]!;
    assert.equal(median.labels['member'], `n${i + 1}`);
    assert.equal(max.labels['member'], `n${i + 1}`);
    assert.ok(Number(median.labels['samples']) >= 1, `${median.labels['member']}: ${median.labels['samples']} samples`);
    assert.ok(median.value > 0 && median.value <= max.value, `${median.labels['member']}: median ${median.value}, max ${max.value}`);
  }
  assert.equal(metrics.filter((m) => m.metric === 'stability_rss_median_mb').length, 3, 'an RSS median per member');
  assert.match(run.output, /\|\s+RSS MB during stability, max \|\s+\d+ \/ \d+ \/ \d+ \|/, 'the results table');
  assert.match(run.output, /\|\s+restart: first ack ms \|\s+\d+ \|/, 'the results table');
  assert.doesNotMatch(run.output, /FAILED|bench:/);
});

test('--restarts 3 --other-main: three restarts from one copy of the data dirs, alternating builds, each reaching a write', { timeout: 150_000 }, async () => {
  // The "other" build is this one under another path: what is checked is the alternation, the
  // copy put back before each later restart, and the report, not a difference between builds.
  const other = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const args = [...TINY.filter((_, i, a) => a[i] !== '--stability-seconds' && a[i - 1] !== '--stability-seconds'), '--stability-seconds', '0', '--restarts', '3', '--other-main', other];
  const run = await runScale(args);
  assert.equal(run.code, 0, `exit ${run.code}:\n${run.output}`);
  assertLeftNothing(run);
  const dirs = [...run.output.matchAll(/data dirs (.+)$/gm)].flatMap((m) => m[1]!.split(', '));
  for (const dir of dirs) assert.ok(!existsSync(`${dir}.kept`), `${dir}.kept was left behind`);
  assert.deepEqual([...run.output.matchAll(/restart (\d) of 3, (this build|the build at .+)$/gm)].map((m) => `${m[1]} ${m[2] === 'this build' ? 'this' : 'other'}`), ['1 this', '2 other', '3 this']);
  const acks = metricLines(run.output).filter((m) => m.metric === 'restart_first_ack_ms').map((m) => m.value);
  assert.equal(acks.length, 3);
  assert.ok(acks.every((v) => v > 0 && v < 60_000), `first acks ${acks.join(', ')}`);
  // Restart 1 is left out of the medians: one later restart per build here.
  const medians = metricLines(run.output).filter((m) => m.metric === 'restart_first_ack_median_ms');
  assert.deepEqual(medians.map((m) => `${m.labels['build']} ${m.labels['restarts']}`), ['this 1', 'other 1']);
  assert.equal(medians[0]!.value, acks[2]);
  assert.equal(medians[1]!.value, acks[1]);
  assert.doesNotMatch(run.output, /FAILED|bench:/);
});

test('--restarts 3 --other-env: the members of the second restart, and only they, start with the variables given', { timeout: 150_000 }, async () => {
  // An observable variable: NODE_OPTIONS preloading a module that notes each process it starts in.
  const dir = mkdtempSync(join(tmpdir(), 'scale-other-env-'));
  try {
    const marks = join(dir, 'marks');
    const marker = join(dir, 'mark.mjs');
    writeFileSync(marker, `import { appendFileSync } from 'node:fs';\nappendFileSync(${JSON.stringify(marks)}, process.pid + '\\n');\n`);
    const args = [...TINY.filter((_, i, a) => a[i] !== '--stability-seconds' && a[i - 1] !== '--stability-seconds'), '--stability-seconds', '0', '--restarts', '3', '--other-env', `NODE_OPTIONS=--import=${pathToFileURL(marker).href},RAFTKV_UNUSED=1`];
    const run = await runScale(args);
    assert.equal(run.code, 0, `exit ${run.code}:\n${run.output}`);
    assertLeftNothing(run);
    assert.deepEqual(
      [...run.output.matchAll(/restart (\d) of 3, (this build|with .+)$/gm)].map((m) => `${m[1]} ${m[2]}`),
      ['1 this build', `2 with NODE_OPTIONS=--import=${pathToFileURL(marker).href} RAFTKV_UNUSED=1`, '3 this build'],
    );
    // Three members started once with it: restart 2. The load's start and restarts 1 and 3 had none.
    const started = readFileSync(marks, 'utf8').trim().split('\n');
    assert.equal(started.length, 3, `processes that started with the variable: ${started.join(', ')}`);
    const medians = metricLines(run.output).filter((m) => m.metric === 'restart_first_ack_median_ms');
    assert.deepEqual(medians.map((m) => `${m.labels['build']} ${m.labels['restarts']}`), ['this 1', 'other 1']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--other-env that is not NAME=VALUE[,…] is refused in one line before anything starts', { timeout: 30_000 }, async () => {
  const run = await runScale([...TINY, '--restarts', '3', '--other-env', 'GLIBC_TUNABLES=x,oops']);
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /^bench: --other-env GLIBC_TUNABLES=x,oops: expected NAME=VALUE\[,NAME=VALUE…\], got "oops"/m);
  assert.doesNotMatch(run.output, /data dirs/, 'nothing was started');
});

test('--other-main naming no file is refused in one line before anything starts', { timeout: 30_000 }, async () => {
  const run = await runScale([...TINY, '--restarts', '3', '--other-main', '/nonexistent/dist/src/cli/main.js']);
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /^bench: --other-main \/nonexistent\/dist\/src\/cli\/main\.js: no such file/m);
  assert.doesNotMatch(run.output, /data dirs/, 'nothing was started');
});

test('Ctrl-C during the load stops every node and removes every temp dir', { timeout: 60_000 }, async () => {
  const run = await runScale(TINY.map((a) => (a === '2000' ? '200000' : a)), /raftkv: loading/);
  assert.equal(run.code, 130, run.output);
  assert.match(run.output, /interrupted: stopping every node and removing temp dirs/);
  assertLeftNothing(run);
});

test('a fill writes every item once, retries a failed one, and reports each tenth', async () => {
  const written: number[] = [];
  let failures = 0;
  const r = await runFill({
    concurrency: 4,
    count: 95,
    steps: 10,
    write: async (_client, n) => {
      if (n === 7 && failures++ < 2) throw new Error('refused');
      await new Promise((resolve) => setImmediate(resolve));
      written.push(n);
    },
  });
  assert.deepEqual([...written].sort((a, b) => a - b), Array.from({ length: 95 }, (_, n) => n));
  assert.equal(r.errors, 2);
  assert.equal(r.firstError, 'refused');
  assert.deepEqual(r.steps.map((s) => s.done), [10, 19, 29, 38, 48, 57, 67, 76, 86, 95]);
  await assert.rejects(runFill({ concurrency: 2, count: 5, maxAttempts: 3, write: async () => Promise.reject(new Error('down')) }), /failed 3 times; last: down/);
});

test('the median of RSS samples and of restarts is nearest-rank (the lower middle of an even count, a value that was seen), the max the largest; NaN for none', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2);
  assert.equal(median([7]), 7);
  assert.ok(Number.isNaN(median([])));
  assert.equal(maxOf([4, 9, 3]), 9);
  assert.equal(maxOf([-2, -5]), -2);
  assert.ok(Number.isNaN(maxOf([])));
});

test('stability compares the first and the last minute, each at most half the run, per window length', () => {
  const result = (windowOps: number[]): LoadResult => ({
    concurrency: 256, ops: windowOps.reduce((a, b) => a + b, 0), seconds: 0, opsPerSecond: 0, p50Ms: 1, p99Ms: 2, maxMs: 3,
    errors: 0, firstError: null, misrouted: 0, completed: 0, clientCpuUsPerOp: 0, windowOps,
  });
  // 5 minutes in 10 s windows: 6 windows each end.
  const long = summarizeStability(result([...Array<number>(6).fill(1000), ...Array<number>(18).fill(700), ...Array<number>(6).fill(500)]), 10_000, 300_000);
  assert.equal(long.comparedWindows, 6);
  assert.equal(long.firstRate, 100);
  assert.equal(long.lastRate, 50);
  assert.equal(long.ratio, 0.5);
  // 25 s in 10 s windows: one window each end, the last one 5 s long.
  const short = summarizeStability(result([1000, 900, 400]), 10_000, 25_000);
  assert.equal(short.comparedWindows, 1);
  assert.deepEqual(short.rates, [100, 90, 80]);
  assert.equal(short.ratio, 0.8);
});

test('a member\'s restart phases come from its latest start\'s log lines, the core with the log it replays, the end of that replay, and the CPU used by each where the line says', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-startup-phases-'));
  try {
    const file = join(dir, 'n1.log');
    const at = (ms: number): string => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ms)).toISOString();
    writeFileSync(file, [
      JSON.stringify({ time: at(100), msg: 'core started', snapshotIndex: 1, lastIndex: 9, commitIndex: 9 }),
      '--- harness: n1 exited (SIGKILL)',
      'not json',
      JSON.stringify({ time: at(300), msg: 'transport listening' }),
      JSON.stringify({ time: at(900), msg: 'core started', snapshotIndex: 200_000, lastIndex: 293_700, commitIndex: 293_650, cpuMs: 610 }),
      JSON.stringify({ time: at(1_400), msg: 'state machine loaded' }),
      JSON.stringify({ time: at(1_410), msg: 'serving', cpuMs: 1_180 }),
      JSON.stringify({ time: at(1_500), msg: 'role changed', role: 'leader' }),
      JSON.stringify({ time: at(1_600), msg: 'role changed', role: 'leader' }),
      JSON.stringify({ time: at(2_300), msg: 'replayed', index: 293_650, ms: 2_250, cpuMs: 'lots' }),
    ].join('\n'));
    const phases = startupPhases('n1', file, Date.UTC(2026, 0, 1));
    assert.deepEqual(phases, [
      { member: 'n1', phase: 'listening', ms: 300 },
      { member: 'n1', phase: 'core', ms: 900, detail: 'tail 93,650', cpuMs: 610 },
      { member: 'n1', phase: 'loaded', ms: 1_400 },
      { member: 'n1', phase: 'serving', ms: 1_410, cpuMs: 1_180 },
      { member: 'n1', phase: 'leader', ms: 1_500 },
      { member: 'n1', phase: 'replayed', ms: 2_300 },
    ], 'the CPU a line carries, where it is a number');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
