// A cluster on several addresses, as on several machines: three nodes, each in its own network
// namespace with its own IP (src/faults/netns.ts), binding 0.0.0.0 and advertising their own
// address with etcd's URL flags, TLS on both ports, rolled one node at a time (stop, start, wait
// until ready and caught up) under a write load; every acknowledged write is readable at the end.
// The work runs in multi-ip-driver.ts inside the bridge namespace; this test creates and always
// removes the namespaces. It needs root and `ip netns` (CI runs as root): without them it FAILS,
// it does not skip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bridgeNamespace, canUseNetns, createBridge, destroyNamespaces, listNamespaces } from '../../src/faults/netns.js';
import { makeTempDir, removeTempDir } from '../../src/harness/index.js';

const DRIVER = fileURLToPath(new URL('./multi-ip-driver.js', import.meta.url));

/** Namespaces of an earlier run of this test that was killed before it could remove them. */
function sweepStale(): void {
  for (const ns of listNamespaces()) {
    const m = /^rkvo(\d+)-/.exec(ns);
    if (m === null) continue;
    let isAlive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      isAlive = false;
    }
    if (!isAlive) destroyNamespaces(`rkvo${m[1]}-`);
  }
}

test('3 nodes on distinct IPs, bound to 0.0.0.0, advertising their own address over TLS: a rolling restart under writes loses nothing acknowledged', { timeout: 120_000 }, async (t) => {
  assert.ok(canUseNetns(), 'this test needs root and a working `ip netns` (network namespaces); it runs in CI as root and must not be skipped');
  // Not the fault suite's `rkvf` prefix: its sweep removes namespaces whose owner is not a fault run.
  const prefix = `rkvo${process.pid}-`;
  sweepStale();
  const root = makeTempDir('multi-ip');
  const removeNamespaces = (): void => void destroyNamespaces(prefix);
  process.on('exit', removeNamespaces);
  try {
    await createBridge(prefix);
    const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      let out = '';
      const child = spawn('nsenter', [`--net=/run/netns/${bridgeNamespace(prefix)}`, process.execPath, DRIVER, prefix, root], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
      const timer = setTimeout(() => child.kill('SIGKILL'), 110_000);
      child.on('error', reject);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve({ code: c, out });
      });
    });
    const line = out.split('\n').find((l) => l.startsWith('RESULT '));
    assert.equal(code, 0, `the driver failed:\n${out.slice(-4000)}`);
    assert.ok(line !== undefined, out);
    const result = JSON.parse(line.slice('RESULT '.length)) as { ips: string[]; restarts: { id: string; readyMs: number }[]; acknowledged: number; failedAttempts: number; lost: string[] };
    t.diagnostic(`addresses ${result.ips.join(', ')}; restarts ${result.restarts.map((r) => `${r.id} ready in ${r.readyMs} ms`).join(', ')}; ${result.acknowledged} writes acknowledged, ${result.failedAttempts} attempts failed`);
    assert.equal(new Set(result.ips).size, 3);
    assert.deepEqual(result.restarts.map((r) => r.id), ['n1', 'n2', 'n3'], 'every node was restarted once');
    assert.ok(result.acknowledged > 50, `a real load: ${result.acknowledged} writes acknowledged`);
    assert.deepEqual(result.lost, [], 'every acknowledged write is readable');
  } finally {
    destroyNamespaces(prefix);
    process.off('exit', removeNamespaces);
    removeTempDir(root);
    assert.deepEqual(listNamespaces().filter((n) => n.startsWith(prefix)), [], 'no namespace is left behind');
  }
});
