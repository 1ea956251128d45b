// The published package as a user gets it: `npm pack` ships the built library, its types, the
// README, LICENSE and docs and nothing of the repository's tests, benches or CI; the tarball
// installs into a fresh project (its one runtime dependency, gRPC, from npm's cache where it can;
// see the install below); there `raftkv` and
// `raftkv/client` import by those names alone (the exports map), a one-node RaftNode on
// FileStorage commits a proposal, the installed `raftkv` bin serves a node that RaftKvClient
// writes to and reads from, deep imports into dist/ are refused, and TypeScript resolves both
// entries' types.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeTempDir } from '../../src/harness/index.js';
import { freePorts } from '../../src/transport/free-ports.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const NPM_ENV = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

function run(cmd: string, args: string[], opts: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeoutMs, env: opts.env ?? NPM_ENV, maxBuffer: 32 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

interface PackResult {
  readonly filename: string;
  readonly files: readonly { readonly path: string }[];
}

test('npm pack ships only the library, types, bin, README, LICENSE and docs; prepack builds', { timeout: 120_000 }, async () => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string>; engines: { node: string }; dependencies?: object; license: string };
  assert.match(pkg.scripts['prepack'] ?? '', /npm run build/, 'prepack builds (tsc and the browser bundle)');
  assert.equal(pkg.engines.node, '>=20.15', 'zlib.crc32 needs Node 20.15');
  // The etcd API's gRPC stack is the only runtime dependency, pinned exactly (no ranges).
  assert.deepEqual(Object.keys(pkg.dependencies ?? {}).sort(), ['@grpc/grpc-js', '@grpc/proto-loader'], 'runtime dependencies');
  for (const [name, version] of Object.entries(pkg.dependencies ?? {})) assert.match(String(version), /^\d+\.\d+\.\d+$/, `${name} is pinned exactly`);
  assert.equal(pkg.license, 'MIT');
  assert.match(readFileSync(join(REPO, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) \d{4} raftkv authors/);
  const dir = makeTempDir('pack-list');
  try {
    const packed = await pack(dir);
    const paths = packed.files.map((f) => f.path);
    for (const must of ['package.json', 'LICENSE', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/client/index.js', 'dist/src/client/index.d.ts', 'dist/src/cli/main.js', 'dist/src/cli/cli.bundle.js', 'docs/client.md', 'docs/operations.md', 'docs/metrics.md', 'proto/etcd/rpc.proto', 'dist/ui/index.html', 'dist/ui/dashboard.js', 'dist/ui/playground.html', 'dist/ui/playground.js', 'proto/etcd/v3lock.proto', 'proto/etcd/v3election.proto']) {
      assert.ok(paths.includes(must), `the tarball lacks ${must}`);
    }
    const unwanted = paths.filter((p) => /^(test|bench|scripts|src|\.ci)\/|^dist\/(test|bench)\/|mutants|\.map$|tsbuildinfo|\.ts$/.test(p) && !p.endsWith('.d.ts'));
    assert.deepEqual(unwanted, [], 'repository-only files in the tarball');
    assert.ok(paths.length < 600, `${paths.length} files`);
  } finally {
    removeTempDir(dir);
  }
});

test('the packed tarball installs into a fresh project, where raftkv and raftkv/client work by name and type-check', { timeout: 240_000 }, async () => {
  const dir = makeTempDir('pack-install');
  let serve: ReturnType<typeof spawn> | undefined;
  try {
    const { filename } = await pack(dir);
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'raftkv-user', version: '1.0.0', private: true, type: 'module' }));
    // --prefer-offline, not --offline: the dependencies' tarballs are in npm's cache after `npm
    // ci`, but npm 11 resolves a tarball's dependencies from their full packuments, which `npm
    // ci` (lockfile only) does not cache: on a fresh machine --offline failed ENOTCACHED. What
    // the cache lacks comes from the registry `npm ci` used.
    const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, filename)], { cwd: app, timeoutMs: 120_000 });
    assert.equal(install.code, 0, `npm install: ${install.stderr}`);

    // The installed bin serves a node; the user's script talks to it with the client.
    const [peer, client, libPeer, etcdPort] = await freePorts(4);
    const binDir = join(app, 'node_modules', '.bin');
    const version = await run(join(binDir, 'raftkv'), ['--version'], { cwd: app, timeoutMs: 20_000, env: withNodeOnPath() });
    assert.equal(version.stdout.trim(), '0.1.0', version.stderr);
    serve = spawn(join(binDir, 'raftkv'), ['serve', '--id', 'solo', '--data-dir', join(dir, 'serve-data'), '--peer-addr', `127.0.0.1:${peer}`, '--client-addr', `127.0.0.1:${client}`, '--initial-cluster', `solo=127.0.0.1:${peer}`, '--heartbeat-ms', '50', '--election-ms', '300', '--log-level', 'warn', '--etcd-addr', `127.0.0.1:${etcdPort}`], { cwd: app, env: withNodeOnPath(), stdio: ['ignore', 'ignore', 'pipe'] });
    let serveErr = '';
    serve.stderr!.on('data', (c: Buffer) => (serveErr += c.toString()));

    writeFileSync(join(app, 'use.mjs'), USER_SCRIPT);
    const used = await run(process.execPath, ['use.mjs'], { cwd: app, timeoutMs: 60_000, env: { ...process.env, CLIENT_URL: `http://127.0.0.1:${client}`, LIB_PEER: String(libPeer), LIB_DIR: join(dir, 'lib-data') } });
    assert.equal(used.code, 0, `the user's script: ${used.stderr}\nserve: ${serveErr}`);
    assert.deepEqual(JSON.parse(used.stdout.trim().split('\n').at(-1)!), { proposed: 42, value: 'from the package', deepImport: 'ERR_PACKAGE_PATH_NOT_EXPORTED', client: 'function', node: 'function' });
    // The dashboard's files ship too: the installed node serves its page.
    const page = await fetch(`http://127.0.0.1:${client}/ui/`);
    assert.equal(page.status, 200, 'the installed node serves /ui/');
    assert.match(await page.text(), /<html/i);

    // The types resolve through the exports map ("types" conditions), and a misuse is an error.
    writeFileSync(join(app, 'check.ts'), TYPED_USE);
    writeFileSync(join(app, 'wrong.ts'), "import { RaftKvClient } from 'raftkv/client';\nconst n: number = new RaftKvClient({ endpoints: [] });\nexport { n };\n");
    const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const tscArgs = (file: string): string[] => [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--typeRoots', join(REPO, 'node_modules', '@types'), '--types', 'node', file];
    // The documented examples, as the installed package ships them, type-check as written.
    const shipped = join(app, 'node_modules', 'raftkv');
    writeFileSync(join(app, 'readme-example.ts'), `${firstTsBlock(readFileSync(join(shipped, 'README.md'), 'utf8'), '## Library use')}\nexport {};\n`);
    writeFileSync(join(app, 'client-example.ts'), `${firstTsBlock(readFileSync(join(shipped, 'docs', 'client.md'), 'utf8'), '## The library')}\nexport { items, more, then };\n`);
    for (const file of ['check.ts', 'readme-example.ts', 'client-example.ts']) {
      const typed = await run(process.execPath, tscArgs(file), { cwd: app, timeoutMs: 90_000 });
      assert.equal(typed.code, 0, `tsc ${file}: ${typed.stdout}${typed.stderr}`);
    }
    const wrong = await run(process.execPath, tscArgs('wrong.ts'), { cwd: app, timeoutMs: 90_000 });
    assert.notEqual(wrong.code, 0, 'a type error in the user code is caught: the types are real, not any');
    assert.match(wrong.stdout, /wrong\.ts.*TS2322/);
  } finally {
    if (serve !== undefined && serve.exitCode === null) {
      const exited = new Promise((r) => serve!.once('exit', r));
      serve.kill('SIGTERM');
      const timer = setTimeout(() => serve!.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    removeTempDir(dir);
  }
});

/** The first ```ts block after `heading` in a Markdown page. */
function firstTsBlock(markdown: string, heading: string): string {
  const after = markdown.slice(markdown.indexOf(heading));
  const block = /```ts\n([\s\S]*?)\n```/.exec(after);
  assert.ok(markdown.includes(heading) && block !== null, `no TypeScript example under ${heading}`);
  return block[1]!;
}

function withNodeOnPath(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` };
}

async function pack(dir: string): Promise<PackResult> {
  // The test runs after the build (npm test); the prepack script's build is checked above.
  const r = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: REPO, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as PackResult[];
  return out[0]!;
}

const USER_SCRIPT = `
import { RaftNode, FileStorage, TcpTransport } from 'raftkv';
import { RaftKvClient } from 'raftkv/client';

const deadline = setTimeout(() => { console.error('timed out'); process.exit(1); }, 50_000);

class Total { total = 0;
  apply(e) { if (e.type === 'normal' && e.data.length > 0) this.total += e.data[0]; return this.total; }
  snapshot() { return new TextEncoder().encode(String(this.total)); }
  restore(d) { this.total = Number(new TextDecoder().decode(d)); } }
let node;
const transport = new TcpTransport({ id: 'a', listenHost: '127.0.0.1', listenPort: Number(process.env.LIB_PEER), peers: new Map(),
  onMessage: (m) => node?.receive(m), onUnreachable: (p) => node?.reportUnreachable(p), onSnapshotStatus: (p, ok) => node?.reportSnapshot(p, ok) });
await transport.start();
node = await RaftNode.start({ id: 'a', storage: await FileStorage.open(process.env.LIB_DIR), stateMachine: new Total(), transport,
  initialCluster: { voters: ['a'], votersOutgoing: [], learners: [] } });
while (!node.isLeader) await new Promise((r) => setTimeout(r, 20));
const { result } = await node.propose(new Uint8Array([42]));
await node.stop();
await transport.stop();

const kv = new RaftKvClient({ endpoints: [process.env.CLIENT_URL], timeoutMs: 20_000 });
await kv.put('greeting', 'from the package');
const value = await kv.getString('greeting');
kv.close();

let deepImport = 'allowed';
try { await import('raftkv/dist/src/node/index.js'); } catch (err) { deepImport = err.code; }
clearTimeout(deadline);
console.log(JSON.stringify({ proposed: result, value, deepImport, client: typeof RaftKvClient, node: typeof RaftNode }));
`;

const TYPED_USE = `
import { RaftNode, FileStorage, TcpTransport, KvStateMachine, type Entry, type StateMachine } from 'raftkv';
import { RaftKvClient, type KvRecord, CompareFailedError } from 'raftkv/client';

class Total implements StateMachine<number> {
  total = 0;
  apply(e: Entry): number { if (e.type === 'normal' && e.data.length > 0) this.total += e.data[0]!; return this.total; }
  snapshot(): Uint8Array { return new Uint8Array(0); }
  restore(_data: Uint8Array): void {}
}
export async function start(): Promise<RaftNode<number>> {
  const transport = new TcpTransport({ id: 'a', listenHost: '127.0.0.1', listenPort: 1, peers: new Map(), onMessage: () => undefined, onUnreachable: () => undefined, onSnapshotStatus: () => undefined });
  return RaftNode.start({ id: 'a', storage: await FileStorage.open('d'), stateMachine: new Total(), transport, initialCluster: { voters: ['a'], votersOutgoing: [], learners: [] } });
}
export async function read(kv: RaftKvClient): Promise<KvRecord | null> { return kv.get('k'); }
export const kinds = [KvStateMachine, CompareFailedError];
`;
