// The short CI version of the fault harness (docs/faults.md): five runs of real raftkv clusters
// under different fault mixes, one of them with TLS on both ports and bearer-token auth
// (`--secure`), each checked for linearizability (register workload) and for lost or phantom
// elements (set workload). Netns mode when running as root with `ip netns`
// (partitions included), else loopback. Each run is a child process bounded in time; its
// namespaces, processes and data are removed by the harness on every exit path.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FaultRunSummary } from '../../src/faults/index.js';
import { canUseNetns, listNamespaces } from '../../src/faults/index.js';

const MAIN = fileURLToPath(new URL('../../src/faults/main.js', import.meta.url));
const SECONDS = Number(process.env['RAFTKV_FAULTS_SECONDS'] ?? 20);
const isNetns = canUseNetns();

interface Case {
  readonly mix: string;
  readonly seed: number;
  /** At least this many faults must have been applied in the run. */
  readonly minFaults: number;
  /** `--secure`: HTTPS, mutual TLS between peers and --auth-file on every node. */
  readonly secure?: boolean;
  /** `--snapshot-entries`: members snapshot every N entries, so snapshots are written, saved and sent under the faults. */
  readonly snapshotEntries?: number;
}

// With namespaces: partitions alone, crashes alone, pauses with membership changes, and all of
// it combined. On loopback the partition run becomes a second mixed run. The secure run is a
// mixed one: it is the mix in which TLS and tokens meet every path at once (restarts that
// re-handshake with their peers, joiners that present the join token over https, removals and
// transfers through the admin API, requests forwarded under partitions).
const CASES: readonly Case[] = [
  // Partitions with frequent snapshots: a member cut off comes back behind the compacted log and
  // is sent a snapshot (seed 101, 20 s: 49 taken, 1 installed).
  isNetns ? { mix: 'partition', seed: 101, minFaults: 3, snapshotEntries: 300 } : { mix: 'mixed', seed: 105, minFaults: 3 },
  // Kills while snapshots are written into their files (a temporary file left), saved, installed.
  { mix: 'crash', seed: 102, minFaults: 3, snapshotEntries: 300 },
  { mix: 'pause,membership', seed: 103, minFaults: 3 },
  { mix: 'mixed', seed: 104, minFaults: 3 },
  { mix: 'mixed', seed: 111, minFaults: 3, secure: true },
];

function runHarness(args: readonly string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    // SIGTERM first: the harness (and its netns supervisor) cleans up on it.
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe(`fault runs (${isNetns ? 'netns' : 'loopback'}, ${SECONDS} s each)`, { concurrency: 2 }, () => {
  for (const c of CASES) {
    test(`mix ${c.mix}${c.secure === true ? ' with TLS and auth' : ''}${c.snapshotEntries !== undefined ? ` snapshotting every ${c.snapshotEntries} entries` : ''} (seed ${c.seed}): linearizable, no acknowledged add lost, no phantom, recovers`, { timeout: (SECONDS + 120) * 1000 }, async (t) => {
      const out = mkdtempSync(join(tmpdir(), 'raftkv-faults-test-'));
      let passed = false;
      try {
        const args = ['--time', String(SECONDS), '--seed', String(c.seed), '--mix', c.mix, '--out', out, '--network', isNetns ? 'netns' : 'loopback', ...(c.secure === true ? ['--secure'] : []), ...(c.snapshotEntries !== undefined ? ['--snapshot-entries', String(c.snapshotEntries)] : [])];
        const run = await runHarness(args, (SECONDS + 110) * 1000);
        const context = `npm run faults -- ${args.join(' ')}\nexit ${run.code}\n${run.stdout}\n${run.stderr.slice(-2000)}`;
        t.diagnostic(run.stdout.split('\n')[0] ?? '');
        assert.equal(run.code, 0, context);
        const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as FaultRunSummary;
        assert.equal(s.verdict, 'valid', context);
        assert.equal(s.secure, c.secure === true, context);
        assert.equal(s.snapshotEntries, c.snapshotEntries ?? null, context);
        if (c.snapshotEntries !== undefined) assert.ok(s.snapshots.taken > 0, `snapshots were taken (${s.snapshots.taken} since the members' last starts)\n${context}`);
        assert.equal(s.authRefusals.count, 0, context);
        assert.deepEqual(s.reasons, [], context);
        assert.equal(s.check.outcome, 'linearizable', context);
        assert.equal(s.recovery, 'ok', context);
        assert.equal(s.convergence, 'ok', context);
        assert.equal(s.set.lost, 0, context);
        assert.equal(s.set.phantom, 0, context);
        // A run that did nothing proves nothing: demand real traffic and real faults.
        assert.ok(s.faults.total >= c.minFaults, `only ${s.faults.total} faults\n${context}`);
        assert.ok(s.ops.ok >= 20 * SECONDS, `only ${s.ops.ok} register ops answered\n${context}`);
        assert.ok(s.ops.reads > 0 && s.ops.writes > 0 && s.ops.cas > 0, context);
        assert.ok(s.ops.casOk > 0, `no CAS ever succeeded\n${context}`);
        // Writes sent again with their Idempotency-Key answered as the first time, and there were some.
        assert.equal(s.repeats.mismatched, 0, context);
        // (~1.5 a second in a 20 s CI run on a busy 2-core VM; a quarter of that is demanded)
        assert.ok(s.repeats.answered >= SECONDS / 4, `only ${s.repeats.answered} repeated writes answered\n${context}`);
        assert.ok(s.set.acked >= 5 * SECONDS, `only ${s.set.acked} adds acknowledged\n${context}`);
        assert.ok(s.set.present >= s.set.acked, context);
        // The coordination workloads ran too: locks granted with fenced writes, leases kept, watches fed.
        assert.ok(s.locks.grants >= SECONDS && s.locks.fenced > 0, `only ${s.locks.grants} lock grants, ${s.locks.fenced} fenced writes\n${context}`);
        assert.ok(s.leases.kept >= 2 && s.leases.reads > 0, context);
        // (272–534 watched writes in a 20 s CI run; 90 once, in a run slowed to 60 % of the others'
        // register ops: the floor asks that the workload ran, not how fast)
        assert.ok(s.watch.acked >= 3 * SECONDS && s.watch.events >= s.watch.acked * s.watch.watchers, `watch: ${JSON.stringify(s.watch)}\n${context}`);
        if (c.mix === 'partition') {
          const partitions = ['isolate-leader', 'halves', 'bridge', 'ring', 'one-way'].reduce((n, k) => n + (s.faults.byKind[k] ?? 0), 0);
          assert.ok(partitions >= c.minFaults, context);
        }
        passed = true;
      } finally {
        // A failed run keeps its history, fault log and report for whoever reads the failure.
        if (passed) rmSync(out, { recursive: true, force: true });
        else t.diagnostic(`kept for inspection: ${out}`);
      }
    });
  }

  test('no namespace of these runs is left behind', { skip: !isNetns }, () => {
    // Runs started by this process are all supervised by children that have exited by now.
    const leftovers = listNamespaces().filter((n) => /^rkvf\d+-/.test(n) && !isSupervisorAlive(n));
    assert.deepEqual(leftovers, []);
  });
});

function isSupervisorAlive(ns: string): boolean {
  const pid = Number(/^rkvf(\d+)-/.exec(ns)?.[1]);
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
