// npm run mutants — proves the tests have teeth. Each test/mutants/*.patch breaks one rule on
// purpose. For each: copy the working tree to a scratch folder, apply the patch, build, run the
// tests its header names, and expect them to FAIL. A mutant the tests do not catch fails this
// script. The patches never touch the product: they exist only in the scratch copies.
//
// Patch header (text before the first `diff --git` line):
//   Mutant: what the patch breaks
//   Tests: dist/test/raft/ dist/test/sim/      (paths under the scratch copy, run by node --test)
//   Command: npm run sim -- --seeds 50         (optional, instead of Tests: a command that must fail)
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);
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
  const tests = (/^Tests:\s*(.+)$/m.exec(header)?.[1] ?? 'dist/test/').trim().split(/\s+/);
  const command = /^Command:\s*(.+)$/m.exec(header)?.[1]?.trim();
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
    const run = command !== undefined
      ? spawnSync('sh', ['-c', command], { cwd: scratch, encoding: 'utf8', timeout: 15 * 60_000 })
      : spawnSync(process.execPath, ['--test', ...tests], { cwd: scratch, encoding: 'utf8', timeout: 15 * 60_000 });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const caught = run.status !== 0;
    if (!caught) survived++;
    const failing = (run.stdout ?? '').split('\n').filter((l) => /^not ok|^# fail|failedSeeds/.test(l.trim())).slice(0, 4).map((l) => l.trim());
    rows.push(`${caught ? 'caught  ' : 'SURVIVED'} ${name} (${seconds}s): ${what}${failing.length ? '\n           ' + failing.join('\n           ') : ''}`);
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
