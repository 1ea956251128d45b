// Output of the client commands: short human text (values, small aligned tables) and the JSON
// form of --json, which keeps the API's own shapes so scripts see what the HTTP API returns.
import { RaftKvClientError, type EndpointStatus, type KvRecord, type Member } from '../client/index.js';

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

export function statusTable(statuses: readonly EndpointStatus[]): string {
  const rows = statuses.map((s) =>
    'status' in s
      ? [s.endpoint, s.status.id, s.status.role, String(s.status.term), s.status.leader ?? '-', String(s.status.commitIndex), String(s.status.appliedIndex), String(s.status.lastIndex)]
      : [s.endpoint, '-', `unreachable: ${oneLine(s.error.message)}`],
  );
  return table(['ENDPOINT', 'ID', 'ROLE', 'TERM', 'LEADER', 'COMMIT', 'APPLIED', 'LAST'], rows);
}

export function statusJson(statuses: readonly EndpointStatus[]): unknown[] {
  return statuses.map((s) => ('status' in s ? { endpoint: s.endpoint, status: s.status } : { endpoint: s.endpoint, error: errorJson(s.error).error }));
}

export function membersTable(members: readonly Member[]): string {
  return table(['ID', 'ROLE', 'PEER', 'CLIENT'], members.map((m) => [m.id, m.role, m.peerAddr, m.clientAddr]));
}

export function errorJson(err: Error): { error: { code: string; message: string; status?: number } } {
  const code = err instanceof RaftKvClientError ? err.code : 'ERROR';
  const status = err instanceof RaftKvClientError && err.status !== null ? { status: err.status } : {};
  return { error: { code, message: oneLine(err.message), ...status } };
}

export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
