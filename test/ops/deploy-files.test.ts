// The deployment files (docs/deploy.md): the Dockerfile builds from the packed tarball into a
// small non-root runtime stage (built for real where `docker info` works; otherwise its steps are
// checked), its HEALTHCHECK command works against a real node, and the Kubernetes manifests hold
// what a 3-member cluster needs: a StatefulSet of 3 with Parallel start, stable DNS names from a
// headless Service that publishes not-ready pods, volume claims, probes on /readyz and /livez,
// TLS and tokens from secrets, a PodDisruptionBudget of one, and serve flags our own parser takes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { translateUrlFlags } from '../../src/cli/url-flags.js';
import { parseServeConfig } from '../../src/cli/serve.js';
import { childEnv, freePorts, makeTempDir, pollUntil, removeTempDir, TestNode } from '../cluster/harness.js';
import { http } from '../cluster/http.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Stage {
  readonly from: string;
  readonly name: string | null;
  readonly instructions: readonly { op: string; args: string }[];
}

/** The Dockerfile as stages of instructions (continuation lines joined, comments dropped). */
function dockerStages(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const stages: { from: string; name: string | null; instructions: { op: string; args: string }[] }[] = [];
  for (const line of lines) {
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op!.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      assert.ok(m !== null, `FROM ${args}`);
      stages.push({ from: m[1]!, name: m[2] ?? null, instructions: [] });
    } else {
      assert.ok(stages.length > 0, `${op} before any FROM`);
      stages.at(-1)!.instructions.push({ op: op!.toUpperCase(), args });
    }
  }
  return stages;
}

test('Dockerfile: build stage packs the tarball; the runtime stage installs only it, without dev dependencies, as a non-root user, with a data volume, ports and a /livez health check', () => {
  const stages = dockerStages(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  assert.ok(stages.length >= 2, 'multi-stage');
  const build = stages[0]!;
  const runtime = stages.at(-1)!;
  for (const s of stages) assert.match(s.from, /^node:20-slim$/, `${s.name}: from node:20-slim`);
  const runs = (s: Stage): string[] => s.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
  assert.ok(runs(build).some((r) => /\bnpm ci\b/.test(r)), 'the build stage installs exactly the lockfile');
  assert.ok(runs(build).some((r) => /\bnpm pack\b/.test(r)), 'the build stage packs the tarball');
  const copies = runtime.instructions.filter((i) => i.op === 'COPY');
  assert.ok(copies.length > 0 && copies.every((c) => new RegExp(`--from=${build.name}\\b`).test(c.args) && /\.tgz\b/.test(c.args)), `the runtime stage copies the tarball alone: ${JSON.stringify(copies)}`);
  const install = runs(runtime).find((r) => /\bnpm install\b/.test(r));
  assert.ok(install !== undefined && /--omit=dev/.test(install) && /\.tgz\b/.test(install), `installs the tarball without dev dependencies: ${install}`);
  assert.ok(!runs(runtime).some((r) => /\bnpm ci\b|\bnpm run build\b|\btsc\b/.test(r)), 'no sources are built in the runtime stage');
  const users = runtime.instructions.filter((i) => i.op === 'USER').map((i) => i.args);
  assert.equal(users.length, 1);
  assert.doesNotMatch(users[0]!, /^(root|0)(:|$)/, 'the runtime user is not root');
  const userIndex = runtime.instructions.findIndex((i) => i.op === 'USER');
  assert.ok(runtime.instructions.slice(userIndex).every((i) => i.op !== 'RUN'), 'nothing runs as root after USER');
  assert.ok(runtime.instructions.some((i) => i.op === 'VOLUME' && /\/var\/lib\/raftkv/.test(i.args)), 'a data volume');
  assert.ok(runtime.instructions.some((i) => i.op === 'EXPOSE' && /2379/.test(i.args) && /2380/.test(i.args)), 'both ports exposed');
  assert.ok(runtime.instructions.some((i) => i.op === 'HEALTHCHECK' && /\/livez/.test(i.args)), 'a health check on /livez');
  assert.ok(runtime.instructions.some((i) => i.op === 'ENTRYPOINT' && /raftkv/.test(i.args)));
  assert.ok(runtime.instructions.some((i) => i.op === 'ENV' && /^GLIBC_TUNABLES=glibc\.malloc\.hugetlb=1$/.test(i.args)), 'members run with malloc on huge pages, as `raftkv cluster` starts them');
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const name of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(name), `.dockerignore leaves out ${name}`);
});

test('Dockerfile: the HEALTHCHECK command passes against a live node and fails where nothing serves', async () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const cmd = /^HEALTHCHECK .*?CMD (\[.*\])\s*$/m.exec(text);
  assert.ok(cmd !== null, 'HEALTHCHECK ... CMD [exec form]');
  const argv = JSON.parse(cmd[1]!) as string[];
  assert.equal(argv[0], 'node');
  const dir = makeTempDir('healthcheck');
  const [peer, client, idle] = await freePorts(3);
  const node = new TestNode('h', `127.0.0.1:${peer}`, `127.0.0.1:${client}`, join(dir, 'h'), join(dir, 'h.log'));
  try {
    node.start(['serve', '--id', 'h', '--data-dir', node.dataDir, '--peer-addr', node.peerAddr, '--client-addr', node.clientAddr, '--initial-cluster', `h=${node.peerAddr}`], childEnv());
    await pollUntil('the node to serve /livez', 15_000, async () => ((await http(node.url, '/livez').catch(() => null))?.status === 200 ? true : undefined));
    const check = (url: string): number | null => spawnSync(process.execPath, argv.slice(1), { env: { ...process.env, RAFTKV_HEALTH_URL: url }, timeout: 10_000 }).status;
    assert.equal(check(`${node.url}/livez`), 0, 'healthy while the node serves');
    assert.equal(check(`http://127.0.0.1:${idle}/livez`), 1, 'unhealthy where nothing listens');
    assert.equal(check(`${node.url}/no-such-path`), 1, 'unhealthy on a non-200 answer');
  } finally {
    await node.stop('SIGKILL').catch(() => undefined);
    removeTempDir(dir);
  }
});

test('Dockerfile: the image builds and runs as a non-root user (where docker works)', { timeout: 900_000 }, async (t) => {
  const info = spawnSync('docker', ['info'], { timeout: 20_000 });
  if (info.status !== 0) {
    // The steps were checked above; a machine without a Docker daemon cannot build the image.
    t.skip('docker info fails here: the image was not built (its steps are checked by the test above)');
    return;
  }
  // A daemon that cannot reach a registry cannot build FROM node:20-slim either.
  const hasBase = spawnSync('docker', ['image', 'inspect', 'node:20-slim'], { timeout: 20_000 }).status === 0 || spawnSync('docker', ['pull', 'node:20-slim'], { timeout: 180_000 }).status === 0;
  if (!hasBase) {
    t.skip('docker works but node:20-slim is neither here nor pullable: the image was not built (its steps are checked by the test above)');
    return;
  }
  const tag = `raftkv-test:${process.pid}`;
  try {
    execFileSync('docker', ['build', '-t', tag, ROOT], { stdio: 'pipe', timeout: 850_000 });
    const user = execFileSync('docker', ['image', 'inspect', '--format', '{{.Config.User}}', tag], { encoding: 'utf8' }).trim();
    assert.doesNotMatch(user, /^(root|0)?(:|$)/, `image user ${user}`);
    const help = spawnSync('docker', ['run', '--rm', tag, '--help'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /usage: raftkv/);
    const uid = spawnSync('docker', ['run', '--rm', '--entrypoint', 'id', tag, '-u'], { encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(uid.stdout.trim(), '0');
  } finally {
    spawnSync('docker', ['rmi', '-f', tag], { timeout: 60_000 });
  }
});

// ---- Kubernetes ----

// Manifests are schemaless YAML: the test reads them as loosely as kubectl would.
type Doc = Record<string, any>;

function manifests(): Doc[] {
  const dir = join(ROOT, 'deploy', 'kubernetes');
  const docs: Doc[] = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.yaml')).sort()) {
    for (const d of parseAllDocuments(readFileSync(join(dir, name), 'utf8'))) {
      assert.deepEqual(d.errors, [], `${name} parses`);
      const value = d.toJS() as Doc | null;
      if (value !== null) docs.push({ ...value, __file: name });
    }
  }
  return docs;
}

function only(docs: Doc[], kind: string, pred: (d: Doc) => boolean = () => true): Doc {
  const found = docs.filter((d) => d['kind'] === kind && pred(d));
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0]!;
}

const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

test('Kubernetes: a StatefulSet of 3 started in parallel, named by a headless Service that publishes not-ready pods, with its own volumes, probes, secrets and a PDB of one', () => {
  const docs = manifests();
  const sts = only(docs, 'StatefulSet');
  const spec = sts['spec'];
  assert.equal(spec.replicas, 3);
  assert.equal(spec.podManagementPolicy, 'Parallel');
  const podLabels = spec.template.metadata.labels as Record<string, string>;
  assert.ok(matches(spec.selector.matchLabels, podLabels));

  const headless = only(docs, 'Service', (d) => d['metadata'].name === spec.serviceName);
  assert.equal(headless['spec'].clusterIP, 'None', 'serviceName is a headless Service');
  assert.equal(headless['spec'].publishNotReadyAddresses, true, 'members resolve before they are ready (bootstrap)');
  assert.ok(matches(headless['spec'].selector, podLabels));
  const clientService = only(docs, 'Service', (d) => d['metadata'].name !== spec.serviceName);
  assert.notEqual(clientService['spec'].clusterIP, 'None');
  assert.ok(matches(clientService['spec'].selector, podLabels));

  const pod = spec.template.spec;
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.notEqual(pod.securityContext.runAsUser, 0);
  const [container] = pod.containers as Doc[];
  const ports = new Map((container!['ports'] as { name: string; containerPort: number }[]).map((p) => [p.name, p.containerPort]));
  assert.equal(container!['readinessProbe'].httpGet.path, '/readyz');
  assert.equal(container!['livenessProbe'].httpGet.path, '/livez');
  for (const probe of ['readinessProbe', 'livenessProbe']) {
    assert.ok(ports.has(container![probe].httpGet.port), `${probe} uses a named container port`);
    assert.equal(container![probe].httpGet.scheme, 'HTTPS', `${probe} speaks TLS to the TLS client port`);
  }
  for (const port of (headless['spec'].ports as { targetPort: string }[]).concat(clientService['spec'].ports)) assert.ok(ports.has(port.targetPort), `Service port ${port.targetPort} names a container port`);

  // Volumes: the claim template is mounted at the data dir; TLS and tokens come from secrets.
  const claim = spec.volumeClaimTemplates[0].metadata.name as string;
  const mounts = new Map((container!['volumeMounts'] as { name: string; mountPath: string }[]).map((m) => [m.name, m.mountPath]));
  const secrets = new Map((pod.volumes as { name: string; secret?: { secretName: string } }[]).filter((v) => v.secret !== undefined).map((v) => [mounts.get(v.name)!, v.secret!.secretName]));
  const args = container!['args'] as string[];
  const flag = (name: string): string => {
    const a = args.find((x) => x.startsWith(`--${name}=`));
    assert.ok(a !== undefined, `--${name} is given`);
    return a.slice(name.length + 3);
  };
  assert.ok(flag('data-dir').startsWith(`${mounts.get(claim)}/`), 'the data dir is on the claim');
  for (const f of ['cert-file', 'key-file', 'peer-cert-file', 'peer-key-file', 'peer-trusted-ca-file', 'auth-file']) {
    const dir = flag(f).slice(0, flag(f).lastIndexOf('/'));
    assert.ok(secrets.has(dir), `--${f} is read from a mounted secret`);
  }

  // Bootstrap from stable names: each of the 3 pods under the headless Service, and the flags, with
  // the downward API filled in, are accepted by raftkv's own parser.
  const env = new Map((container!['env'] as { name: string }[]).map((e) => [e.name, e]));
  assert.ok(env.has('POD_NAME') && env.has('POD_NAMESPACE'));
  const entries = flag('initial-cluster').split(',');
  assert.equal(entries.length, spec.replicas);
  entries.forEach((e, i) => assert.equal(e, `${sts['metadata'].name}-${i}=${sts['metadata'].name}-${i}.${spec.serviceName}.$(POD_NAMESPACE).svc.cluster.local:2380`));
  for (let i = 0; i < spec.replicas; i++) {
    const concrete = args.slice(1).map((a) => a.replace(/\$\(POD_NAME\)/g, `${sts['metadata'].name}-${i}`).replace(/\$\(POD_NAMESPACE\)/g, 'prod'));
    const cfg = parseServeConfig(translateUrlFlags(concrete, {}), {});
    assert.equal(cfg.id, `raftkv-${i}`);
    assert.deepEqual(cfg.peerAddr, { host: '0.0.0.0', port: 2380 });
    assert.deepEqual(cfg.advertisePeerAddr, { host: `raftkv-${i}.${spec.serviceName}.prod.svc.cluster.local`, port: 2380 });
    assert.equal(cfg.initialCluster!.size, 3);
    assert.notEqual(cfg.clientTls, null);
    assert.notEqual(cfg.peerTls, null);
  }

  const pdb = only(docs, 'PodDisruptionBudget');
  assert.equal(pdb['spec'].maxUnavailable, 1);
  assert.ok(matches(pdb['spec'].selector.matchLabels, podLabels));
  const kustomization = only(docs, 'Kustomization');
  assert.deepEqual([...kustomization['resources']].sort(), [...new Set(docs.filter((d) => d['kind'] !== 'Kustomization').map((d) => d['__file']))].sort(), 'kustomization lists every manifest');
});
