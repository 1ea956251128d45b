// etcd's address flags for `raftkv serve` (src/cli/url-flags.ts): each becomes its HOST:PORT
// twin, a bad value is a usage error naming the flag, and a node that binds 0.0.0.0 with etcd's
// flags tells its peers and clients the advertised address (checked on a real process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { translateUrlFlags } from '../../src/cli/url-flags.js';
import { parseServeConfig } from '../../src/cli/serve.js';
import { UsageError } from '../../src/cli/flags.js';
import { childEnv, freePorts, makeTempDir, pollUntil, removeTempDir, runMain, TestNode } from '../cluster/harness.js';
import { http } from '../cluster/http.js';

test('etcd URL flags become the HOST:PORT flags, from argv or the environment', () => {
  const argv = translateUrlFlags(
    ['--id', 'a', '--listen-client-urls', 'http://0.0.0.0:2379', '--listen-peer-urls=http://0.0.0.0:2380', '--advertise-client-urls', 'http://a.example.internal:2379', '--initial-advertise-peer-urls', 'http://[fd00::1]:2380', '--data-dir', '/tmp/x', '--initial-cluster', 'a=[fd00::1]:2380'],
    {},
  );
  const cfg = parseServeConfig(argv, {});
  assert.deepEqual(cfg.clientAddr, { host: '0.0.0.0', port: 2379 });
  assert.deepEqual(cfg.peerAddr, { host: '0.0.0.0', port: 2380 });
  assert.deepEqual(cfg.advertiseClientAddr, { host: 'a.example.internal', port: 2379 });
  assert.deepEqual(cfg.advertisePeerAddr, { host: 'fd00::1', port: 2380 });
  const fromEnv = translateUrlFlags(['--id', 'a'], { RAFTKV_LISTEN_CLIENT_URLS: 'https://10.0.0.5:443', RAFTKV_CERT_FILE: '/c.pem' });
  assert.deepEqual(fromEnv, ['--id', 'a', '--client-addr', '10.0.0.5:443'], 'a default port written out is kept');
  assert.deepEqual(translateUrlFlags(['--client-addr', '1.2.3.4:5'], {}), ['--client-addr', '1.2.3.4:5'], 'nothing to translate: unchanged');
  // etcd's --initial-cluster names members by URL.
  assert.deepEqual(
    translateUrlFlags(['--initial-cluster', 'a=https://a.internal:2380,b=b.internal:2380', '--peer-cert-file', 'c'], {}),
    ['--peer-cert-file', 'c', '--initial-cluster', 'a=a.internal:2380,b=b.internal:2380'],
  );
  assert.deepEqual(translateUrlFlags([], { RAFTKV_INITIAL_CLUSTER: 'a=http://10.0.0.1:2380' }), ['--initial-cluster', 'a=10.0.0.1:2380']);
});

test('bad etcd URL flag values are usage errors that name the flag', () => {
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['--listen-client-urls', 'http://a:1,http://b:2'], {}, /--listen-client-urls takes one URL/],
    [['--listen-client-urls', 'not a url'], {}, /--listen-client-urls must be a URL/],
    [['--listen-peer-urls', 'ftp://a:1'], {}, /--listen-peer-urls must use http or https/],
    [['--advertise-client-urls', 'http://a:1/path'], {}, /--advertise-client-urls must be scheme:\/\/HOST:PORT alone/],
    [['--advertise-client-urls', 'http://user:pw@a:1'], {}, /no credentials/],
    [['--initial-advertise-peer-urls', 'http://a'], {}, /--initial-advertise-peer-urls needs a port/],
    [['--listen-client-urls', 'https://a:1'], {}, /is https but --cert-file is not given/],
    [['--listen-peer-urls', 'http://a:1', '--peer-cert-file', 'x'], {}, /is http but --peer-cert-file turns TLS on/],
    [['--listen-client-urls', 'http://a:1', '--client-addr', 'a:1'], {}, /--listen-client-urls and --client-addr both set/],
    [['--listen-client-urls', 'http://a:1'], { RAFTKV_CLIENT_ADDR: 'a:2' }, /--listen-client-urls and RAFTKV_CLIENT_ADDR both set/],
    [[], { RAFTKV_LISTEN_PEER_URLS: 'http://a:99999' }, /RAFTKV_LISTEN_PEER_URLS must be a URL/],
    [['--initial-cluster', 'a=https://x:1'], {}, /--initial-cluster \(member a\) is https but --peer-cert-file is not given/],
    [['--initial-cluster', 'a=http://x:1/p'], {}, /--initial-cluster \(member a\) must be scheme:\/\/HOST:PORT alone/],
  ];
  for (const [argv, env, pattern] of cases) {
    assert.throws(() => translateUrlFlags(argv, env), (err: unknown) => err instanceof UsageError && pattern.test(err.message), `${argv.join(' ')} ${JSON.stringify(env)}`);
  }
  // The advertised address must be dialable: binding 0.0.0.0 without one is refused by serve.
  assert.throws(
    () => parseServeConfig(translateUrlFlags(['--id', 'a', '--data-dir', '/tmp/none', '--listen-client-urls', 'http://0.0.0.0:1', '--listen-peer-urls', 'http://127.0.0.1:2', '--initial-cluster', 'a=127.0.0.1:2'], {}), {}),
    /--advertise-client-addr is required when --client-addr binds 0.0.0.0/,
  );
});

test('a node started with etcd flags binds 0.0.0.0 and tells clients and itself the advertised address', async () => {
  const dir = makeTempDir('url-flags');
  const [peer, client] = await freePorts(2);
  const node = new TestNode('a', `127.0.0.1:${peer}`, `127.0.0.1:${client}`, join(dir, 'a'), join(dir, 'a.log'));
  try {
    const usage = await runMain(['serve', '--id', 'a', '--data-dir', join(dir, 'a'), '--listen-client-urls', 'http://0.0.0.0:1,http://0.0.0.0:2']);
    assert.equal(usage.code, 2);
    assert.equal(usage.stderr.trim().split('\n').length, 1);
    node.start(
      [
        'serve', '--id', 'a', '--data-dir', node.dataDir,
        '--listen-client-urls', `http://0.0.0.0:${client}`, '--listen-peer-urls', `http://0.0.0.0:${peer}`,
        '--advertise-client-urls', `http://127.0.0.1:${client}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-cluster', `a=127.0.0.1:${peer}`, '--heartbeat-ms', '50', '--election-ms', '300',
      ],
      childEnv(),
    );
    const members = await pollUntil('the node to register its advertised addresses', 15_000, async () => {
      const r = await http(node.url, '/v1/members').catch(() => null);
      const m = r?.status === 200 ? r.json<{ members: { id: string; peerAddr: string; clientAddr: string }[] }>().members : [];
      return m.length === 1 && m[0]!.clientAddr !== '' ? m : undefined;
    });
    assert.deepEqual(members.map((m) => [m.id, m.peerAddr, m.clientAddr]), [['a', `127.0.0.1:${peer}`, `127.0.0.1:${client}`]]);
    await pollUntil('a write through the bound address', 10_000, async () => ((await http(node.url, '/v1/kv/x', { method: 'PUT', body: '1' })).status === 200 ? true : undefined));
  } finally {
    await node.stop('SIGKILL').catch(() => undefined);
    removeTempDir(dir);
  }
});
