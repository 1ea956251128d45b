// HTTP helpers for the process-level cluster tests: one request on a fresh connection with the
// path sent byte for byte (so malformed percent-encoding reaches the server as written), the
// API's error-body check, and a Prometheus text parser for /metrics.
import assert from 'node:assert/strict';
import { exchange, type ClientSecurity, type Reply } from '../../src/harness/index.js';

const security = new Map<string, ClientSecurity>();

/**
 * Every later http() to `origin` (https://HOST:PORT) trusts `s.ca` and sends `s.token`, so tests
 * written for a plain cluster run unchanged against a TLS cluster with --auth-file.
 */
export function setEndpointSecurity(origin: string, s: ClientSecurity): void {
  security.set(new URL(origin).origin, s);
}

export interface HttpReply extends Reply {
  readonly text: string;
  /** The body parsed as JSON; throws with the body in the message when it is not JSON. */
  json<T = Record<string, unknown>>(): T;
}

export interface HttpOptions {
  /** @default 'GET' */
  readonly method?: string;
  readonly body?: string | Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  /** Bound on the whole exchange. @default 5000 */
  readonly timeoutMs?: number;
}

/** One HTTP exchange (the harness's) with `base` (http://HOST:PORT) for `path` (sent as is, query included). */
export async function http(base: string, path: string, options: HttpOptions = {}): Promise<HttpReply> {
  const method = options.method ?? 'GET';
  const headers: Record<string, string> = { ...options.headers };
  // Every POST of the API takes JSON (415 otherwise); a test of that sets its own content type.
  if (method === 'POST' && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  let reply: Reply;
  try {
    reply = await exchange(base, path, { method, headers, body: options.body, timeoutMs: options.timeoutMs ?? 5000, security: security.get(new URL(base).origin) ?? null });
  } catch (err) {
    throw new Error(`${method} ${base}${path}: ${(err as Error).message}`);
  }
  const text = reply.body.toString('utf8');
  return {
    ...reply,
    text,
    json<T>(): T {
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new Error(`${method} ${path}: expected JSON, got ${reply.status}: ${text.slice(0, 200)}`);
      }
    },
  };
}

/** Like http(), but a connection error answers null (a node that is down or not up yet). */
export async function tryHttp(base: string, path: string, options: HttpOptions = {}): Promise<HttpReply | null> {
  try {
    return await http(base, path, options);
  } catch {
    return null;
  }
}

/** Asserts the API's error shape: the status, a JSON body {error:{code,message}}, and the code. */
export function assertApiError(reply: HttpReply, status: number, code: string | readonly string[], what: string): void {
  const context = `${what}: got ${reply.status} ${reply.text.slice(0, 300)}`;
  assert.equal(reply.status, status, context);
  assert.match(String(reply.headers['content-type']), /^application\/json/, `${context} (content-type)`);
  const body = reply.json<{ error?: { code?: unknown; message?: unknown } }>();
  assert.equal(typeof body.error, 'object', context);
  assert.equal(typeof body.error?.message, 'string', context);
  assert.ok((body.error?.message as string).length > 0, `${context} (an empty message)`);
  const codes: readonly string[] = typeof code === 'string' ? [code] : code;
  assert.ok(codes.includes(body.error?.code as string), `${context} (expected code ${codes.join(' or ')})`);
}

/** A record as GET /v1/kv/{key} answers it (src/kv/txn-json.ts). */
export type { KvRecordJson } from '../../src/kv/index.js';

/** GET /v1/status: the client library's type, so the tests read what users read. */
export type { NodeStatus } from '../../src/client/index.js';

/** Parses Prometheus text: series (`name` or `name{labels}` as written) to value. */
export { parseMetrics } from '../../src/harness/index.js';

/** The value of an unlabelled metric; fails when the metric is absent. */
export function metricValue(metrics: Map<string, number>, name: string): number {
  const v = metrics.get(name);
  assert.ok(v !== undefined && Number.isFinite(v), `metric ${name} is missing or not a number`);
  return v;
}

/** GET /v1/configuration: one node's own view of the configuration in force (thesis §4.1). */
/** GET /v1/configuration. */
export type { ConfigurationStatus as ConfigurationJson } from '../../src/client/index.js';
