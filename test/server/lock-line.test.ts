// The first in a lock's line is the contender created first, however many there are: a line read
// as a list cut at 10,000 keys in key order once crowned a second holder past that many.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvStateMachine, encodeCommand } from '../../src/kv/index.js';
import { lineLeader } from '../../src/server/locks.js';

test('the lock line\'s first is the earliest created key under NAME/, also past 10,000 contenders', () => {
  const kv = new KvStateMachine();
  let index = 0;
  const put = (key: string): void => {
    kv.apply({ index: ++index, term: 1, type: 'normal', data: encodeCommand({ type: 'put', key, value: new Uint8Array([1]), time: index }) });
  };
  // Created first, but last in key order ("z…" after every hex digit).
  put('job/zzzz');
  for (let i = 0; i < 10_050; i++) put(`job/${i.toString(16).padStart(5, '0')}`);
  put('jobx/0'); // another name sharing the prefix's first letters is not in the line
  const first = lineLeader(kv, 'job');
  assert.equal(first?.key, 'job/zzzz');
  assert.equal(first?.revision, 2, 'the store\'s first write is revision 2');
  assert.equal(lineLeader(kv, 'nobody'), undefined);
});
