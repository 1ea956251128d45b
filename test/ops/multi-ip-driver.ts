// The inside of test/ops/multi-ip.test.ts, run by it in the bridge namespace (nsenter --net), so
// that this process reaches every node's own address (src/faults/netns.ts has the layout): a
// 3-node secure cluster, each node in its own namespace with its own IP, binding 0.0.0.0 and
// advertising its IP with etcd's URL flags; a rolling restart (stop one, start it, wait until it
// is ready and caught up, then the next) under a write load; then every acknowledged write is
// read back. Prints one line `RESULT {json}` and exits 0, or prints why and exits 1.
//
//   node multi-ip-driver.js PREFIX ROOT
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FaultCluster } from '../../src/faults/cluster.js';
import { pollUntil, sleep, type ProcessNode } from '../../src/harness/index.js';
import { exchange } from '../../src/harness/index.js';
import { RaftKvClient } from '../../src/client/index.js';

const [prefix, root] = process.argv.slice(2) as [string, string];
const PEER_PORT = 7000;
const CLIENT_PORT = 8000;

/** A FaultCluster whose nodes bind 0.0.0.0 and advertise their namespace's address (etcd's flags). */
class AdvertisingCluster extends FaultCluster {
  override serveArgs(node: ProcessNode): string[] {
    const ip = node.peerAddr.slice(0, node.peerAddr.lastIndexOf(':'));
    return [
      'serve', '--id', node.id, '--data-dir', node.dataDir,
      '--listen-peer-urls', `https://0.0.0.0:${PEER_PORT}`, '--listen-client-urls', `https://0.0.0.0:${CLIENT_PORT}`,
      '--initial-advertise-peer-urls', `https://${ip}:${PEER_PORT}`, '--advertise-client-urls', `https://${ip}:${CLIENT_PORT}`,
      '--initial-cluster', this.initialCluster,
      '--heartbeat-ms', '100', '--election-ms', '1000', '--log-level', 'warn',
      ...this.security!.serveFlags(node.id, ip),
    ];
  }
}

async function main(): Promise<Record<string, unknown>> {
  const cluster = new AdvertisingCluster({ nodes: 3, heartbeatMs: 100, electionMs: 1000, dataRoot: join(root, 'data'), logDir: join(root, 'logs'), netnsPrefix: prefix, secure: true, snapshotEntries: null });
  const security = cluster.security!;
  try {
    await cluster.start();
    const ips = cluster.nodes.map((n) => n.peerAddr.split(':')[0]!);
    if (new Set(ips).size !== 3) throw new Error(`not three distinct addresses: ${ips.join(', ')}`);
    // Every member knows every other by its advertised address, never the bind address.
    // Each member registers its addresses through the log once a leader is there: wait (bounded)
    // until all three have, then every one must be the advertised address.
    const registeredBy = Date.now() + 15_000;
    for (;;) {
      const members = (JSON.parse((await exchange(cluster.nodes[0]!.url, '/v1/members', { security: security.client, timeoutMs: 5000 })).body.toString('utf8')) as { members: { id: string; peerAddr: string; clientAddr: string }[] }).members;
      const unregistered = members.filter((m) => m.peerAddr === '' || m.clientAddr === '');
      if (unregistered.length > 0 && Date.now() < registeredBy) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      for (const n of cluster.nodes) {
        const m = members.find((x) => x.id === n.id);
        if (m === undefined || m.peerAddr !== n.peerAddr || m.clientAddr !== n.clientAddr) throw new Error(`member ${n.id} is listed as ${JSON.stringify(m)}, not its advertised ${n.peerAddr} / ${n.clientAddr}`);
      }
      break;
    }

    const client = new RaftKvClient({ endpoints: cluster.urls, ca: readFileSync(security.ca.cert), token: security.adminToken, timeoutMs: 4000 });
    const acked = new Map<string, string>();
    let failed = 0;
    let isWriting = true;
    const writers = [0, 1, 2].map(async (w) => {
      for (let seq = 0; isWriting; seq++) {
        const key = `roll/${w}/${seq}`;
        const value = `${w}-${seq}-${Date.now()}`;
        try {
          await client.put(key, value);
          acked.set(key, value);
        } catch {
          failed++;
          await sleep(20);
        }
      }
    });

    const restarts: { id: string; readyMs: number }[] = [];
    try {
      await sleep(1000);
      for (const node of [...cluster.nodes]) {
        await node.stop('SIGTERM', 10_000);
        await sleep(300);
        const started = Date.now();
        cluster.startNode(node);
        // Ready (/readyz: knows a leader with a quorum, applied what it committed), and caught up.
        await pollUntil(`${node.id} ready after its restart`, 25_000, async () => {
          cluster.assertNoUnexpectedExit();
          const r = await exchange(node.url, '/readyz', { security: security.client, timeoutMs: 2000 }).catch(() => null);
          return r?.status === 200 ? true : undefined;
        }, 100);
        await cluster.waitHealthy(25_000);
        restarts.push({ id: node.id, readyMs: Date.now() - started });
        await sleep(500);
      }
    } finally {
      isWriting = false;
      await Promise.all(writers);
    }

    // Every acknowledged write is there, with the value acknowledged.
    const lost: string[] = [];
    for (const [key, value] of acked) {
      const rec = await client.get(key);
      if (rec === null || Buffer.from(rec.value).toString('utf8') !== value) lost.push(key);
    }
    client.close();
    return { ips, restarts, acknowledged: acked.size, failedAttempts: failed, lost };
  } finally {
    await cluster.destroy();
  }
}

const bound = setTimeout(() => {
  process.stdout.write('multi-ip driver: no result within 100 s\n');
  process.exit(1);
}, 100_000);
main().then(
  (result) => {
    clearTimeout(bound);
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    clearTimeout(bound);
    process.stdout.write(`multi-ip driver failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
