// raftkv's side of the coordination benchmark, over its HTTP API (API.md "Coordination"):
// writes `PUT /v1/kv/{key}`; watches `GET /v1/watch?prefix=P&fromRevision=R`, Server-Sent Events,
// each watcher on a connection of its own (HTTP/1.1 holds one stream per connection; it is what a
// browser's EventSource does), every `data:` line decoded as JSON; leases `POST /v1/leases`,
// `POST /v1/leases/{id}/keepalive`, `DELETE /v1/leases/{id}`; locks `POST /v1/locks/{name}` and
// `DELETE /v1/locks/{name}/{key}`. Every other client holds one keep-alive connection to the
// member it was given, with node:http and no retries (a failure is counted as it failed); a
// follower forwards what needs the leader.
import { request, type Agent, type ClientRequest } from 'node:http';
import type { CoordinationTarget, KeepAliveSession, KeyWriter, LockSession, WatchCallbacks, WatchHandle } from './coordination-target.js';
import { keepAliveAgent, send, targetOf, type HttpResponse, type HttpTarget } from './http.js';
import type { RaftkvMemberAddress } from './raftkv-load.js';

/** Deadline of one request; a lock request waits for the lock within it. */
const REQUEST_TIMEOUT_MS = 30_000;

export function raftkvCoordination(members: readonly RaftkvMemberAddress[], leaderIndex: number): CoordinationTarget {
  const targets = members.map((m) => targetOf(m.url));
  const shared = members.map(() => keepAliveAgent(16));
  const json = async (agent: Agent, member: number, method: string, path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await send(agent, targets[member]!, {
      method,
      path,
      ...(body === undefined ? {} : { body: Buffer.from(JSON.stringify(body)), contentType: 'application/json' }),
    }, REQUEST_TIMEOUT_MS);
    return parsed(expectOk(res, `${method} ${path} on ${members[member]!.id}`));
  };
  return {
    system: 'raftkv',
    memberNames: members.map((m) => m.id),
    leaderIndex,
    notes: {
      watch: 'GET /v1/watch?prefix=…&fromRevision=… (Server-Sent Events), one HTTP/1.1 connection per watcher',
      keepAlive: 'POST /v1/leases/{id}/keepalive, one keep-alive HTTP/1.1 connection per client',
      lock: 'POST /v1/locks/{name} {"lease"} and DELETE /v1/locks/{name}/{key}, one keep-alive HTTP/1.1 connection per contender',
    },
    async revision() {
      const res = await send(shared[leaderIndex], targets[leaderIndex]!, { method: 'GET', path: '/v1/kv?prefix=bench-revision-probe%2F&limit=1' }, REQUEST_TIMEOUT_MS);
      expectOk(res, 'GET /v1/kv');
      const header = res.headers['raftkv-revision'];
      const revision = Number(Array.isArray(header) ? header[0] : header);
      if (!Number.isSafeInteger(revision) || revision < 0) throw new Error(`no Raftkv-Revision header in a KV answer (got ${String(header)})`);
      return revision;
    },
    writer(member): KeyWriter {
      const agent = keepAliveAgent(1);
      return {
        async put(key, value) {
          const path = `/v1/kv/${encodeURIComponent(key)}`;
          expectOk(await send(agent, targets[member]!, { method: 'PUT', path, body: value, contentType: 'application/octet-stream' }, REQUEST_TIMEOUT_MS), `PUT ${path}`);
        },
        close: () => agent.destroy(),
      };
    },
    watch: (member, prefix, fromRevision, callbacks) => openWatch(targets[member]!, members[member]!.id, prefix, fromRevision, callbacks),
    async grantLease(member, ttlSeconds) {
      const answer = await json(shared[member]!, member, 'POST', '/v1/leases', { ttlSeconds });
      if (typeof answer['id'] !== 'number' && typeof answer['id'] !== 'string') throw new Error(`POST /v1/leases answered no id: ${JSON.stringify(answer)}`);
      return String(answer['id']);
    },
    async revokeLease(member, lease) {
      await json(shared[member]!, member, 'DELETE', `/v1/leases/${lease}`, undefined);
    },
    keepAliveSession(member): KeepAliveSession {
      const agent = keepAliveAgent(1);
      return {
        async keepAlive(lease) {
          await json(agent, member, 'POST', `/v1/leases/${lease}/keepalive`, {});
        },
        close: () => agent.destroy(),
      };
    },
    lockSession(member): LockSession {
      const agent = keepAliveAgent(1);
      return {
        async lock(name, lease) {
          const answer = await json(agent, member, 'POST', `/v1/locks/${encodeURIComponent(name)}`, { lease: Number(lease) });
          const { key, revision } = answer;
          if (typeof key !== 'string' || typeof revision !== 'number') throw new Error(`a lock answer without key and revision: ${JSON.stringify(answer)}`);
          return { key, token: BigInt(revision) };
        },
        async unlock(name, key) {
          await json(agent, member, 'DELETE', `/v1/locks/${encodeURIComponent(name)}/${encodeURIComponent(key)}`, undefined);
        },
        close: () => agent.destroy(),
      };
    },
    close() {
      for (const a of shared) a.destroy();
    },
  };
}

/**
 * One SSE watch on a connection of its own. Resolves once the node answered 200 (the watch is
 * registered and will deliver everything from `fromRevision`); rejects with the node's error
 * otherwise. Each event is one `data:` line of JSON (SSE allows a message over several data
 * lines; raftkv writes one); only puts are passed on.
 */
function openWatch(target: HttpTarget, memberName: string, prefix: string, fromRevision: number, callbacks: WatchCallbacks): Promise<WatchHandle> {
  const path = `/v1/watch?prefix=${encodeURIComponent(prefix)}&fromRevision=${fromRevision}`;
  return new Promise((resolve, reject) => {
    let isClosed = false;
    let isOpen = false;
    const req: ClientRequest = request({ host: target.host, port: target.port, method: 'GET', path, agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => reject(new Error(`GET ${path} on ${memberName}: ${res.statusCode} ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`)));
        return;
      }
      isOpen = true;
      resolve({
        close() {
          isClosed = true;
          req.destroy();
        },
      });
      res.setEncoding('utf8');
      let pending = '';
      res.on('data', (chunk: string) => {
        pending += chunk;
        let end = pending.indexOf('\n');
        let from = 0;
        while (end >= 0) {
          const line = pending.slice(from, end);
          from = end + 1;
          end = pending.indexOf('\n', from);
          if (!line.startsWith('data:')) continue;
          let event: { type?: unknown; key?: unknown };
          try {
            event = JSON.parse(line.slice(5)) as { type?: unknown; key?: unknown };
          } catch {
            if (!isClosed) callbacks.onEnd(`not JSON: ${line.slice(0, 200)}`);
            continue;
          }
          if (event.type === 'put' && typeof event.key === 'string') callbacks.onPut(event.key);
          else if (event.type === 'compacted' && !isClosed) callbacks.onEnd(`compacted: ${line}`);
        }
        pending = pending.slice(from);
      });
      res.on('end', () => {
        if (!isClosed) callbacks.onEnd(`the stream from ${memberName} ended`);
      });
      res.on('error', (err) => {
        if (!isClosed) callbacks.onEnd(err.message);
      });
    });
    req.on('error', (err) => {
      if (!isOpen) reject(new Error(`GET ${path} on ${memberName}: ${err.message}`));
      else if (!isClosed) callbacks.onEnd(err.message);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => {
      if (!isOpen) req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`));
    });
    req.end();
  });
}

function expectOk(res: HttpResponse, what: string): HttpResponse {
  if (res.status !== 200) throw new Error(`${what}: ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
  return res;
}

function parsed(res: HttpResponse): Record<string, unknown> {
  const value: unknown = JSON.parse(res.body.toString('utf8'));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`not a JSON object: ${res.body.toString('utf8').slice(0, 200)}`);
  return value as Record<string, unknown>;
}
