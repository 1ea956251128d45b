// What raftkv's launchers start a member with (src/cli/member-env.ts): glibc's malloc on
// transparent huge pages, unless the caller set GLIBC_TUNABLES itself, which it keeps as it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memberEnv } from '../../src/cli/member-env.js';

test('memberEnv sets GLIBC_TUNABLES=glibc.malloc.hugetlb=1 when it is unset or empty, and changes nothing else', () => {
  const env = { PATH: '/usr/bin', HOME: '/root' };
  assert.deepEqual(memberEnv(env), { PATH: '/usr/bin', HOME: '/root', GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' });
  assert.deepEqual(env, { PATH: '/usr/bin', HOME: '/root' }, 'the caller’s object is not modified');
  assert.equal(memberEnv({ GLIBC_TUNABLES: '' })['GLIBC_TUNABLES'], 'glibc.malloc.hugetlb=1');
});

test('memberEnv keeps any GLIBC_TUNABLES the caller set: hugetlb either way, or other tunables (glibc 2.36 reads only the first)', () => {
  for (const tunables of ['glibc.malloc.hugetlb=0', 'glibc.malloc.hugetlb=2', 'glibc.malloc.arena_max=2', 'glibc.malloc.hugetlb=1:glibc.malloc.arena_max=2']) {
    const env = { GLIBC_TUNABLES: tunables };
    assert.equal(memberEnv(env), env, tunables);
  }
});
