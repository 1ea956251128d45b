// Every mutant patch (test/mutants/*.patch, run by `npm run mutants`) still applies to the tree:
// a refactor that moves the code a mutant breaks must regenerate the patch, or the mutant would
// silently stop proving anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const dir = join(root, 'test', 'mutants');

test('every mutant patch applies to the current tree', () => {
  const patches = readdirSync(dir).filter((f) => f.endsWith('.patch'));
  assert.ok(patches.length >= 40, `only ${patches.length} mutant patches found in ${dir}`);
  const broken: string[] = [];
  for (const p of patches) {
    const r = spawnSync('git', ['apply', '--check', join(dir, p)], { cwd: root, encoding: 'utf8' });
    if (r.error !== undefined) throw r.error;
    if (r.status !== 0) broken.push(`${p}: ${r.stderr.trim().split('\n')[0]}`);
  }
  assert.deepEqual(broken, [], 'regenerate these patches against the current code');
});
