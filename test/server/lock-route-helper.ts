// Calls the lock routes (src/server/locks.ts) as the HTTP server would, with a parsed request:
// what the lock tests over a bare store share.
import assert from 'node:assert/strict';
import type { ParsedRequest } from '../../src/server/api-types.js';
import type { Reply } from '../../src/server/http-util.js';

export type RouteCall = (method: string, path: string, body?: unknown, query?: string, timeoutMs?: number) => Promise<Reply>;

/** `routes` called with a request of this method, path, JSON body, query and deadline. */
export function routeCaller(routes: (r: ParsedRequest) => Promise<Reply> | null, defaultTimeoutMs: number): RouteCall {
  return (method, path, body, query = '', timeoutMs = defaultTimeoutMs) => {
    const r: ParsedRequest = {
      method,
      path,
      query: new URLSearchParams(query),
      headers: {},
      body: body === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(body)),
      deadline: Date.now() + timeoutMs,
      principal: null,
    };
    const reply = routes(r);
    assert.ok(reply !== null, `${method} ${path} is a lock route`);
    return reply;
  };
}
