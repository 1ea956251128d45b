// Forwarding a request that needs the leader (writes, linearizable reads) from a follower to the
// leader, so a client may talk to any node. The answer is relayed as the leader gave it.
import { ApiError } from './errors.js';
import type { ForwardedRequest, ForwardedResponse } from './http-api.js';

export function httpForwarder(leaderUrl: () => string | null, timeoutMs: number): (req: ForwardedRequest) => Promise<ForwardedResponse> {
  return async (req) => {
    const base = leaderUrl();
    if (base === null) throw new ApiError('NO_LEADER', 'no leader is known');
    let res: Response;
    try {
      res = await fetch(base + req.path, {
        method: req.method,
        headers: req.headers,
        ...(req.body.length > 0 ? { body: req.body } : {}),
        signal: AbortSignal.timeout(timeoutMs + 1000),
      });
    } catch (err) {
      // A write may or may not have reached the leader: the outcome is unknown.
      const write = req.method !== 'GET';
      const reason = err instanceof Error ? err.message : String(err);
      if (write) throw new ApiError('TIMEOUT', `forwarding to the leader failed (${reason}); the outcome is unknown`);
      throw new ApiError('NO_LEADER', `the leader did not answer (${reason})`);
    }
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    return { status: res.status, headers, body: new Uint8Array(await res.arrayBuffer()) };
  };
}
