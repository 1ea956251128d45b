// The `raftkv` entry (src/cli/main.ts) runs the bundle `npm run build` writes only while no tsc
// build came after it: a bundle older than dist/.tsbuildinfo holds old code, and the modules tsc
// wrote run instead. Checked on a copy of the entry beside stand-ins that say which one ran, and
// on the real build: the bundle there is what `npm run build` (CI's) just wrote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
  const profiles = mkdtempSync(join(tmpdir(), 'raftkv-entry-prof-'));
  try {
    const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profiles, '--cpu-prof-interval', '100', MAIN_JS, '--version'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
    // What ran, by the files the profile's functions come from.
    const urls = new Set<string>();
    for (const name of readdirSync(profiles)) {
      const profile = JSON.parse(readFileSync(join(profiles, name), 'utf8')) as { nodes: { callFrame: { url: string } }[] };
      for (const n of profile.nodes) urls.add(n.callFrame.url);
    }
    assert.ok([...urls].some((u) => u.endsWith('/dist/src/cli/cli.bundle.js')), 'the bundle ran');
    assert.ok(![...urls].some((u) => u.endsWith('/dist/src/cli/commands.js')), 'the modules tsc wrote did not');
  } finally {
    rmSync(profiles, { recursive: true, force: true });
  }
});
