// Forwarding a request that needs the leader (writes, linearizable and lease reads) from a
// follower to the leader over the peer channel (the transport's rpc stream), so a client may
// talk to any node. The leader answers it through the same router as its own HTTP requests.
//   request  = 0x01 | u32be n | JSON {method, path, headers} (n bytes) | body
//   response = u32be n | JSON {status, headers} (n bytes) | body
// Writes travel as proposals instead (proposals.ts, first byte 0x02).
import type { NodeId } from '../raft/index.js';
import { ApiError } from './errors.js';
import type { ForwardedRequest, ForwardedResponse } from './http-api.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `kind` (when given) leads the frame: the rpc stream carries forwarded requests and proposal batches. */
function frame(kind: number | null, head: unknown, body: Uint8Array): Uint8Array {
  const json = encoder.encode(JSON.stringify(head));
  const at = kind === null ? 0 : 1;
  const out = new Uint8Array(at + 4 + json.length + body.length);
  if (kind !== null) out[0] = kind;
  new DataView(out.buffer).setUint32(at, json.length);
  out.set(json, at + 4);
  out.set(body, at + 4 + json.length);
  return out;
}

function unframe(bytes: Uint8Array): { head: Record<string, unknown>; body: Uint8Array } {
  if (bytes.length < 4) throw new Error('forwarded frame too short');
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  if (4 + n > bytes.length) throw new Error('forwarded frame header overruns it');
  const head: unknown = JSON.parse(decoder.decode(bytes.subarray(4, 4 + n)));
  if (typeof head !== 'object' || head === null || Array.isArray(head)) throw new Error('forwarded frame header is not an object');
  return { head: head as Record<string, unknown>, body: bytes.subarray(4 + n) };
}

export const FORWARDED_REQUEST_KIND = 0x01;

export function encodeForwardedRequest(req: ForwardedRequest): Uint8Array {
  return frame(FORWARDED_REQUEST_KIND, { method: req.method, path: req.path, headers: req.headers, ...(req.principal !== undefined ? { principal: req.principal } : {}) }, req.body);
}

/** A string-to-string map, or null: forwarded headers become request headers, so nothing else may pass. */
function stringMap(x: unknown): Record<string, string> | null {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return null;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(x)) {
    if (typeof v !== 'string') return null;
    out[k] = v;
  }
  return out;
}

export function decodeForwardedRequest(bytes: Uint8Array): ForwardedRequest {
  if (bytes[0] !== FORWARDED_REQUEST_KIND) throw new Error('not a forwarded request');
  const { head, body } = unframe(bytes.subarray(1));
  const headers = stringMap(head['headers']);
  const principal = head['principal'];
  if (typeof head['method'] !== 'string' || typeof head['path'] !== 'string' || !head['path'].startsWith('/') || headers === null || (principal !== undefined && typeof principal !== 'string')) {
    throw new Error('malformed forwarded request');
  }
  return { method: head['method'], path: head['path'], headers, body, ...(principal !== undefined ? { principal } : {}) };
}

export function encodeForwardedResponse(res: ForwardedResponse): Uint8Array {
  return frame(null, { status: res.status, headers: res.headers }, res.body);
}

export function decodeForwardedResponse(bytes: Uint8Array): ForwardedResponse {
  const { head, body } = unframe(bytes);
  const headers = stringMap(head['headers']);
  const status = head['status'];
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599 || headers === null) {
    throw new Error('malformed forwarded response');
  }
  return { status, headers, body };
}

/** The peer-channel request function the forwarder needs (TcpTransport.request fits). */
export type PeerRequest = (to: NodeId, payload: Uint8Array, timeoutMs: number) => Promise<Uint8Array>;

export function peerForwarder(request: PeerRequest, leaderId: () => NodeId | null, timeoutMs: number): (req: ForwardedRequest) => Promise<ForwardedResponse> {
  return async (req) => {
    const leader = leaderId();
    if (leader === null) throw new ApiError('NO_LEADER', 'no leader is known');
    let answer: Uint8Array;
    try {
      answer = await request(leader, encodeForwardedRequest(req), timeoutMs + 1000);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const maybeDelivered = (err as { maybeDelivered?: boolean }).maybeDelivered !== false;
      // A write that may have reached the leader has an unknown outcome; anything else can retry.
      if (req.method !== 'GET' && maybeDelivered) throw new ApiError('TIMEOUT', `forwarding to the leader ${leader} failed (${reason}); the outcome is unknown`);
      throw new ApiError('NO_LEADER', `the leader ${leader} could not be reached (${reason})`);
    }
    return decodeForwardedResponse(answer);
  };
}
