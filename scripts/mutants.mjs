// npm run mutants — proves the tests have teeth. Each test/mutants/*.patch breaks one rule on
// purpose. For each: copy the working tree to a scratch folder, apply the patch, build, run the
// tests its header names, and expect them to FAIL. A mutant the tests do not catch fails this
// script. The patches never touch the product: they exist only in the scratch copies.
//
// Patch header (text before the first `diff --git` line):
//   Mutant: what the patch breaks
//   Tests: dist/test/raft/ dist/test/sim/      (paths under the scratch copy, run by node --test)
//   Command: npm run sim -- --seeds 50         (optional, instead of Tests: a command that must fail)
//   Faults: crash partition                    (optional: fault mixes of the fault harness, docs/faults.md;
//                                               each runs `npm run faults -- --mix M` in the scratch copy
//                                               and catches the mutant when it does not exit 0)
//   Faults-Time: 30                            (optional: seconds per fault run, default 30)
//   Faults-Seed: 1                             (optional: seed of every fault run, default 1)
// A patch with Faults: and neither Tests: nor Command: runs the fault mixes only. Every listed mix
// runs (so the report says which mixes catch it) unless --first-catch is given.
//
// Flags: names (substrings) select patches; --no-faults skips fault runs; --faults-time N and
// --faults-seed N override the headers; --first-catch stops at the first mix that catches.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const argv = process.argv.slice(2);
const flagValue = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const noFaults = argv.includes('--no-faults');
const firstCatch = argv.includes('--first-catch');
const faultsTimeFlag = flagValue('--faults-time');
const faultsSeedFlag = flagValue('--faults-seed');
const only = argv.filter((a, i) => !a.startsWith('--') && !['--faults-time', '--faults-seed'].includes(argv[i - 1]));
const dir = join(root, 'test', 'mutants');
const patches = readdirSync(dir).filter((f) => f.endsWith('.patch') && (only.length === 0 || only.some((o) => f.includes(o)))).sort();
if (patches.length === 0) {
  console.error('no mutants found in test/mutants/');
  process.exit(1);
}
const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
  .split('\n')
  .filter((f) => f !== '' && !f.startsWith('node_modules/'));

let survived = 0;
const rows = [];
for (const name of patches) {
  const text = readFileSync(join(dir, name), 'utf8');
  const header = text.split(/^diff --git/m)[0];
  const what = /^Mutant:\s*(.+)$/m.exec(header)?.[1] ?? name;
  const testsHeader = /^Tests:\s*(.+)$/m.exec(header)?.[1];
  const command = /^Command:\s*(.+)$/m.exec(header)?.[1]?.trim();
  const mixes = (/^Faults:\s*(.+)$/m.exec(header)?.[1] ?? '').trim().split(/\s+/).filter((m) => m !== '');
  const faultsTime = Number(faultsTimeFlag ?? /^Faults-Time:\s*(\d+)/m.exec(header)?.[1] ?? 30);
  const faultsSeed = Number(faultsSeedFlag ?? /^Faults-Seed:\s*(\d+)/m.exec(header)?.[1] ?? 1);
  const hasTests = testsHeader !== undefined || command !== undefined || mixes.length === 0;
  const tests = (testsHeader ?? 'dist/test/').trim().split(/\s+/);
  if (noFaults && !hasTests) {
    console.log(`skipped  ${name}: fault runs only, and --no-faults was given`);
    continue;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'raftkv-mutant-'));
  const started = Date.now();
  try {
    for (const f of files) {
      mkdirSync(dirname(join(scratch, f)), { recursive: true });
      cpSync(join(root, f), join(scratch, f));
    }
    symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'), 'dir');
    const applied = spawnSync('git', ['apply', '--whitespace=nowarn', join(dir, name)], { cwd: scratch, encoding: 'utf8' });
    if (applied.status !== 0) throw new Error(`patch does not apply: ${applied.stderr.trim()}`);
    const built = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], { cwd: scratch, encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`mutant does not compile:\n${built.stdout}`);
    const lines = [];
    let caught = false;
    if (hasTests) {
      const run = command !== undefined
        ? spawnSync('sh', ['-c', command], { cwd: scratch, encoding: 'utf8', timeout: 15 * 60_000 })
        : spawnSync(process.execPath, ['--test', ...tests], { cwd: scratch, encoding: 'utf8', timeout: 15 * 60_000 });
      const testsCaught = run.status !== 0;
      caught ||= testsCaught;
      const failing = (run.stdout ?? '').split('\n').filter((l) => /^not ok|^# fail|failedSeeds/.test(l.trim())).slice(0, 4).map((l) => l.trim());
      lines.push(`tests ${testsCaught ? 'caught it' : 'passed'} (${((Date.now() - started) / 1000).toFixed(1)}s)${failing.length ? ': ' + failing.join(' | ') : ''}`);
    }
    for (const mix of noFaults ? [] : mixes) {
      if (caught && firstCatch) break;
      const runStarted = Date.now();
      const out = join(scratch, 'faults-out', mix);
      const run = spawnSync(process.execPath, ['dist/src/faults/main.js', '--mix', mix, '--time', String(faultsTime), '--seed', String(faultsSeed), '--out', out], {
        cwd: scratch,
        encoding: 'utf8',
        timeout: (faultsTime + 400) * 1000,
        killSignal: 'SIGTERM',
      });
      const mixCaught = run.status !== 0;
      caught ||= mixCaught;
      let detail = (run.stdout ?? '').split('\n')[0] || (run.stderr ?? '').trim().split('\n').slice(-1)[0] || `exit ${run.status}`;
      try {
        const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
        const first = summary.firstAnomalyMs === null ? '' : `; first bad op at ${(summary.firstAnomalyMs / 1000).toFixed(1)}s of run time`;
        detail = `${summary.verdict}: ${summary.reasons.join(' | ') || 'no violation'} [${summary.ops.total} ops, ${summary.faults.total} faults${first}]`;
      } catch {
        // No summary: the harness failed before the end; the first line says why.
      }
      lines.push(`faults --mix ${mix} --time ${faultsTime} --seed ${faultsSeed}: ${mixCaught ? 'CAUGHT' : 'passed'} in ${((Date.now() - runStarted) / 1000).toFixed(1)}s wall: ${detail.slice(0, 600)}`);
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (!caught) survived++;
    rows.push(`${caught ? 'caught  ' : 'SURVIVED'} ${name} (${seconds}s): ${what}${lines.length ? '\n           ' + lines.join('\n           ') : ''}`);
  } catch (err) {
    survived++;
    rows.push(`BROKEN   ${name}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(rows.at(-1));
}
console.log(`mutants: ${patches.length - survived} caught, ${survived} survived or broken, of ${patches.length}`);
process.exit(survived === 0 ? 0 : 1);
