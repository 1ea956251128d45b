// The etcd gRPC load generator (bench/grpc/) against a real single-member etcd on 127.0.0.1:
// it must do work, report no errors it did not see, and have really written what it reports,
// checked by reading the keys back and by etcd's own revision count. Needs the etcd binary
// (Debian: etcd-server); without it this test fails and says so, it does not skip.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EtcdChannel } from '../../bench/grpc/etcd-channel.js';
import { runEtcdLoad } from '../../bench/grpc/etcd-load.js';
import { findEtcd, startEtcd } from '../../bench/lib/etcd-cluster.js';
import { Resources } from '../../bench/lib/processes.js';
import { benchKey } from '../../bench/lib/workload.js';

const KEYS = 50;
const res = new Resources();
after(() => res.releaseAll(2000));

test('the gRPC generator writes for ~1 s at 4 clients; etcd holds every key it wrote and counts every write it reported', { timeout: 60_000 }, async () => {
  const binary = findEtcd(process.env['ETCD_BIN']);
  if (binary === null) {
    assert.fail('etcd is not installed (no etcd on PATH, no /usr/bin/etcd): install the Debian package etcd-server (apt-get install etcd-server) or set ETCD_BIN');
  }
  const etcd = await startEtcd(res, { binary, members: 1, leaderTimeoutMs: 15_000 });
  const channel = new EtcdChannel(etcd.members[0]!.address);
  try {
    const revisionBefore = BigInt((await channel.range({ key: Buffer.from('none') }, 3000)).header!.revision);
    // A value no earlier run could have left behind.
    const value = randomBytes(256);
    const r = await runEtcdLoad({ members: etcd.members, leaderIndex: etcd.leaderIndex, routing: 'spread', concurrency: 4, warmupMs: 200, durationMs: 1000, keys: KEYS, value });

    assert.equal(r.errors, 0, `errors: first ${r.firstError}`);
    assert.ok(r.ops > 0, 'no write completed in the measured second');
    assert.equal(r.opsPerSecond, r.ops / r.seconds);
    assert.equal(r.misrouted, 0, 'every answer must come from the member the client was aimed at');
    assert.ok(r.completed >= r.ops, 'completed counts the warm-up and tail too');
    assert.ok(r.p50Ms > 0 && r.p50Ms <= r.p99Ms && r.p99Ms <= r.maxMs, `latencies out of order: ${r.p50Ms} ${r.p99Ms} ${r.maxMs}`);
    assert.ok(r.completed >= KEYS, `too few writes to cover every key (${r.completed}); the machine is too slow for this test`);

    // Every Put raises the revision by exactly one: the generator's count is what etcd applied.
    const prefix = Buffer.from('bench-');
    const rangeEnd = Buffer.from('bench.'); // '-' + 1: the prefix range
    const back = await channel.range({ key: prefix, range_end: rangeEnd }, 3000);
    assert.equal(BigInt(back.header!.revision) - revisionBefore, BigInt(r.completed), 'revisions added != writes reported');
    assert.deepEqual(back.kvs.map((kv) => kv.key.toString()), Array.from({ length: KEYS }, (_, k) => benchKey(k)));
    for (const kv of back.kvs) assert.ok(kv.value.equals(value), `${kv.key.toString()} does not hold the value written`);
  } finally {
    channel.close();
    await etcd.stop();
  }
});
