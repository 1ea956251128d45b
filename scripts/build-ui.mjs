// npm run build, after tsc: bundles the dashboard and the playground (ui/*.ts, which import the
// real core, store and simulator from src/) for the browser into dist/ui/, with their page,
// stylesheet and nothing else: every asset ships with the package, none is fetched at run time.
// Fails on any Node import reaching the bundle (platform browser), so the pages stay node-free.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'dist', 'ui');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { dashboard: join(root, 'ui', 'dashboard.ts'), playground: join(root, 'ui', 'playground.ts') },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  outdir: out,
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
});
for (const name of ['index.html', 'playground.html', 'style.css', 'favicon.svg']) copyFileSync(join(root, 'ui', name), join(out, name));
console.log(`ui: bundled into ${out}`);
