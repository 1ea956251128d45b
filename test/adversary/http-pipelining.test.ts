// The adversary suite on HTTP pipelining (issue 9, "Bounded resources"; docs/security.md: "nothing
// a client or peer sends can exhaust memory"). A client may pipeline requests on one keep-alive
// connection and never read an answer: each request is small, its answer is not, and a node that
// keeps parsing buffers the answers. A handful of such connections, well under
// --max-client-connections, must cost the node little memory and not its leadership. On a
// cluster of its own (production timing: 1 s elections), since a node that buffers grows by
// hundreds of MiB. After the attack, assertUnharmed (unharmed.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { TestCluster } from '../cluster/harness.js';
import type { NodeStatus } from '../cluster/http.js';
import { leadershipLog, pidOf, rssBytes } from './node-process.js';
import { Ledger, assertUnharmed } from './unharmed.js';

const CONNECTIONS = 8;
const FLOOD_MS = 8000;
const MAX_GROWTH_BYTES = 96 << 20;

let cluster: TestCluster | undefined;
let ledger: Ledger;
const sockets: net.Socket[] = [];
before(async () => {
  cluster = await TestCluster.start({ size: 3, name: 'adv-pipelining', heartbeatMs: 100, electionMs: 1000 });
  ledger = await Ledger.open(cluster);
});
after(async () => {
  for (const s of sockets) s.destroy();
  await cluster?.destroy();
});

test(`${CONNECTIONS} connections that pipeline requests and never read the answers cost the leader little memory and not its leadership`, { timeout: 60_000 }, async () => {
  const leader = await cluster!.waitForLeader();
  const term = ((await leader.status()) as NodeStatus).term;
  const pid = pidOf(leader);
  const rssBefore = rssBytes(pid);
  const [host, port] = leader.clientAddr.split(':') as [string, string];
  // 1000 requests of 40 bytes per write, as fast as the node takes them; nothing is ever read.
  const burst = Buffer.from('GET /v1/status HTTP/1.1\r\nHost: raftkv\r\n\r\n'.repeat(1000));
  for (let i = 0; i < CONNECTIONS; i++) {
    const s = net.connect({ host, port: Number(port) });
    s.on('error', () => undefined);
    s.pause();
    const pump = (): void => {
      while (!s.destroyed && s.write(burst));
      if (!s.destroyed) s.once('drain', pump);
    };
    s.on('connect', pump);
    sockets.push(s);
  }
  let peak = 0;
  const until = Date.now() + FLOOD_MS;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 250));
    peak = Math.max(peak, rssBytes(pid) - rssBefore);
  }
  const sent = sockets.reduce((n, s) => n + s.bytesWritten, 0);
  for (const s of sockets) s.destroy();
  const after = await cluster!.waitForLeader(10_000);
  const afterTerm = ((await after.status()) as NodeStatus).term;
  assert.ok(
    peak < MAX_GROWTH_BYTES,
    `${leader.id} grew by ${(peak / 2 ** 20).toFixed(0)} MiB for ${CONNECTIONS} connections that pipelined ${(sent / 2 ** 20).toFixed(1)} MiB of requests and read nothing`,
  );
  assert.deepEqual({ leader: after.id, term: afterTerm }, { leader: leader.id, term }, `the leader kept its place through the flood; the logs say:\n${leadershipLog(cluster!.nodes)}`);
  await assertUnharmed(ledger, 'pipelined requests whose answers are never read');
});
