// The pure parts of retrying: backoff bounds, Retry-After parsing, and leader preference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { backoffDelayMs, parseRetryAfterMs } from '../../src/client/backoff.js';
import { EndpointSelector } from '../../src/client/endpoint-selector.js';

test('backoff grows exponentially, is at least half its step, and never exceeds the cap', () => {
  fc.assert(
    fc.property(fc.nat(40), fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 10_000 }), fc.option(fc.nat(100_000), { nil: undefined }), fc.double({ min: 0, max: 0.999, noNaN: true }), (retry, base, cap, retryAfter, r) => {
      const d = backoffDelayMs(retry, base, cap, retryAfter, () => r);
      const step = Math.min(cap, base * 2 ** retry);
      assert.ok(d <= cap);
      assert.ok(d >= step / 2);
      if (retryAfter !== undefined) assert.ok(d >= Math.min(cap, retryAfter));
    }),
  );
  assert.equal(backoffDelayMs(3, 50, 10_000, undefined, () => 1), 400);
});

test('Retry-After: delta seconds or an HTTP date; junk is ignored', () => {
  assert.equal(parseRetryAfterMs('2'), 2000);
  assert.equal(parseRetryAfterMs(' 0.5 '), 500);
  assert.equal(parseRetryAfterMs(null), undefined);
  assert.equal(parseRetryAfterMs('soon'), undefined);
  const now = Date.parse('2024-01-01T00:00:00Z');
  assert.equal(parseRetryAfterMs('Mon, 01 Jan 2024 00:00:03 GMT', now), 3000);
  assert.equal(parseRetryAfterMs('Sun, 31 Dec 2023 00:00:00 GMT', now), 0);
});

test('the selector prefers a named leader, drops it when it fails, and rotates otherwise', () => {
  const s = new EndpointSelector(['http://a:1/', 'http://b:2', 'http://a:1']);
  assert.deepEqual(s.endpoints, ['http://a:1', 'http://b:2']);
  assert.equal(s.next(), 'http://a:1');
  s.noteLeader('http://c:3', 'http://a:1', true);
  assert.equal(s.next(), 'http://c:3');
  s.noteFailure('http://c:3');
  assert.equal(s.knownLeader, null);
  assert.equal(s.next(), 'http://a:1');
  s.noteFailure('http://a:1');
  assert.equal(s.next(), 'http://b:2');
  // A node refusing the request while naming itself is not taken as the leader.
  s.noteLeader('http://b:2', 'http://b:2', false);
  assert.equal(s.knownLeader, null);
  // A node that failed and knows no leader clears a leader hint pointing at it.
  s.noteLeader('http://b:2', 'http://a:1', true);
  s.noteLeader(null, 'http://b:2', false);
  assert.equal(s.knownLeader, null);
});
