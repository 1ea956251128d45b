// The `raftkv` entry (src/cli/main.ts) runs the bundle `npm run build` writes only while no tsc
// build came after it: a bundle older than dist/.tsbuildinfo holds old code, and the modules tsc
// wrote run instead. Checked on a copy of the entry beside stand-ins that say which one ran, and
// on the real build: the bundle there is what `npm run build` (CI's) just wrote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MAIN_JS } from '../../src/harness/index.js';

const CLI_DIR = fileURLToPath(new URL('../../src/cli/', import.meta.url));

function ran(dir: string): string {
  const r = spawnSync(process.execPath, [join(dir, 'dist', 'src', 'cli', 'main.js')], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test('the entry runs the bundle unless a tsc build is newer, or there is none', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-entry-'));
  try {
    const cli = join(dir, 'dist', 'src', 'cli');
    mkdirSync(cli, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    copyFileSync(join(CLI_DIR, 'main.js'), join(cli, 'main.js'));
    writeFileSync(join(cli, 'cli.js'), "console.log('tsc');\n");
    const bundle = join(cli, 'cli.bundle.js');
    const buildInfo = join(dir, 'dist', '.tsbuildinfo');
    const at = (path: string, seconds: number): void => utimesSync(path, seconds, seconds);
    assert.equal(ran(dir), 'tsc', 'no bundle: the modules tsc wrote');
    writeFileSync(bundle, "console.log('bundle');\n");
    assert.equal(ran(dir), 'bundle', 'no .tsbuildinfo (an installed package): the bundle');
    writeFileSync(buildInfo, '{}');
    at(buildInfo, 1_000_000);
    at(bundle, 1_000_010);
    assert.equal(ran(dir), 'bundle', 'the bundle is newer than the last tsc build');
    at(bundle, 1_000_000);
    assert.equal(ran(dir), 'bundle', 'as new');
    at(buildInfo, 1_000_020);
    assert.equal(ran(dir), 'tsc', 'a tsc build came after the bundle: it may hold old code');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('npm run build leaves a bundle the entry runs: raftkv --version answers from it', (t) => {
  const bundle = join(CLI_DIR, 'cli.bundle.js');
  assert.ok(existsSync(bundle), 'npm run build wrote dist/src/cli/cli.bundle.js');
  const buildInfo = fileURLToPath(new URL('../../.tsbuildinfo', import.meta.url));
  // Only a build (as CI's) leaves the bundle newest; a tsc run while working makes it stale, and
  // the first test covers that case.
  if (statSync(bundle).mtimeMs < statSync(buildInfo).mtimeMs) {
    t.skip('the bundle is older than the last tsc build (npm run build writes a new one)');
    return;
  }
  // What ran, by the files Node's loader loads: a module hook writes each URL to stderr. (A CPU
  // profile named them too, but a loaded CI machine could take no sample inside the bundle.)
  const hooks = mkdtempSync(join(tmpdir(), 'raftkv-entry-hooks-'));
  try {
    writeFileSync(join(hooks, 'hooks.mjs'), "import { writeSync } from 'node:fs';\nexport async function load(url, context, next) {\n  if (url.startsWith('file:')) writeSync(2, `loaded ${url}\\n`);\n  return next(url, context);\n}\n");
    writeFileSync(join(hooks, 'register.mjs'), "import { register } from 'node:module';\nregister(new URL('./hooks.mjs', import.meta.url));\n");
    const r = spawnSync(process.execPath, ['--import', pathToFileURL(join(hooks, 'register.mjs')).href, MAIN_JS, '--version'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
    const loaded = r.stderr.split('\n').filter((l) => l.startsWith('loaded ')).map((l) => l.slice('loaded '.length));
    assert.ok(loaded.some((u) => u.endsWith('/dist/src/cli/cli.bundle.js')), `the bundle ran: ${loaded.join(', ')}`);
    assert.ok(!loaded.some((u) => u.endsWith('/dist/src/cli/commands.js')), `the modules tsc wrote did not: ${loaded.join(', ')}`);
  } finally {
    rmSync(hooks, { recursive: true, force: true });
  }
});
