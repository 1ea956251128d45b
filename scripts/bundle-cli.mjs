// npm run build, after tsc: bundles dist/src/cli/cli.js (the `raftkv` command) and every module
// it loads at start into dist/src/cli/cli.bundle.js; what it loads lazily (the etcd API's gRPC
// server) goes into chunks beside it. main.js runs the bundle while it is at least as new as
// the last tsc build (see src/cli/main.ts).
//
// The bundle sits beside cli.js, at the same depth as every module it holds (dist/src/X/), so
// each `new URL('../../…', import.meta.url)` in them still names the same file. Packages stay
// external: node_modules is resolved as before. Tests and library users import the modules as
// tsc wrote them; only the command runs bundled.
import { build } from 'esbuild';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const cliDir = join(root, 'dist', 'src', 'cli');
const entry = join(cliDir, 'cli.js');
const BUNDLE = 'cli.bundle.js';
if (!existsSync(entry)) throw new Error(`${entry}: run tsc first`);
// Built beside, then moved in: a process that starts meanwhile (a test, a member) finds the old
// bundle and its chunks or the new ones, never a file half written.
const out = mkdtempSync(join(root, 'dist', '.cli-bundle-'));
try {
  await build({
    entryPoints: { 'cli.bundle': entry },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: ['node20'],
    packages: 'external',
    outdir: out,
    chunkNames: 'cli.bundle-chunk-[name]-[hash]',
    legalComments: 'none',
    logLevel: 'warning',
  });
  const fresh = readdirSync(out);
  // Chunks first (named by their content), the bundle that imports them last.
  for (const name of [...fresh.filter((n) => n !== BUNDLE), BUNDLE]) {
    const to = join(cliDir, name);
    if (existsSync(to) && readFileSync(to).equals(readFileSync(join(out, name)))) {
      // Unchanged: only marked as new as this build (src/cli/main.ts compares it with tsc's).
      const now = new Date();
      utimesSync(to, now, now);
    } else {
      renameSync(join(out, name), to);
    }
  }
  for (const name of readdirSync(cliDir)) if (name.startsWith('cli.bundle-chunk-') && !fresh.includes(name)) rmSync(join(cliDir, name));
} finally {
  rmSync(out, { recursive: true, force: true });
}
console.log(`cli: bundled into ${join(cliDir, BUNDLE)}`);
