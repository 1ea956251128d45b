// etcd's clients over TLS with a login, as docs/etcd.md tells users to connect: a real etcd with
// client TLS and auth enabled (user `admin`, role root), then a raftkv cluster with TLS and
// --auth-file (principal `admin`, whose token is the password), the same expectations on both
// (both.ts). etcdctl with --cacert and --user, the npm etcd3 client with `credentials` and `auth`;
// and what happens without them: no user, a wrong password, no CA, plain text.
//
// Not compared: the text of client-side TLS failures (Go's and grpc-js's own), ids.
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { etcdctl, etcdctlOk } from './etcdctl.js';
import { testBoth } from './both.js';
import { errorLines } from './shapes.js';
import { credentialFlags, Targets, uniquePrefix, type Target, type TargetCredentials } from './targets.js';

const targets = new Targets({ secure: true });
const clients = new Set<Etcd3>();
after(async () => {
  for (const c of clients) c.close();
  await targets.stopAll();
  // See etcd3-client.test.ts: etcd3 may keep retrying after a failed test; results are reported.
  setTimeout(() => process.exit(), 5000).unref();
});

function credentialsOf(t: Target): TargetCredentials {
  if (t.credentials === null) throw new Error(`the ${t.kind} target is not secure`);
  return t.credentials;
}

describe('TLS and a login', () => {
  testBoth(targets, 'etcdctl --cacert --user NAME:PASSWORD: put, get, txn and member list work', async (t) => {
    const flags = credentialFlags(credentialsOf(t));
    const p = uniquePrefix('secure');
    assert.equal(await etcdctlOk(t.endpoints, [...flags, 'put', `${p}k`, 'secret value']), 'OK\n');
    assert.equal(await etcdctlOk(t.endpoints, [...flags, 'get', `${p}k`, '--print-value-only']), 'secret value\n');
    assert.equal(await etcdctlOk(t.endpoints, [...flags, 'txn'], { stdin: `value("${p}k") = "secret value"\n\nput ${p}t yes\n\n\n` }), 'SUCCESS\n\nOK\n');
    assert.equal((await etcdctlOk(t.endpoints, [...flags, 'member', 'list'])).trim().split('\n').length, 3);
    // Every member, not only the one a balancer picked.
    for (const endpoint of t.endpoints) assert.equal(await etcdctlOk([endpoint], [...flags, 'get', `${p}t`, '--print-value-only']), 'yes\n');
  });

  testBoth(targets, 'without --user a request fails with etcd\'s "user name is empty"; with a wrong password, "authentication failed"', async (t) => {
    const c = credentialsOf(t);
    const p = uniquePrefix('secure-refused');
    const anonymous = await etcdctl(t.endpoints, [...credentialFlags(c, false), 'put', `${p}k`, 'v']);
    assert.notEqual(anonymous.code, 0);
    assert.deepEqual(errorLines(anonymous.stderr), ['etcdserver: user name is empty']);
    const wrong = await etcdctl(t.endpoints, [...credentialFlags(c, false), `--user=${c.user}:not-the-password`, 'get', `${p}k`]);
    assert.notEqual(wrong.code, 0);
    assert.deepEqual(errorLines(wrong.stderr), ['etcdserver: authentication failed, invalid user ID or password']);
    const stranger = await etcdctl(t.endpoints, [...credentialFlags(c, false), `--user=nobody:${c.password}`, 'get', `${p}k`]);
    assert.notEqual(stranger.code, 0);
    assert.deepEqual(errorLines(stranger.stderr), ['etcdserver: authentication failed, invalid user ID or password']);
    assert.equal(await etcdctlOk(t.endpoints, [...credentialFlags(c), 'get', `${p}k`]), '', 'nothing was written');
  });

  testBoth(targets, 'without the CA, or in plain text, etcdctl cannot talk to the TLS port at all', async (t) => {
    const c = credentialsOf(t);
    const noCa = await etcdctl(t.endpoints.slice(0, 1), [`--user=${c.user}:${c.password}`, '--insecure-transport=false', '--dial-timeout=2s', 'get', 'k']);
    assert.notEqual(noCa.code, 0, 'a server certificate from an unknown CA must be refused');
    const plain = await etcdctl(t.endpoints.slice(0, 1), [`--user=${c.user}:${c.password}`, '--dial-timeout=2s', 'get', 'k']);
    assert.notEqual(plain.code, 0, 'plain text to a TLS port must fail');
  });

  testBoth(targets, 'the npm etcd3 client with credentials.rootCertificate and auth: put and get; a wrong password is refused', async (t) => {
    const c = credentialsOf(t);
    const p = uniquePrefix('secure-etcd3');
    const make = (password: string): Etcd3 => {
      const client = new Etcd3({
        hosts: t.endpoints.map((e) => `https://${e}`),
        credentials: { rootCertificate: readFileSync(c.caPath) },
        auth: { username: c.user, password },
        dialTimeout: 5000,
        defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + 10_000 }),
      });
      clients.add(client);
      return client;
    };
    const good = make(c.password);
    const bad = make('not-the-password');
    try {
      await good.put(`${p}k`).value('over TLS');
      assert.equal(await good.get(`${p}k`).string(), 'over TLS');
      await assert.rejects(bad.get(`${p}k`).string(), /authentication failed, invalid user ID or password/);
    } finally {
      good.close();
      bad.close();
    }
  });
});
