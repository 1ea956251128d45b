// One logical request to the cluster: picks a node, follows the leader, retries with backoff
// inside a total deadline, and tells a write whose outcome is unknown from one that surely
// failed. A retried write carries the same Idempotency-Key, so the server applies it at most once
// (Raft dissertation §6.3).
import { backoffDelayMs, parseRetryAfterMs, sleep } from './backoff.js';
import { EndpointSelector } from './endpoint-selector.js';
import { AbortedError, OutcomeUnknownError, PermissionDeniedError, RaftKvClientError, TlsError, UnauthenticatedError, UnavailableError, errorFromResponse, isFinalCode, type TlsFailure } from './errors.js';
import { CONNECT_TIMEOUT, isMarkedNotSent, type FetchLike, type ResponseHeaders } from './node-transport.js';

export interface RequestSpec {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Path and query, starting with `/`. */
  readonly path: string;
  readonly body?: Uint8Array | string;
  readonly contentType?: string;
  /** Present on writes: the key every attempt of this write carries. */
  readonly idempotencyKey?: string;
  /** Statuses handed back to the caller instead of raised (404 for a get). */
  readonly passStatuses?: readonly number[];
  /** This request's total time, retries included, instead of the client's timeoutMs (a lease keepalive must not outlast its TTL). */
  readonly timeoutMs?: number;
  /** Aborted: the attempt in flight is cut and no other starts (AbortedError, or OutcomeUnknownError for a write that may have applied). */
  readonly signal?: AbortSignal;
}

export interface Answer {
  readonly status: number;
  readonly endpoint: string;
  readonly headers: ResponseHeaders;
  readonly body: Uint8Array;
}

export interface RequesterOptions {
  readonly selector: EndpointSelector;
  readonly fetch: FetchLike;
  /** Sent as `Authorization: Bearer <token>` on every attempt. */
  readonly token?: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly attemptTimeoutMs: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
}

// Errors of connecting that prove the request never left this process.
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);
// Ask the server to give up a little before we do, so a slow commit comes back as a 504 with
// its leader hint rather than as a silent abort.
const SERVER_DEADLINE_MARGIN_MS = 50;
/**
 * No retry starts with less time left than this: it could only be cut off by our own deadline,
 * and for a write that turns a clean refusal into an unknown outcome.
 */
const MIN_RETRY_MS = 2 * SERVER_DEADLINE_MARGIN_MS;

export class Requester {
  constructor(private readonly options: RequesterOptions) {}

  async request(spec: RequestSpec): Promise<Answer> {
    const o = this.options;
    const deadline = Date.now() + (spec.timeoutMs ?? o.timeoutMs);
    const isWrite = spec.idempotencyKey !== undefined;
    let mayHaveApplied = false;
    let last: RaftKvClientError | undefined;
    let lastRetryAfterMs: number | undefined;
    const tried = new Set<string>();
    let backoffs = 0;
    let attempts = 0;
    const started = Date.now();

    const signal = spec.signal;
    const stopIfAborted = (): void => {
      if (signal?.aborted !== true) return;
      if (mayHaveApplied) throw outcomeUnknown(spec, last);
      throw new AbortedError('ABORTED', `${spec.method} ${spec.path} was abandoned by its caller`, null, { cause: signal.reason });
    };
    for (let attempt = 0; attempt <= o.retries; attempt++) {
      stopIfAborted();
      const remaining = deadline - Date.now();
      if (remaining <= 0 || (attempts > 0 && remaining < MIN_RETRY_MS)) break;
      const endpoint = o.selector.next();
      tried.add(endpoint);
      attempts++;
      const attemptMs = Math.min(remaining, o.attemptTimeoutMs);
      let retryAfterMs: number | undefined;
      let hint: string | null = null;
      let wasUnreachable = false;
      try {
        const answer = await this.attempt(endpoint, spec, attemptMs);
        hint = answer.headers.get('raftkv-leader');
        const ok = answer.status < 400 || (spec.passStatuses?.includes(answer.status) ?? false);
        o.selector.noteLeader(hint, endpoint, ok);
        if (ok) return answer;
        const { code, message } = parseErrorBody(answer);
        if ((answer.status !== 503 && answer.status !== 504) || isFinalCode(code)) throw errorFromResponse(answer.status, code, message, endpoint);
        if (answer.status === 504 && isWrite) mayHaveApplied = true;
        retryAfterMs = parseRetryAfterMs(answer.headers.get('retry-after'));
        lastRetryAfterMs = retryAfterMs ?? lastRetryAfterMs;
        last = new UnavailableError(code, `${endpoint}: ${message}`, answer.status, { endpoint, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
      } catch (err) {
        if (err instanceof RaftKvClientError) {
          // A refusal at the door (TLS, token, permissions) says nothing about an earlier attempt
          // of this write that may have been applied, so the outcome stays unknown.
          if (mayHaveApplied && isRefusedAtTheDoor(err)) throw outcomeUnknown(spec, err);
          throw err;
        }
        const sent = !wasNeverSent(err);
        wasUnreachable = !sent;
        if (sent && isWrite) mayHaveApplied = true;
        last = networkError(endpoint, err, attemptMs);
        stopIfAborted();
      }
      o.selector.noteFailure(endpoint);
      if (attempt === o.retries) break;
      // Go on at once to a node not tried yet when this one is down (nothing to wait for) or
      // named another as leader (a redirect); otherwise back off, as a cluster mid-election
      // answers the same everywhere.
      const next = o.selector.next();
      const isRedirect = hint !== null && o.selector.knownLeader === next;
      const goOnNow = next !== endpoint && !tried.has(next) && (wasUnreachable || isRedirect);
      const delay = goOnNow ? 0 : backoffDelayMs(backoffs++, o.backoffMs, o.maxBackoffMs, retryAfterMs);
      if (Date.now() + delay + MIN_RETRY_MS > deadline) break;
      if (delay > 0) await sleep(delay, signal);
    }
    stopIfAborted();

    const cause = last;
    const endpointInfo = cause?.endpoint !== undefined ? { endpoint: cause.endpoint } : {};
    if (mayHaveApplied) throw outcomeUnknown(spec, cause);
    if (cause instanceof UnavailableError) {
      throw new UnavailableError(cause.code, `cluster unavailable (${attempts} attempts in ${Date.now() - started} ms); last error: ${cause.message}`, cause.status, {
        ...endpointInfo,
        cause,
        ...(lastRetryAfterMs !== undefined ? { retryAfterMs: lastRetryAfterMs } : {}),
      });
    }
    throw new UnavailableError('DEADLINE', `no attempt fit in the ${spec.timeoutMs ?? o.timeoutMs} ms deadline`, null);
  }

  /** One HTTP exchange with one node, no retries (e.g. status of every node). */
  async attempt(endpoint: string, spec: RequestSpec, attemptMs: number): Promise<Answer> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      'request-timeout': String(Math.max(1, attemptMs - SERVER_DEADLINE_MARGIN_MS)),
    };
    // A server refuses a POST without a JSON content type (415: a browser cannot send one without
    // a CORS preflight), so every POST says it, even one with no body.
    const contentType = spec.contentType ?? (spec.method === 'POST' ? 'application/json' : undefined);
    if (contentType !== undefined) headers['content-type'] = contentType;
    if (spec.idempotencyKey !== undefined) headers['idempotency-key'] = spec.idempotencyKey;
    if (this.options.token !== undefined) headers['authorization'] = `Bearer ${this.options.token}`;
    // A controller and a timer cleared on the answer, not AbortSignal.timeout(): that one costs
    // ~11 µs here and keeps a timer alive until it fires, thousands of them under load.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${attemptMs} ms`, 'TimeoutError')), attemptMs);
    const signal = spec.signal;
    const onAbort = (): void => controller.abort(signal?.reason);
    if (signal !== undefined) {
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    try {
      const response = await this.options.fetch(endpoint + spec.path, {
        method: spec.method,
        headers,
        ...(spec.body !== undefined ? { body: spec.body } : {}),
        signal: controller.signal,
      });
      const body = new Uint8Array(await response.arrayBuffer());
      return { status: response.status, endpoint, headers: response.headers, body };
    } catch (err) {
      const tls = tlsFailure(endpoint, err);
      if (tls !== undefined) throw tls;
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

function outcomeUnknown(spec: RequestSpec, cause: RaftKvClientError | undefined): OutcomeUnknownError {
  return new OutcomeUnknownError(
    `the write's outcome is unknown: it may or may not have been applied (at most once); last error: ${cause?.message ?? 'deadline passed'}`,
    cause?.status ?? null,
    spec.idempotencyKey!,
    { ...(cause?.endpoint !== undefined ? { endpoint: cause.endpoint } : {}), cause },
  );
}

function isRefusedAtTheDoor(err: RaftKvClientError): boolean {
  return err instanceof TlsError || err instanceof UnauthenticatedError || err instanceof PermissionDeniedError;
}

export function parseErrorBody(answer: Answer): { code: string; message: string } {
  try {
    const json = JSON.parse(new TextDecoder().decode(answer.body)) as { error?: { code?: unknown; message?: unknown } };
    const code = json.error?.code;
    const message = json.error?.message;
    if (typeof code === 'string') return { code, message: typeof message === 'string' ? message : code };
  } catch {
    // Not our JSON (a proxy's page, an old server): fall through to the status alone.
  }
  return { code: `HTTP_${answer.status}`, message: `HTTP ${answer.status} from ${answer.endpoint}` };
}

function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const inner = (e as { errors?: unknown }).errors;
    if (Array.isArray(inner) && inner.length > 0) return errorCode(inner[0]);
  }
  return undefined;
}

/** An UnavailableError for an attempt that got no HTTP answer: UNREACHABLE if never sent, else NO_ANSWER. */
export function networkError(endpoint: string, err: unknown, attemptMs: number): UnavailableError {
  return new UnavailableError(wasNeverSent(err) ? 'UNREACHABLE' : 'NO_ANSWER', `${endpoint}: ${describeNetworkError(err, attemptMs)}`, null, { endpoint, cause: err });
}

function wasNeverSent(err: unknown): boolean {
  if (isMarkedNotSent(err)) return true;
  const code = errorCode(err);
  return code !== undefined && NOT_SENT_CODES.has(code);
}

// OpenSSL's certificate verification results, as Node names them (X509_V_ERR_* without the prefix).
const UNTRUSTED_CERTIFICATE_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED',
  'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * A TlsError when `err` is a TLS failure that retrying cannot fix (an untrusted certificate, a
 * certificate the server refused, a peer that does not speak TLS); undefined for anything else.
 * In none of them did a request get past the node's TLS layer (with TLS 1.3 the client may have
 * written it before the node's alert arrived), so none leaves a write's outcome in doubt.
 */
function tlsFailure(endpoint: string, err: unknown): TlsError | undefined {
  const code = errorCode(err);
  if (code === undefined) return undefined;
  const reason = err instanceof Error ? err.message : String(err);
  let what: string;
  let failure: TlsFailure;
  if (UNTRUSTED_CERTIFICATE_CODES.has(code)) {
    failure = 'untrusted-certificate';
    what = `the node's certificate is not trusted (${reason}); give the CA that signed it (the ca option)`;
  } else if (/^(ERR_SSL_WRONG_VERSION_NUMBER|ERR_SSL_PACKET_LENGTH_TOO_LONG)$/.test(code) || (code === 'EPROTO' && /wrong version number|packet length too long/.test(reason))) {
    // A plain HTTP server answers a ClientHello with "HTTP/1.1 400", which is no TLS record.
    failure = 'not-tls';
    what = 'the node does not speak TLS on this port; use http:// for it';
  } else if (/^ERR_SSL_.*ALERT/.test(code)) {
    failure = 'certificate-refused';
    what = `the node refused the TLS connection (${code}): it may require a client certificate signed by its CA (the cert and key options)`;
  } else {
    return undefined;
  }
  return new TlsError(failure, `${endpoint}: ${what}`, { endpoint, cause: err });
}

function describeNetworkError(err: unknown, attemptMs: number): string {
  const code = errorCode(err);
  if (code === CONNECT_TIMEOUT) return `could not connect within ${attemptMs} ms`;
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${attemptMs} ms`;
  const message = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
}
