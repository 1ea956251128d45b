// The client reads an answer's headers from node:http's raw list (RawHeaders), as fetch's
// Headers would: names without case, repeated headers joined, delete() hides one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawHeaders } from '../../src/client/node-transport.js';
import { EndpointSelector } from '../../src/client/endpoint-selector.js';

test('RawHeaders reads like fetch Headers: any case, repeats joined, deleted ones gone', () => {
  const raw = ['Content-Type', 'application/json', 'raftkv-leader', 'http://127.0.0.1:2379', 'Vary', 'a', 'vary', 'b'];
  const h = new RawHeaders(raw);
  const f = new Headers();
  for (let i = 0; i < raw.length; i += 2) f.append(raw[i]!, raw[i + 1]!);
  for (const name of ['content-type', 'CONTENT-TYPE', 'Raftkv-Leader', 'vary', 'retry-after', 'content-typ']) {
    assert.equal(h.get(name), f.get(name), name);
  }
  h.delete('RAFTKV-LEADER');
  assert.equal(h.get('raftkv-leader'), null);
  assert.equal(h.get('content-type'), 'application/json');
});

test('the selector follows a changed leader header, and ignores one that is not an endpoint', () => {
  const s = new EndpointSelector(['http://127.0.0.1:1', 'http://127.0.0.1:2']);
  s.noteLeader('http://127.0.0.1:2', 'http://127.0.0.1:1', true);
  assert.equal(s.next(), 'http://127.0.0.1:2');
  s.noteLeader('http://127.0.0.1:2/', 'http://127.0.0.1:2', true);
  assert.equal(s.next(), 'http://127.0.0.1:2');
  s.noteLeader('not a url', 'http://127.0.0.1:2', true);
  assert.equal(s.next(), 'http://127.0.0.1:2', 'kept');
  s.noteLeader('not a url', 'http://127.0.0.1:2', true);
  s.noteLeader('http://127.0.0.1:1', 'http://127.0.0.1:2', true);
  assert.equal(s.next(), 'http://127.0.0.1:1', 'a new header is parsed again');
  s.noteLeader('http://127.0.0.1:1', 'http://127.0.0.1:1', false);
  assert.equal(s.next(), 'http://127.0.0.1:1', 'a node refusing while naming itself is not trusted, the old choice stays');
});
