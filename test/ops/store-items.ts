// Every key of a node with what a restore or a recovery must keep of it (value, revisions,
// version, lease), read over the HTTP API: what the backup and recovery drills compare.
import assert from 'node:assert/strict';
import type { TestNode } from '../cluster/harness.js';
import { http } from '../cluster/http.js';

export interface Item {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly lease: number;
}

/** The node's keys (`query`: more parameters, e.g. `&revision=7`), and the revision it answered at. */
export async function storeItems(node: TestNode, query = ''): Promise<{ items: Item[]; revision: number }> {
  const reply = await http(node.url, `/v1/kv?prefix=&limit=10000${query}`, { timeoutMs: 10_000 });
  assert.equal(reply.status, 200, reply.text.slice(0, 300));
  const body = reply.json<{ items: Item[]; more: boolean }>();
  assert.equal(body.more, false);
  const items = body.items.map((i) => ({ key: i.key, value: i.value, createRevision: i.createRevision, modRevision: i.modRevision, version: i.version, lease: i.lease }));
  return { items, revision: Number(reply.headers['raftkv-revision']) };
}
