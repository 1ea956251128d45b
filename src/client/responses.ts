// Reading the server's JSON answers into the client's types, checking each field it relies on,
// so a malformed or foreign answer is a BAD_RESPONSE error rather than a wrong value.
import { RaftKvClientError } from './errors.js';
import type { Answer } from './http.js';
import type { KvRecord, Member, NodeStatus } from './types.js';
import { fromJsonValue } from './values.js';

export function json(answer: Answer): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(answer.body)) as unknown;
  } catch {
    throw new RaftKvClientError('BAD_RESPONSE', `${answer.endpoint} answered HTTP ${answer.status} with a body that is not JSON`, answer.status, { endpoint: answer.endpoint });
  }
}

export function badResponse(field: string, answer: Answer): RaftKvClientError {
  return new RaftKvClientError('BAD_RESPONSE', `${answer.endpoint} answered without a valid "${field}"`, answer.status, { endpoint: answer.endpoint });
}

export function objectBody(answer: Answer): Readonly<Record<string, unknown>> {
  if (answer.body.length === 0) return {};
  const body = json(answer);
  return body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : { result: body };
}

export function numberField(body: unknown, field: string, answer: Answer): number {
  const v = body !== null && typeof body === 'object' ? (body as Record<string, unknown>)[field] : undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw badResponse(field, answer);
  return v;
}

export function recordFromJson(raw: unknown, answer: Answer): KvRecord {
  const r = raw as { key?: unknown; value?: unknown; encoding?: unknown };
  if (r === null || typeof r !== 'object' || typeof r.key !== 'string' || typeof r.value !== 'string') throw badResponse('key/value', answer);
  return {
    key: r.key,
    value: fromJsonValue(r.value, r.encoding),
    createIndex: numberField(r, 'createIndex', answer),
    modIndex: numberField(r, 'modIndex', answer),
    version: numberField(r, 'version', answer),
    createRevision: numberField(r, 'createRevision', answer),
    modRevision: numberField(r, 'modRevision', answer),
    lease: numberField(r, 'lease', answer),
  };
}

export function memberFromJson(raw: unknown, answer: Answer): Member {
  const m = raw as Partial<Record<keyof Member, unknown>>;
  if (m === null || typeof m !== 'object' || typeof m.id !== 'string') throw badResponse('members[].id', answer);
  return {
    id: m.id,
    peerAddr: typeof m.peerAddr === 'string' ? m.peerAddr : '',
    clientAddr: typeof m.clientAddr === 'string' ? m.clientAddr : '',
    role: m.role === 'learner' ? 'learner' : 'voter',
  };
}

export function statusFromJson(raw: unknown, answer: Answer): NodeStatus {
  const s = raw as Record<string, unknown>;
  if (s === null || typeof s !== 'object' || typeof s.id !== 'string' || typeof s.role !== 'string') throw badResponse('id/role', answer);
  return {
    id: s.id,
    role: s.role,
    term: numberField(s, 'term', answer),
    leader: typeof s.leader === 'string' ? s.leader : null,
    commitIndex: numberField(s, 'commitIndex', answer),
    appliedIndex: numberField(s, 'appliedIndex', answer),
    lastIndex: numberField(s, 'lastIndex', answer),
    members: Array.isArray(s.members) ? s.members.map((m: unknown) => memberFromJson(m, answer)) : [],
    clusterId: typeof s.clusterId === 'string' ? s.clusterId : null,
    alarms: Array.isArray(s.alarms) ? s.alarms.filter((a): a is string => typeof a === 'string') : [],
  };
}
