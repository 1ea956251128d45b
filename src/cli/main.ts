#!/usr/bin/env node
// The `raftkv` command's entry (package.json `bin`; every member a local cluster, the test
// harness or a benchmark starts). It runs cli.ts, from one bundle of it and everything it loads
// at start (cli.bundle.js, written by `npm run build`: scripts/bundle-cli.mjs) when there is one
// at least as new as the last tsc build, else as tsc wrote it. Node's ESM loader resolves, reads
// and compiles each of ~150 modules on its own, ~140 ms of every start on a 2-core VM against
// ~65 ms bundled (docs/benchmarks.md, "Fourteenth session"); a restarting member pays it too.
// A tsc build after the bundle (`npx tsc -p .` while working) writes dist/.tsbuildinfo, which
// makes the bundle stale: then the modules tsc wrote run, never old code. An installed package
// has no .tsbuildinfo and always runs its bundle.
import { statSync } from 'node:fs';

function modifiedMs(url: URL): number | null {
  try {
    return statSync(url).mtimeMs;
  } catch {
    return null;
  }
}

const bundle = new URL('./cli.bundle.js', import.meta.url);
const bundledMs = modifiedMs(bundle);
const builtMs = modifiedMs(new URL('../../.tsbuildinfo', import.meta.url));
if (bundledMs !== null && (builtMs === null || bundledMs >= builtMs)) await import(bundle.href);
else await import('./cli.js');
