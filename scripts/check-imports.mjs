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
  // The etcd v3 gRPC front end: a client of the node's parts, beside the HTTP API.
  etcd: { folders: ['server', 'kv', 'client', 'raft', 'node', 'security', 'transport'], node: ['*'] },
};
// Storage may import only the memory twin's types from raft; the sim only the storage twin, and
// of node/ only the runtime it hosts (not RaftNode, which brings real timers), and of server/ only
// the lease keeper it runs on every simulated node (no timers of its own: the simulator ticks it).
const FILE_EXCEPTIONS = {
  sim: {
    storage: (spec) => /memory-storage|types|index/.test(spec),
    node: (spec) => /\/runtime\.js$/.test(spec),
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
if (problems.length > 0) {
  for (const p of problems) console.error(p);
  console.error(`import boundaries: ${problems.length} violation(s)`);
  process.exit(1);
}
console.log('import boundaries: ok');
