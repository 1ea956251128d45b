// `npm run bench` end to end, raftkv alone at one level for a second, in both of its modes: its
// own client over HTTP and etcd's gRPC load generator on raftkv's etcd ports. The pieces have their
// own tests; this one proves the driver that joins them runs and reports (a mode that threw before
// measuring anything once went unnoticed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BENCH = fileURLToPath(new URL('../../bench/cluster.js', import.meta.url));

function runBench(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BENCH, ...args], { timeout: 110_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

for (const api of ['http', 'etcd'] as const) {
  test(`npm run bench --raftkv-api ${api}: one level, both routings, a result line each with no errors`, { timeout: 120_000 }, async () => {
    const r = await runBench(['--systems', 'raftkv', '--levels', '2', '--seconds', '1', '--warmup', '0', '--raftkv-api', api, '--timeout', '100']);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout.slice(-2000)}`);
    for (const routing of ['spread', 'leader']) {
      const line = r.stdout.split('\n').find((l) => l.startsWith(`level=2 routing=${routing} raftkv=`));
      assert.ok(line !== undefined, `no result line for ${routing}:\n${r.stdout.slice(-2000)}`);
      const ops = Number(/raftkv=(\d+)/.exec(line)![1]);
      assert.ok(ops > 0, `${routing}: ${line}`);
      assert.match(line, /raftkv_errors=0/, line);
    }
  });
}
