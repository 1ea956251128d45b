// The adversary suite on who a peer certificate lets speak (issue 9, "Who may speak": "Only current
// members (and a server being added) are heard"). With mutual TLS, the peer port refuses anyone
// without a certificate of the cluster's CA (secure.test.ts). But a certificate the CA signed
// for someone who is not a member (a decommissioned node, a server provisioned but never added,
// a client certificate from a CA shared with the client port) must not let its holder speak as a
// member: a member may forge any message and forward any request under any principal name,
// "admin" included. On a secure cluster of its own, so a node that is fooled does not take the
// other attacks down with it. After each attack, assertUnharmed (unharmed.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCertificate, readPem } from '../../src/security/certs.js';
import { TestCluster } from '../cluster/harness.js';
import { HostilePeer, destroyHostilePeers, forwardedRequestFrame, hello, peerPort, rpcAnswer, type PeerTls } from './hostile-peer.js';
import { Ledger, assertUnharmed } from './unharmed.js';

let cluster: TestCluster | undefined;
let ledger: Ledger;
let mallory: PeerTls;
let ca: Buffer;
before(async () => {
  cluster = await TestCluster.start({ size: 3, secure: true, name: 'adv-peer-cert' });
  const security = cluster.security!;
  ca = readPem(security.ca.cert, 'ca');
  const pair = makeCertificate(security.ca, security.dir, 'mallory', { commonName: 'mallory' });
  mallory = { ca, cert: readPem(pair.cert, 'cert'), key: readPem(pair.key, 'key') };
  ledger = await Ledger.open(cluster, { peerTls: mallory });
  ledger.attackerIds.add('mallory');
});
after(async () => {
  destroyHostilePeers();
  await cluster?.destroy();
});

test("a certificate of the cluster's CA issued to a non-member cannot speak as a member, nor forward a write as \"admin\"", async () => {
  const leader = await cluster!.waitForLeader();
  const member = cluster!.nodes.find((n) => n !== leader)!;
  // The member's own certificate still speaks for it (so what follows is about the name, not TLS).
  const own = cluster!.security!.certificate(member.id);
  const honest = new HostilePeer(peerPort(leader), { tls: { ca, cert: readPem(own.cert, 'cert'), key: readPem(own.key, 'key') } }).send(hello(member.id, leader.id, ledger.clusterId, 'rpc'));
  assert.equal((await honest.handshake(5000)).kind, 'accepted', `${member.id}'s own certificate speaks for ${member.id}`);
  honest.destroy();

  const key = 'foreign/written-with-a-stray-certificate';
  ledger.foreignKeys.add(key);
  const stray = new HostilePeer(peerPort(leader), { tls: mallory }).send(
    hello(member.id, leader.id, ledger.clusterId, 'rpc'),
    forwardedRequestFrame(1, { method: 'PUT', path: `/v1/kv/${encodeURIComponent(key)}`, headers: {}, body: new TextEncoder().encode('pwned'), principal: 'admin' }),
  );
  const outcome = await stray.handshake(5000);
  const answer = await rpcAnswer(stray, 1, 3000);
  stray.destroy();
  assert.equal(
    outcome.kind,
    'rejected',
    `${leader.id} let a certificate issued to "mallory" speak as ${member.id} (${JSON.stringify(outcome)}); its forwarded PUT as "admin" answered ${answer?.response?.status ?? 'nothing'}`,
  );
  await assertUnharmed(ledger, 'a stray certificate posing as a member');
});
