// The one HTTP client both systems are measured with: node:http over a keep-alive Agent, no
// parsing beyond reading the body to its end. Kept this light so the client costs the same per
// request whichever server it talks to.
import { Agent, request } from 'node:http';

export interface HttpTarget {
  readonly host: string;
  readonly port: number;
}

export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly body?: Buffer;
  readonly contentType?: string;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

export function targetOf(url: string): HttpTarget {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

export function keepAliveAgent(maxSockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
}

export function send(agent: Agent | undefined, target: HttpTarget, req: HttpRequest, timeoutMs: number): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-length': req.body?.length ?? 0 };
    if (req.contentType !== undefined) headers['content-type'] = req.contentType;
    const r = request({ host: target.host, port: target.port, method: req.method, path: req.path, headers, ...(agent ? { agent } : { agent: false }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    r.setTimeout(timeoutMs, () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    r.on('error', reject);
    r.end(req.body);
  });
}

/** A one-off JSON exchange (status, leader discovery); not on the measured path. */
export async function sendJson(target: HttpTarget, method: string, path: string, body: unknown, timeoutMs: number): Promise<{ status: number; json: unknown; headers: HttpResponse['headers'] }> {
  const res = await send(undefined, target, { method, path, ...(body === undefined ? {} : { body: Buffer.from(JSON.stringify(body)), contentType: 'application/json' }) }, timeoutMs);
  let json: unknown = null;
  try {
    json = JSON.parse(res.body.toString('utf8'));
  } catch {
    // not JSON: callers look at the status
  }
  return { status: res.status, json, headers: res.headers };
}
