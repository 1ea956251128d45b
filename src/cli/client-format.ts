// Output of the client commands: short human text (values, small aligned tables) and the JSON
// form of --json, which keeps the API's own shapes so scripts see what the HTTP API returns.
import {
  NoSpaceError,
  OutcomeUnknownError,
  PermissionDeniedError,
  RaftKvClientError,
  TlsError,
  UnauthenticatedError,
  type EndpointReadiness,
  type EndpointStatus,
  type KvRecord,
  type Member,
} from '../client/index.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The API's JSON form of a record: value as UTF-8 text, or base64 beside `encoding`. */
export function recordJson(record: KvRecord): Record<string, unknown> {
  const { text, isBase64 } = displayValue(record.value);
  return {
    key: record.key,
    value: text,
    ...(isBase64 ? { encoding: 'base64' } : {}),
    createIndex: record.createIndex,
    modIndex: record.modIndex,
    version: record.version,
    createRevision: record.createRevision,
    modRevision: record.modRevision,
    lease: record.lease,
  };
}

export function displayValue(bytes: Uint8Array): { text: string; isBase64: boolean } {
  try {
    return { text: strictUtf8.decode(bytes), isBase64: false };
  } catch {
    return { text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'), isBase64: true };
  }
}

/** Columns padded to their widest cell; the last column is left ragged. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

const NO_ANSWER_CODES = new Set(['UNREACHABLE', 'NO_ANSWER']);

/**
 * One row per endpoint, every row with every column, so the table stays a table when a node is
 * down: the status columns, READY (its /readyz), and a NOTE with why it is not ready, its alarms,
 * or why it gave no status.
 */
export function statusTable(statuses: readonly EndpointStatus[], readiness: readonly EndpointReadiness[], describeError: (err: Error) => string = (err) => err.message): string {
  const rows = statuses.map((s, i) => {
    const ready = readiness[i];
    const isReady = ready?.isReady === true ? 'yes' : 'no';
    if ('status' in s) {
      const notes = [...(ready !== undefined && !ready.isReady ? [`not ready: ${withoutEndpoint(ready.reason ?? ready.code ?? '', s.endpoint)}`] : []), ...s.status.alarms.map((a) => `alarm ${a}`)];
      const st = s.status;
      return [s.endpoint, st.id, st.role, String(st.term), st.leader ?? '-', String(st.commitIndex), String(st.appliedIndex), String(st.lastIndex), isReady, oneLine(notes.join('; '))];
    }
    const code = s.error instanceof RaftKvClientError ? s.error.code : 'ERROR';
    const role = NO_ANSWER_CODES.has(code) ? 'unreachable' : 'error';
    return [s.endpoint, '-', role, '-', '-', '-', '-', '-', isReady, oneLine(withoutEndpoint(describeError(s.error), s.endpoint))];
  });
  return table(['ENDPOINT', 'ID', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'LAST', 'READY', 'NOTE'], rows);
}

/** The --json form: per endpoint its status (or error) and whether it is ready (or why not). */
export function statusJson(statuses: readonly EndpointStatus[], readiness: readonly EndpointReadiness[]): unknown[] {
  return statuses.map((s, i) => {
    const ready = readiness[i];
    const readyFields = ready?.isReady === true ? { ready: true } : { ready: false, notReady: { code: ready?.code ?? null, reason: ready?.reason ?? null } };
    return 'status' in s ? { endpoint: s.endpoint, ...readyFields, status: s.status } : { endpoint: s.endpoint, ...readyFields, error: errorJson(s.error).error };
  });
}

function withoutEndpoint(message: string, endpoint: string): string {
  return message.startsWith(`${endpoint}: `) ? message.slice(endpoint.length + 2) : message;
}

/** -w table for get and list: one row per key with its revisions and lease, the value last. */
export function recordsTable(records: readonly KvRecord[]): string {
  const rows = records.map((r) => [oneLine(r.key), String(r.createRevision), String(r.modRevision), String(r.version), r.lease === 0 ? '-' : String(r.lease), oneLine(displayValue(r.value).text)]);
  return table(['KEY', 'CREATE_REV', 'MOD_REV', 'VERSION', 'LEASE', 'VALUE'], rows);
}

export function membersTable(members: readonly Member[]): string {
  return table(['ID', 'ROLE', 'PEER', 'CLIENT'], members.map((m) => [m.id, m.role, m.peerAddr, m.clientAddr]));
}

export function errorJson(err: Error): { error: { code: string; message: string; status?: number } } {
  const code = err instanceof RaftKvClientError ? err.code : 'ERROR';
  const status = err instanceof RaftKvClientError && err.status !== null ? { status: err.status } : {};
  return { error: { code, message: oneLine(err.message), ...status } };
}

/** One line: the error, and for the ones a person must act on, what to do, in flag names. */
export function describe(err: Error, hasToken: boolean): string {
  const message = oneLine(err.message);
  if (err instanceof OutcomeUnknownError) return `${message} (idempotency key ${err.idempotencyKey})`;
  if (err instanceof UnauthenticatedError) {
    return `${message}; ${hasToken ? 'the node did not accept the token given' : 'the node wants a token: --token T or RAFTKV_TOKEN'}`;
  }
  if (err instanceof PermissionDeniedError) return `${message} (the token's permissions do not cover this; membership and leader transfer need an admin token)`;
  if (err instanceof NoSpaceError) return `${message} (the cluster is out of space: reads and deletes still work; free space or raise --quota-bytes)`;
  if (err instanceof TlsError) {
    const cause = err.cause instanceof Error ? oneLine(err.cause.message) : '';
    switch (err.failure) {
      case 'untrusted-certificate':
        return `${err.endpoint}: the node's certificate is not trusted (${cause}); pass the CA that signed it: --cacert FILE or RAFTKV_CACERT`;
      case 'certificate-refused':
        return `${err.endpoint}: the node refused the TLS connection (${errorCodeOf(err.cause)}); it may require a client certificate: --cert FILE --key FILE`;
      case 'not-tls':
        return `${err.endpoint}: the node does not speak TLS on this port; use http:// for it`;
    }
  }
  return message;
}

function errorCodeOf(err: unknown): string {
  const code = err !== null && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'TLS alert';
}

export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
