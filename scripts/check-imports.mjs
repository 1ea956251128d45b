// npm run lint — holds the import boundaries of ARCHITECTURE.md: which folder of src/ may import
// which, and which may touch Node's I/O. The consensus core may import nothing outside itself.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');

// folder → { folders it may import, node built-ins it may use ('*' = any) }
const RULES = {
  raft: { folders: [], node: [] },
  storage: { folders: ['raft'], node: ['*'] },
  transport: { folders: ['raft', 'security'], node: ['*'] },
  node: { folders: ['raft', 'storage', 'transport'], node: ['*'] },
  kv: { folders: ['raft'], node: [] },
  check: { folders: [], node: [] },
  sim: { folders: ['raft', 'storage', 'node', 'kv', 'check', 'server'], node: ['worker_threads', 'os', 'url', 'process', 'perf_hooks'] },
  server: { folders: ['raft', 'storage', 'transport', 'node', 'kv', 'client', 'check', 'security'], node: ['*'] },
  client: { folders: ['raft', 'kv', 'security'], node: ['*'] },
  cli: { folders: ['raft', 'storage', 'transport', 'node', 'kv', 'server', 'client', 'sim', 'check', 'faults', 'security', 'etcd'], node: ['*'] },
  faults: { folders: ['raft', 'storage', 'transport', 'node', 'kv', 'server', 'client', 'check', 'security', 'harness'], node: ['*'] },
  harness: { folders: ['transport', 'server', 'client', 'security', 'cli'], node: ['*'] },
  security: { folders: [], node: ['*'] },
  // src/index.ts, the package's main entry: the library layers, re-exported, and nothing else.
  'index.ts': { folders: ['raft', 'node', 'storage', 'transport', 'kv'], node: [] },
  // The etcd v3 gRPC front end: a client of the node's parts, beside the HTTP API.
  etcd: { folders: ['server', 'kv', 'client', 'raft', 'node', 'security', 'transport'], node: ['*'] },
};
// Storage may import only the memory twin's types from raft; the sim only the storage twin, and
// of node/ only the runtime it hosts and the tick clock RaftNode counts with (not RaftNode, which
// brings real timers), and of server/ only
// the lease keeper it runs on every simulated node (no timers of its own: the simulator ticks it).
const FILE_EXCEPTIONS = {
  sim: {
    storage: (spec) => /memory-storage|types|index/.test(spec),
    node: (spec) => /\/(runtime|tick-clock)\.js$/.test(spec),
    server: (spec) => /\/leases\.js$/.test(spec),
  },
};

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

const problems = [];
const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
for (const file of walk(src)) {
  const folder = relative(src, file).split(sep)[0];
  const rule = RULES[folder];
  if (rule === undefined) {
    problems.push(`${relative(root, file)}: folder src/${folder}/ has no import rule in scripts/check-imports.mjs`);
    continue;
  }
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec.startsWith('node:')) {
      const mod = spec.slice(5).split('/')[0];
      if (!rule.node.includes('*') && !rule.node.includes(mod)) problems.push(`${relative(root, file)}: src/${folder}/ may not import ${spec}`);
      continue;
    }
    if (!spec.startsWith('.')) {
      if (folder === 'raft' || folder === 'kv' || folder === 'check') problems.push(`${relative(root, file)}: src/${folder}/ may not import the package ${spec}`);
      continue;
    }
    const target = relative(src, join(file, '..', spec)).split(sep)[0];
    if (target === folder) continue;
    if (!rule.folders.includes(target)) {
      problems.push(`${relative(root, file)}: src/${folder}/ may not import src/${target}/ (${spec})`);
      continue;
    }
    const exception = FILE_EXCEPTIONS[folder]?.[target];
    if (exception !== undefined && !exception(spec)) problems.push(`${relative(root, file)}: src/${folder}/ may import only the in-memory twin or the runtime of src/${target}/ (${spec})`);
  }
}
// The browser pages (ui/, bundled by scripts/build-ui.mjs): nothing they load, however far down,
// may import Node; type-only imports are erased and do not count.
const valueImportRe = /(?:^|\n)\s*(?:import|export)\s(?!type\s)[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g;
const seen = new Set();
const uiDir = join(root, 'ui');
function visitBrowser(file, via) {
  if (seen.has(file)) return;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  // Node's globals are imports too, by another name: a page has none of them.
  // Block comments blanked (lines kept, for the numbers), then line comments and strings.
  const uncommented = text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '));
  uncommented.split('\n').forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, '').replace(/'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`/g, "''");
    const g = /(?<![.\w])(Buffer|process|require|__dirname|__filename|setImmediate|global)\b/.exec(code);
    if (g !== null) problems.push(`${relative(root, file)}:${i + 1}: the browser code (from ${via}) may not use Node's ${g[1]}`);
  });
  for (const m of text.matchAll(valueImportRe)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith('node:') || !spec.startsWith('.')) {
      problems.push(`${relative(root, file)}: the browser code (from ${via}) may not load ${spec}`);
      continue;
    }
    visitBrowser(join(file, '..', spec.replace(/\.js$/, '.ts')), via);
  }
}
for (const name of readdirSync(uiDir)) if (name.endsWith('.ts')) visitBrowser(join(uiDir, name), `ui/${name}`);

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  console.error(`import boundaries: ${problems.length} violation(s)`);
  process.exit(1);
}
console.log('import boundaries: ok');
