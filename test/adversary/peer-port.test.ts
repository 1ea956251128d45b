// The adversary suite on the peer port of a plain 3-node cluster (issue 9, "Proof";
// docs/transport.md "Handshake" and "Limits"; API.md "Security"). An attacker on the same network
// dials the peer port by hand: as a stranger naming this cluster, as a member of another cluster,
// with every message type pipelined behind a HELLO that must be refused, as a member's id (which
// plain TCP cannot tell from the member: a documented limit, so the core's own validation is what
// keeps terms and the committed log safe), and with resource abuse: a 16 MiB frame before the
// handshake, connections that say nothing, a flood past --max-peer-connections, and a snapshot
// that announces 1 GiB. After each attack, assertUnharmed (unharmed.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MAX_TERM } from '../../src/raft/types.js';
import { FrameType } from '../../src/transport/frame.js';
import { TestCluster, pollUntil, type TestNode } from '../cluster/harness.js';
import { LEADER_COMPLETENESS_ALARM } from '../../src/node/index.js';
import { http, type NodeStatus } from '../cluster/http.js';
import {
  HostilePeer,
  destroyHostilePeers,
  forwardedJson,
  forwardedRequestFrame,
  hello,
  messageFrame,
  peerPort,
  rpcAnswer,
  rpcFrame,
  rpcPayload,
  sleep,
  snapshotBegin,
  snapshotChunk,
} from './hostile-peer.js';
import { leadershipLog, pidOf, rssBytes } from './node-process.js';
import { encodeCommand } from '../../src/kv/index.js';
import { encodeClusterIdRecord, encodeMemberRecord } from '../../src/server/member-registry.js';
import { PROPOSALS_KIND, decodeProposalsAnswer, encodeProposals, type ForwardedProposal } from '../../src/server/proposals.js';
import { Ledger, assertUnharmed, coreRefused, metricsOf, peerRefused, transportRejected } from './unharmed.js';
import type { InstallSnapshot, Message } from '../../src/raft/types.js';

/** Small, so a flood passes it quickly; the cluster's own streams take about six. */
const MAX_PEER_CONNECTIONS = 32;
const HANDSHAKE_TIMEOUT_MS = 5000;
const HUGE = Number.MAX_SAFE_INTEGER; // 2^53 − 1: the largest term the codec can carry
const GIB = 1024 ** 3;

let cluster: TestCluster | undefined;
let ledger: Ledger;
before(async () => {
  cluster = await TestCluster.start({ size: 3, name: 'adv-peer', extraArgs: ['--max-peer-connections', String(MAX_PEER_CONNECTIONS)] });
  ledger = await Ledger.open(cluster);
});
after(async () => {
  destroyHostilePeers();
  await cluster?.destroy();
});

interface Roles {
  readonly leader: TestNode;
  /** The follower attacked. */
  readonly follower: TestNode;
  /** The other follower, whose id the impersonation attacks borrow. */
  readonly other: TestNode;
  readonly term: number;
  readonly commitIndex: number;
}

async function roles(): Promise<Roles> {
  const leader = await cluster!.waitForLeader(10_000);
  const [follower, other] = cluster!.nodes.filter((n) => n !== leader) as [TestNode, TestNode];
  const s = (await http(leader.url, '/v1/status')).json<NodeStatus>();
  return { leader, follower, other, term: s.term, commitIndex: s.commitIndex };
}

function attacker(name: string): string {
  ledger.attackerIds.add(name);
  return name;
}

test('a HELLO from a non-member id that names this cluster is refused at the handshake, and counted', async () => {
  const id = attacker('mallory');
  for (const node of cluster!.nodes) {
    const series = [peerRefused('not-member'), transportRejected('notMember')];
    const before = await metricsOf(node, series);
    const peer = new HostilePeer(peerPort(node)).send(hello(id, node.id, ledger.clusterId));
    const outcome = await peer.handshake();
    assert.equal(outcome.kind, 'rejected', `${node.id} answered ${JSON.stringify(outcome)}`);
    assert.match((outcome as { reason: string }).reason, /not a member/);
    assert.ok(await peer.waitClosed(3000), `${node.id} closed the refused connection`);
    const after = await metricsOf(node, series);
    for (const s of series) assert.ok(after[s]! >= before[s]! + 1, `${node.id} counts ${s}: ${before[s]} → ${after[s]}`);
  }
  await assertUnharmed(ledger, 'a non-member HELLO');
});

test('a HELLO from a member id that names another cluster is refused at the handshake, and counted', async () => {
  const others = [randomBytes(16).toString('hex'), `f-${randomBytes(16).toString('hex')}`, ''];
  for (const node of cluster!.nodes) {
    const member = cluster!.nodes.find((n) => n !== node)!;
    for (const clusterId of others) {
      const before = await metricsOf(node, [peerRefused('other-cluster')]);
      const peer = new HostilePeer(peerPort(node)).send(hello(member.id, node.id, clusterId));
      const outcome = await peer.handshake();
      assert.equal(outcome.kind, 'rejected', `${node.id} answered ${member.id} of cluster "${clusterId}" with ${JSON.stringify(outcome)}`);
      assert.match((outcome as { reason: string }).reason, /cluster/);
      const after = await metricsOf(node, [peerRefused('other-cluster')]);
      assert.ok(after[peerRefused('other-cluster')]! >= before[peerRefused('other-cluster')]! + 1, `${node.id} counts the other cluster`);
      peer.destroy();
    }
  }
  await assertUnharmed(ledger, 'HELLOs from another cluster');
});

/** One forged message of every type, as `from` would send them to `to`, each meant to do harm if heard. */
function everyMessageType(from: string, to: string, term: number): Message[] {
  return [
    { type: 'RequestVote', from, to, term: HUGE, preVote: false, lastLogIndex: 1_000_000, lastLogTerm: HUGE, transfer: true },
    { type: 'RequestVoteResponse', from, to, term, preVote: false, voteGranted: true },
    { type: 'AppendEntries', from, to, term: HUGE, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0, seq: 1 },
    // Overwrites the committed prefix, from index 1 on, with entries of a newer term.
    {
      type: 'AppendEntries', from, to, term: term + 1, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 3, seq: 1,
      entries: [1, 2, 3].map((index) => ({ index, term: term + 1, type: 'normal' as const, data: new Uint8Array([1, 2, 3]) })),
    },
    { type: 'AppendEntriesResponse', from, to, term, success: true, matchIndex: 1_000_000, rejectedIndex: 0, conflictTerm: 0, conflictIndex: 0, seq: 1_000_000 },
    { type: 'InstallSnapshotResponse', from, to, term, matchIndex: 1_000_000, seq: 1 },
    { type: 'TimeoutNow', from, to, term },
    { type: 'Removed', from, to, term, configIndex: 1 },
  ];
}

function snapshotHeader(from: string, to: string, term: number, index: number, voters: string[]): InstallSnapshot {
  return { type: 'InstallSnapshot', from, to, term, seq: 1, snapshot: { meta: { index, term, config: { voters, votersOutgoing: [], learners: [] } }, data: new Uint8Array(0) } };
}

test('every message type forged by a non-member (votes, appends, Removed, TimeoutNow, a snapshot, forwarded writes and membership changes) is refused at the handshake and never acts', async () => {
  const { term, follower } = await roles();
  const id = attacker('mallory');
  const victim = attacker('mallory-joiner');
  ledger.foreignKeys.add('foreign/forwarded-put');
  for (const node of cluster!.nodes) {
    const series = [peerRefused('not-member'), coreRefused('invalid'), coreRefused('not-leader')];
    const before = await metricsOf(node, series);
    const messages = new HostilePeer(peerPort(node)).send(hello(id, node.id, ledger.clusterId), ...everyMessageType(id, node.id, term).map(messageFrame));
    const snapshot = new HostilePeer(peerPort(node)).send(
      hello(id, node.id, ledger.clusterId, 'snapshot'),
      snapshotBegin(1 << 20, snapshotHeader(id, node.id, term + 1, 1_000_000, [id])),
      snapshotChunk(randomBytes(64 << 10)),
    );
    const rpc = new HostilePeer(peerPort(node)).send(
      hello(id, node.id, ledger.clusterId, 'rpc'),
      forwardedRequestFrame(1, { method: 'PUT', path: '/v1/kv/foreign%2Fforwarded-put', headers: {}, body: new TextEncoder().encode('pwned') }),
      forwardedRequestFrame(2, forwardedJson('POST', '/v1/members', { id: victim, peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10', role: 'voter' })),
      forwardedRequestFrame(3, forwardedJson('POST', '/v1/internal/register', { id, peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10\r\nX-Evil: 1' })),
      forwardedRequestFrame(4, forwardedJson('DELETE', `/v1/members/${follower.id}`, {})),
    );
    for (const [what, peer] of [['messages', messages], ['snapshot', snapshot], ['rpc', rpc]] as const) {
      const outcome = await peer.handshake();
      assert.equal(outcome.kind, 'rejected', `${node.id}, ${what} stream from ${id}: ${JSON.stringify(outcome)}`);
      assert.ok(await peer.waitClosed(3000), `${node.id} closed the ${what} stream`);
    }
    assert.equal(snapshot.frames.filter((f) => f[4] === FrameType.snapshotAck).length, 0, `${node.id} answered no snapshot frame`);
    for (const rid of [1, 2, 3, 4]) assert.equal(await rpcAnswer(rpc, rid, 0), null, `${node.id} answered rpc request ${rid}`);
    const after = await metricsOf(node, series);
    assert.ok(after[peerRefused('not-member')]! >= before[peerRefused('not-member')]! + 3, `${node.id} counts three refused handshakes`);
    // Refused at the handshake: not one of the frames behind it reached the core.
    assert.equal(after[coreRefused('invalid')], before[coreRefused('invalid')], `${node.id}: a forged message reached the core`);
    assert.equal(after[coreRefused('not-leader')], before[coreRefused('not-leader')], `${node.id}: a forged message reached the core`);
  }
  await assertUnharmed(ledger, 'forged messages from a non-member');
});

test("a member's id over plain TCP (which cannot prove who dials: a documented limit) still cannot push a term past MAX_TERM, overwrite committed entries, forge acks, remove a node, force an election or register foreign or bad addresses", async () => {
  const { leader, follower, other, term, commitIndex } = await roles();
  assert.ok(commitIndex >= 2, 'the cluster has committed past its founding entry');
  // To a follower, as the other follower: out-of-range terms, and what only the leader may send.
  const toFollower: Message[] = [
    { type: 'RequestVote', from: other.id, to: follower.id, term: HUGE, preVote: false, lastLogIndex: 1_000_000, lastLogTerm: 1, transfer: false },
    { type: 'RequestVote', from: other.id, to: follower.id, term: MAX_TERM + 1, preVote: true, lastLogIndex: 1_000_000, lastLogTerm: 1, transfer: false },
    { type: 'AppendEntries', from: other.id, to: follower.id, term: HUGE, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0, seq: 1 },
    { type: 'TimeoutNow', from: other.id, to: follower.id, term },
    { type: 'Removed', from: other.id, to: follower.id, term, configIndex: 1 },
    { type: 'Removed', from: other.id, to: follower.id, term: term + 1, configIndex: 1 },
  ];
  // To the same follower, as the leader itself: a rewrite of committed entries, and a removal
  // naming an entry that does not remove it.
  // The rewrite comes REWRITES times: each is refused and counted, and logged once (a flood of
  // them must not flood the log).
  const REWRITES = 50;
  const asLeader: Message[] = [
    ...Array.from({ length: REWRITES }, (): Message => ({
      type: 'AppendEntries', from: leader.id, to: follower.id, term, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 1, seq: 1,
      entries: [{ index: 1, term, type: 'normal', data: new Uint8Array([0x42]) }],
    })),
    { type: 'Removed', from: leader.id, to: follower.id, term, configIndex: commitIndex },
  ];
  // To the leader, as a follower: acknowledgments of entries it never sent, an answer past MAX_TERM, a rival leader.
  const toLeader: Message[] = [
    { type: 'AppendEntriesResponse', from: other.id, to: leader.id, term, success: true, matchIndex: 1_000_000, rejectedIndex: 0, conflictTerm: 0, conflictIndex: 0, seq: 1 },
    { type: 'RequestVoteResponse', from: other.id, to: leader.id, term: HUGE, preVote: false, voteGranted: true },
    { type: 'AppendEntries', from: other.id, to: leader.id, term, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0, seq: 1 },
  ];
  const series = [coreRefused('invalid'), coreRefused('not-leader'), coreRefused('contradicts-committed')];
  const beforeFollower = await metricsOf(follower, series);
  const beforeLeader = await metricsOf(leader, series);
  const streams = [
    new HostilePeer(peerPort(follower)).send(hello(other.id, follower.id, ledger.clusterId), ...toFollower.map(messageFrame)),
    new HostilePeer(peerPort(follower)).send(hello(leader.id, follower.id, ledger.clusterId), ...asLeader.map(messageFrame)),
    new HostilePeer(peerPort(leader)).send(hello(other.id, leader.id, ledger.clusterId), ...toLeader.map(messageFrame)),
  ];
  for (const s of streams) assert.equal((await s.handshake()).kind, 'accepted', 'plain TCP lets a member id through (the documented limit)');
  // Counted as the core drops them (the refusals are what this attack is about); the rewrite of
  // committed entries under its own reason, the Leader Completeness alarm.
  const counted = (after: Record<string, number>, before: Record<string, number>): Record<string, number> => ({
    invalid: after[coreRefused('invalid')]! - before[coreRefused('invalid')]!,
    notLeader: after[coreRefused('not-leader')]! - before[coreRefused('not-leader')]!,
    contradictsCommitted: after[coreRefused('contradicts-committed')]! - before[coreRefused('contradicts-committed')]!,
  });
  const expectedDrops = { follower: { invalid: 4, notLeader: 3, contradictsCommitted: REWRITES }, leader: { invalid: 2, notLeader: 1, contradictsCommitted: 0 } };
  let seen = { follower: counted(beforeFollower, beforeFollower), leader: counted(beforeLeader, beforeLeader) };
  const deadline = Date.now() + 5000;
  for (;;) {
    seen = { follower: counted(await metricsOf(follower, series), beforeFollower), leader: counted(await metricsOf(leader, series), beforeLeader) };
    const ok = (['follower', 'leader'] as const).every((who) => Object.entries(expectedDrops[who]).every(([k, v]) => seen[who][k]! >= v));
    if (ok || Date.now() > deadline) break;
    await sleep(50);
  }
  assert.deepEqual(seen, expectedDrops, 'every forged message was dropped by the core and counted (raftkv_raft_messages_refused_total)');
  // And the rewrite raised the alarm in the follower's log, the line the fault harness looks for.
  await pollUntil('the Leader Completeness alarm in the follower log', 5000, async () => (readFileSync(follower.logFile, 'utf8').includes(LEADER_COMPLETENESS_ALARM) ? true : undefined));
  const alarmLines = readFileSync(follower.logFile, 'utf8').split('\n').filter((l) => l.includes(LEADER_COMPLETENESS_ALARM));
  assert.equal(alarmLines.length, 1, `${REWRITES} refusals, one warning line: ${alarmLines.join(' | ')}`);
  for (const s of streams) s.destroy();

  // The rpc channel: a member may register only its own addresses, and only well-formed ones.
  const outsider = attacker('mallory-registered');
  const rpc = new HostilePeer(peerPort(leader)).send(
    hello(other.id, leader.id, ledger.clusterId, 'rpc'),
    forwardedRequestFrame(1, forwardedJson('POST', '/v1/internal/register', { id: other.id, peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10\r\nX-Evil: 1' })),
    forwardedRequestFrame(2, forwardedJson('POST', '/v1/internal/register', { id: other.id, peerAddr: 'no-port', clientAddr: other.clientAddr })),
    forwardedRequestFrame(3, forwardedJson('POST', '/v1/internal/register', { id: outsider, peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10' })),
    forwardedRequestFrame(4, forwardedJson('POST', '/v1/internal/register', { id: follower.id, peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10' })),
  );
  assert.equal((await rpc.handshake()).kind, 'accepted');
  const expected: Record<number, number> = { 1: 400, 2: 400, 3: 403, 4: 403 };
  for (const [rid, status] of Object.entries(expected)) {
    const answer = await rpcAnswer(rpc, Number(rid), 5000);
    assert.ok(answer !== null && answer.response !== null, `register request ${rid} was answered`);
    assert.equal(answer.response.status, status, `register request ${rid}: ${Buffer.from(answer.response.body).toString('utf8').slice(0, 200)}`);
  }
  rpc.destroy();

  const unsigned = (command: Uint8Array): ForwardedProposal => ({ command, principal: null });
  // Proposal batches (src/server/proposals.ts) in a member's name: only client writes that pass
  // the leader's own checks are appended; registry records, invalid commands and a malformed
  // batch are refused, and a follower appends nothing.
  const proposals = new HostilePeer(peerPort(leader)).send(
    hello(other.id, leader.id, ledger.clusterId, 'rpc'),
    rpcFrame(1, encodeProposals([encodeMemberRecord(outsider, { peerAddr: '127.0.0.1:9', clientAddr: '127.0.0.1:10' }), encodeClusterIdRecord('f'.repeat(32))].map(unsigned))),
    rpcFrame(2, encodeProposals([encodeCommand({ type: 'put', key: '', value: new Uint8Array(1), time: 1 }), Uint8Array.from([0x01, 0xff])].map(unsigned))),
    rpcFrame(3, Uint8Array.from([PROPOSALS_KIND, 0, 0, 0, 5, 0, 0])),
  );
  assert.equal((await proposals.handshake()).kind, 'accepted');
  for (const rid of [1, 2]) {
    const answer = await rpcPayload(proposals, rid, 5000);
    assert.ok(answer !== null && answer.status === 'ok', `proposal batch ${rid} was answered`);
    const decoded = decodeProposalsAnswer(answer.payload, 2);
    assert.ok('outcomes' in decoded, `batch ${rid}: ${JSON.stringify(decoded)}`);
    for (const o of decoded.outcomes) assert.ok('code' in o && ['BAD_REQUEST', 'BAD_KEY'].includes(o.code), `batch ${rid} appended or mis-refused: ${JSON.stringify(o)}`);
  }
  const malformed = await rpcPayload(proposals, 3, 5000);
  assert.ok(malformed !== null && malformed.status !== 'ok', 'a malformed batch is answered with an error');
  proposals.destroy();
  const proposedToFollower = new HostilePeer(peerPort(follower)).send(
    hello(other.id, follower.id, ledger.clusterId, 'rpc'),
    rpcFrame(1, encodeProposals([unsigned(encodeCommand({ type: 'put', key: 'foreign/proposed-to-follower', value: new Uint8Array(1), time: 1 }))])),
  );
  ledger.foreignKeys.add('foreign/proposed-to-follower');
  assert.equal((await proposedToFollower.handshake()).kind, 'accepted');
  const notLeader = await rpcPayload(proposedToFollower, 1, 5000);
  assert.ok(notLeader !== null && notLeader.status === 'ok');
  assert.ok('notLeader' in decodeProposalsAnswer(notLeader.payload, 1), 'a follower appends nothing');
  proposedToFollower.destroy();
  assert.equal(await http(leader.url, '/v1/members').then((r) => r.text.includes(outsider)), false, 'no registry record was appended');
  await assertUnharmed(ledger, "forged messages in a member's name");
});

test('a frame header announcing 16 MiB before the handshake closes the connection at once', async () => {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(16 << 20, 0);
  header[4] = FrameType.hello;
  for (const node of cluster!.nodes) {
    const before = await metricsOf(node, [transportRejected('malformed')]);
    const peer = new HostilePeer(peerPort(node)).send(header, randomBytes(64 << 10));
    assert.ok(await peer.waitClosed(3000), `${node.id} still holds a connection that announced a 16 MiB frame before its handshake`);
    // At once, not at the 5 s handshake deadline (the bound leaves room for a loaded machine).
    assert.ok(peer.closedAfterMs! < 2500, `${node.id} closed it after ${peer.closedAfterMs?.toFixed(0)} ms, not at once`);
    assert.equal(peer.frames.length, 0);
    const after = await metricsOf(node, [transportRejected('malformed')]);
    assert.ok(after[transportRejected('malformed')]! >= before[transportRejected('malformed')]! + 1, `${node.id} counts it as malformed`);
  }
  await assertUnharmed(ledger, 'a 16 MiB pre-handshake frame');
});

test('connections that send nothing are closed within the handshake timeout, and a flood past --max-peer-connections is refused while the cluster keeps its leader and serves writes', { timeout: 60_000 }, async () => {
  const { leader } = await roles();
  const FLOOD = 100;
  const series = [transportRejected('limit'), transportRejected('timeout')];
  const before = await Promise.all(cluster!.nodes.map((n) => metricsOf(n, series)));
  const flood = cluster!.nodes.map((n) => Array.from({ length: FLOOD }, () => new HostilePeer(peerPort(n))));
  await sleep(1000);
  for (const [i, node] of cluster!.nodes.entries()) {
    const refused = flood[i]!.filter((p) => p.isClosed).length;
    assert.ok(refused >= FLOOD - MAX_PEER_CONNECTIONS, `${node.id} refused only ${refused} of ${FLOOD} connections at once with --max-peer-connections ${MAX_PEER_CONNECTIONS}`);
  }
  // During the flood: the same leader, and writes through every node.
  await ledger.writeSome(6);
  assert.equal((await cluster!.waitForLeader(5000)).id, leader.id, `the leader kept its place during the flood; the logs say:\n${leadershipLog(cluster!.nodes)}`);
  // The ones let in, silent, are cut by the handshake deadline: not before it, not long after.
  const all = flood.flat();
  const deadline = Date.now() + HANDSHAKE_TIMEOUT_MS + 3000;
  await Promise.all(all.map((p) => p.waitClosed(Math.max(0, deadline - Date.now()))));
  const open = all.filter((p) => !p.isClosed).length;
  assert.equal(open, 0, `${open} silent connections outlived the ${HANDSHAKE_TIMEOUT_MS} ms handshake deadline by 3 s`);
  const cut = all.filter((p) => p.closedAfterMs! >= 1000);
  assert.ok(cut.length > 0, 'some silent connections were admitted and then cut');
  for (const p of cut) assert.ok(p.closedAfterMs! >= HANDSHAKE_TIMEOUT_MS - 500, `a silent connection was cut after ${p.closedAfterMs!.toFixed(0)} ms, before its deadline`);
  for (const [i, node] of cluster!.nodes.entries()) {
    const after = await metricsOf(node, series);
    assert.ok(after[transportRejected('limit')]! - before[i]![transportRejected('limit')]! >= FLOOD - MAX_PEER_CONNECTIONS, `${node.id} counts the connections over its limit`);
    assert.ok(after[transportRejected('timeout')]! > before[i]![transportRejected('timeout')]!, `${node.id} counts the silent connections it cut`);
  }
  await ledger.writeSome(3);
  await assertUnharmed(ledger, 'a flood of silent peer connections');
});

test('a snapshot stream announcing 1 GiB from a non-leader is refused before anything is allocated; one in the leader\'s name holds memory only as bytes arrive', { timeout: 30_000 }, async () => {
  const { leader, follower, other, term, commitIndex } = await roles();
  const pid = pidOf(follower);
  const rssBefore = rssBytes(pid);
  const series = [peerRefused('snapshot-not-leader'), transportRejected('snapshot')];
  const before = await metricsOf(follower, series);
  const voters = cluster!.nodes.map((n) => n.id);
  // From the other follower: a member, but not the leader.
  const fromFollower = new HostilePeer(peerPort(follower)).send(
    hello(other.id, follower.id, ledger.clusterId, 'snapshot'),
    snapshotBegin(GIB, snapshotHeader(other.id, follower.id, term, commitIndex + 1000, voters)),
  );
  assert.equal((await fromFollower.handshake()).kind, 'accepted', `${other.id} is a member: its HELLO passes`);
  const ack = await fromFollower.nextFrame(FrameType.snapshotAck, 3000);
  assert.ok(ack !== null && ack[5] === 0, `${follower.id} answered a snapshot from ${other.id}, not the leader, with ${ack === null ? 'nothing' : `SNAP_ACK(${ack[5]})`}`);
  for (let i = 0; i < 8 && !fromFollower.isClosed; i++) fromFollower.send(snapshotChunk(randomBytes(1 << 20)));
  assert.ok(await fromFollower.waitClosed(3000), `${follower.id} closed the refused snapshot stream`);
  const after = await metricsOf(follower, series);
  for (const s of series) assert.ok(after[s]! >= before[s]! + 1, `${follower.id} counts ${s}: ${before[s]} → ${after[s]}`);

  // In the leader's name (plain TCP cannot tell): admitted, but memory follows the bytes, not the 1 GiB announced.
  const asLeader = new HostilePeer(peerPort(follower)).send(
    hello(leader.id, follower.id, ledger.clusterId, 'snapshot'),
    snapshotBegin(GIB, snapshotHeader(leader.id, follower.id, term, commitIndex + 1000, voters)),
  );
  assert.equal((await asLeader.handshake()).kind, 'accepted');
  for (let i = 0; i < 4; i++) asLeader.send(snapshotChunk(randomBytes(1 << 20)));
  await sleep(500);
  assert.equal(asLeader.isClosed, false, 'the transfer in the leader\'s name is still open');
  const rssDuring = rssBytes(pid);
  const grown = rssDuring - rssBefore;
  assert.ok(grown < 96 << 20, `${follower.id} grew by ${(grown / 2 ** 20).toFixed(0)} MiB for a snapshot that announced 1 GiB and sent 4 MiB`);
  asLeader.destroy();
  await sleep(200);
  await assertUnharmed(ledger, 'snapshot streams announcing 1 GiB');
});
