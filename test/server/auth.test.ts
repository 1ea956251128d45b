// --auth-file: the file is checked whole (one line naming the problem), tokens map to principals,
// and permissions cover exactly the keys, ranges and operations they name.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { authorize, requestActions } from '../../src/server/access.js';
import { AuthFileError, Authenticator, hashToken, isPermitted, parseAuthConfig } from '../../src/server/auth.js';
import { ApiError } from '../../src/server/errors.js';

const APP = 'app-token-0123456789';
const OPS = 'ops-token-0123456789';
const READER = 'reader-token-0123456789';
const config = {
  principals: [
    { name: 'app', token: APP, permissions: [{ access: 'readwrite', prefix: 'app/' }] },
    { name: 'ops', tokenSha256: hashToken(OPS), permissions: [{ access: 'admin' }] },
    { name: 'reader', token: READER, permissions: [{ access: 'read', prefix: '' }] },
  ],
};

test('tokens name their principals; unknown, empty and near-miss tokens name none', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-auth-'));
  try {
    const file = join(dir, 'auth.json');
    writeFileSync(file, JSON.stringify(config));
    const auth = new Authenticator(file);
    assert.equal(auth.authenticate(APP)?.name, 'app');
    assert.equal(auth.authenticate(OPS)?.name, 'ops', 'a tokenSha256 entry authenticates the token it hashes');
    assert.equal(auth.authenticate(`${APP}x`), null);
    assert.equal(auth.authenticate(APP.slice(0, -1)), null);
    assert.equal(auth.authenticate(''), null);
    assert.equal(auth.byName('reader')?.name, 'reader');
    assert.equal(auth.byName('nobody'), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bad auth file is refused with one line naming it; a bad reload keeps the old file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-auth-'));
  try {
    const file = join(dir, 'auth.json');
    const cases: [unknown, RegExp][] = [
      [{}, /"principals" must be a non-empty array/],
      [{ principals: [{ name: 'a', token: 'short', permissions: [{ access: 'read' }] }] }, /token must be 16/],
      [{ principals: [{ name: 'a', token: APP, permissions: [{ access: 'write' }] }] }, /access must be one of/],
      [{ principals: [{ name: 'a', token: APP, permissions: [{ access: 'admin', prefix: 'x/' }] }] }, /admin covers every key/],
      [{ principals: [{ name: 'a', token: APP, permissions: [] }] }, /permissions must be a non-empty array/],
      [{ principals: [{ name: 'a', token: APP, permissions: [{ access: 'read' }] }, { name: 'b', token: APP, permissions: [{ access: 'read' }] }] }, /same token/],
      [{ principals: [{ name: 'a', token: APP, permissions: [{ access: 'read' }] }, { name: 'a', token: OPS, permissions: [{ access: 'read' }] }] }, /appears twice/],
      [{ principals: [{ name: 'bad name', token: APP, permissions: [{ access: 'read' }] }] }, /name must be/],
      [{ principals: [{ name: 'a', token: APP, permissions: [{ access: 'read' }], extra: 1 }] }, /unknown field "extra"/],
    ];
    for (const [raw, re] of cases) {
      assert.throws(() => parseAuthConfig(raw, file), (err: unknown) => err instanceof AuthFileError && re.test(err.message) && err.message.startsWith(file) && !err.message.includes('\n'));
    }
    writeFileSync(file, '{not json');
    assert.throws(() => new Authenticator(file), /not valid JSON/);
    writeFileSync(file, JSON.stringify(config));
    const auth = new Authenticator(file);
    writeFileSync(file, JSON.stringify({ principals: [] }));
    assert.throws(() => auth.reload(), AuthFileError);
    assert.equal(auth.authenticate(APP)?.name, 'app', 'the previous file stays in force');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('permissions: readwrite on a prefix, read everywhere, admin for the cluster', () => {
  const p = parseAuthConfig(config, 'auth.json');
  const app = p.byName.get('app')!;
  const reader = p.byName.get('reader')!;
  const ops = p.byName.get('ops')!;
  assert.ok(isPermitted(app, { type: 'write', key: 'app/x' }));
  assert.ok(!isPermitted(app, { type: 'write', key: 'apps' }), 'the prefix is a string prefix: "app/" does not cover "apps"');
  assert.ok(!isPermitted(app, { type: 'read', key: 'other' }));
  assert.ok(isPermitted(app, { type: 'read-range', prefix: 'app/sub' }));
  assert.ok(!isPermitted(app, { type: 'read-range', prefix: 'ap' }), 'a range wider than the permission is refused');
  assert.ok(!isPermitted(app, { type: 'admin' }));
  assert.ok(isPermitted(app, { type: 'cluster-read' }));
  assert.ok(isPermitted(reader, { type: 'read-range', prefix: '' }));
  assert.ok(!isPermitted(reader, { type: 'write', key: 'app/x' }));
  assert.ok(isPermitted(ops, { type: 'write', key: 'anything' }));
  assert.ok(isPermitted(ops, { type: 'admin' }));
});

test('every route needs its permission; a transaction needs one for every key it touches; unknown routes need admin', () => {
  const p = parseAuthConfig(config, 'auth.json');
  const app = p.byName.get('app')!;
  const req = (method: string, path: string, body = '', query = ''): Parameters<typeof authorize>[1] => ({ method, path, query: new URLSearchParams(query), body: Buffer.from(body) });
  const denied = (r: Parameters<typeof authorize>[1]): boolean => {
    try {
      authorize(app, r);
      return false;
    } catch (err) {
      assert.ok(err instanceof ApiError && err.code === 'PERMISSION_DENIED');
      return true;
    }
  };
  assert.ok(!denied(req('PUT', '/v1/kv/app%2Fa')));
  assert.ok(denied(req('PUT', '/v1/kv/other')));
  assert.ok(denied(req('GET', '/v1/kv', '', 'prefix=')));
  assert.ok(!denied(req('GET', '/v1/kv', '', 'prefix=app/')));
  const txn = (ops: unknown[], compare: unknown[] = []): string => JSON.stringify({ compare, success: ops, failure: [] });
  assert.ok(!denied(req('POST', '/v1/txn', txn([{ type: 'put', key: 'app/a', value: 'v' }]))));
  assert.ok(denied(req('POST', '/v1/txn', txn([{ type: 'put', key: 'app/a', value: 'v' }, { type: 'delete', key: 'x' }]))), 'one foreign key in the branch');
  assert.ok(denied(req('POST', '/v1/txn', txn([], [{ key: 'secret', target: 'version', op: '=', value: 0 }]))), 'a compare reads its key');
  assert.ok(denied(req('POST', '/v1/txn', txn([{ type: 'range', prefix: '' }]))), 'a range over every key');
  assert.ok(denied(req('POST', '/v1/members', '{}')));
  assert.ok(denied(req('POST', '/v1/leader/transfer', '{}')));
  assert.ok(denied(req('GET', '/v1/something-new')), 'deny by default');
  assert.ok(!denied(req('GET', '/v1/status')));
  assert.deepEqual(requestActions(req('POST', '/v1/txn', '{broken')), [], 'a malformed transaction names no key; its route answers 400');
  assert.ok(!denied(req('GET', '/v1/watch', '', 'key=app/a')), 'a key watch reads the key');
  assert.ok(denied(req('GET', '/v1/watch', '', 'key=other')));
  assert.ok(!denied(req('GET', '/v1/watch', '', 'prefix=app/')), 'a prefix watch reads the range');
  assert.ok(denied(req('GET', '/v1/watch', '', 'prefix=')), 'watching every key needs read on every key');
  assert.ok(denied(req('GET', '/v1/watch', '', 'prefix=ap')));
  assert.deepEqual(requestActions(req('GET', '/v1/watch', '', 'key=a&prefix=b')), [], 'a malformed watch names nothing; its route answers 400 before streaming');
});
