// Three full raftkv nodes in this one process (src/harness/in-process-cluster.ts: startNode() on
// real sockets, real data dirs, real fsync). The process tests of test/cluster/ check the same
// things across process boundaries; here a stop and a restart take milliseconds, and a test can
// read a node's state without HTTP.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { InProcessCluster, type InProcessNode } from '../../src/harness/index.js';
import { http } from '../cluster/http.js';

let cluster: InProcessCluster;
before(async () => {
  cluster = await InProcessCluster.start({ size: 3, name: 'in-process' });
});
after(() => cluster?.destroy());

async function put(node: InProcessNode, key: string, value: string): Promise<number> {
  const r = await http(node.url, `/v1/kv/${encodeURIComponent(key)}`, { method: 'PUT', body: value });
  assert.equal(r.status, 200, `PUT ${key} via ${node.id}: ${r.status} ${r.text}`);
  return r.json<{ index: number }>().index;
}

async function get(node: InProcessNode, key: string, consistency: 'linearizable' | 'stale'): Promise<string> {
  const r = await http(node.url, `/v1/kv/${encodeURIComponent(key)}?raw&consistency=${consistency}`);
  assert.equal(r.status, 200, `GET ${key} via ${node.id} (${consistency}): ${r.status} ${r.text}`);
  return r.text;
}

function followers(leader: InProcessNode): [InProcessNode, InProcessNode] {
  return cluster.nodes.filter((n) => n !== leader) as [InProcessNode, InProcessNode];
}

test('§5.2 three nodes started with startNode() in one process elect one leader, and every node names it in the same term', async () => {
  const leader = await cluster.waitForLeader();
  const statuses = cluster.nodes.map((n) => n.status()!);
  assert.deepEqual(statuses.map((s) => s.role).sort(), ['follower', 'follower', 'leader']);
  assert.ok(statuses.every((s) => s.leader === leader.id && s.term === statuses[0]!.term), JSON.stringify(statuses));
});

test('a write through a follower is forwarded to the leader, and every node reads it back: by ReadIndex, then from its own state', async () => {
  const leader = await cluster.waitForLeader();
  const [follower] = followers(leader);
  const index = await put(follower, 'greeting', 'hello');
  for (const node of cluster.nodes) assert.equal(await get(node, 'greeting', 'linearizable'), 'hello', `a linearizable read via ${node.id}`);
  for (const node of cluster.nodes) {
    await cluster.waitApplied(node, index);
    assert.equal(await get(node, 'greeting', 'stale'), 'hello', `${node.id}'s own state machine`);
  }
});

test('§5.3 a node stopped while writes commit without it catches up from the leader once restarted on its data dir', async () => {
  const leader = await cluster.waitForLeader();
  const [follower, stopped] = followers(leader);
  const stop = await cluster.stopNode(stopped);
  assert.equal(stop.code, 0);
  assert.equal(stopped.status(), null);
  let last = 0;
  // Through the leader and the remaining follower: a majority of two commits every one.
  for (let i = 0; i < 40; i++) last = await put(i % 2 === 0 ? leader : follower, `catch-up/${i}`, `v${i}`);
  await cluster.startNode(stopped);
  const caughtUp = await cluster.waitApplied(stopped, last);
  assert.equal(caughtUp.leader, (await cluster.waitForLeader()).id);
  for (let i = 0; i < 40; i++) assert.equal(await get(stopped, `catch-up/${i}`, 'stale'), `v${i}`);
  assert.equal(await get(stopped, 'greeting', 'stale'), 'hello', 'what it had before the stop survives the restart');
});
