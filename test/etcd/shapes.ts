// What `etcdctl -w json` prints, as far as the conformance tests read it, and small helpers over
// it. etcdctl marshals etcd's protobuf messages with Go's JSON rules: fields at their zero value
// are left out (a `succeeded: false`, a `version: 0`, an empty `kvs`), bytes are base64, and ids
// are 64-bit (parseJson keeps those of 16 digits and more as strings; `idOf` makes any of them one).
import { b64 } from './etcdctl.js';

export type Id = string | number;

export interface Header {
  readonly cluster_id?: Id;
  readonly member_id?: Id;
  readonly revision?: number;
  readonly raft_term?: number;
}

export interface JsonKv {
  readonly key: string;
  readonly value?: string;
  readonly create_revision?: number;
  readonly mod_revision?: number;
  readonly version?: number;
  readonly lease?: Id;
}

export interface RangeOutput {
  readonly header: Header;
  readonly kvs?: readonly JsonKv[];
  readonly more?: boolean;
  readonly count?: number;
}

export interface PutOutput {
  readonly header: Header;
  readonly prev_kv?: JsonKv;
}

export interface DeleteOutput {
  readonly header: Header;
  readonly deleted?: number;
  readonly prev_kvs?: readonly JsonKv[];
}

export interface TxnOutput {
  readonly header: Header;
  readonly succeeded?: boolean;
  readonly responses?: readonly {
    readonly Response: {
      readonly ResponsePut?: PutOutput;
      readonly ResponseRange?: RangeOutput;
      readonly ResponseDeleteRange?: DeleteOutput;
    };
  }[];
}

/** A key-value as the tests compare it: text, and 0 for what etcdctl left out. */
export interface Kv {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
}

export function kv(j: JsonKv): Kv {
  return { key: b64(j.key), value: b64(j.value), createRevision: j.create_revision ?? 0, modRevision: j.mod_revision ?? 0, version: j.version ?? 0 };
}

export const kvs = (out: { readonly kvs?: readonly JsonKv[] }): Kv[] => (out.kvs ?? []).map(kv);

/** The header's revision; every answer of etcd carries one. */
export function revisionOf(header: Header | undefined): number {
  const r = header?.revision;
  if (typeof r !== 'number' || r <= 0) throw new Error(`no revision in the header ${JSON.stringify(header)}`);
  return r;
}

/** A 64-bit id as decimal text ("0" when left out). */
export const idOf = (id: Id | undefined): string => (id === undefined ? '0' : String(id));

/** The lines etcdctl prints as `Error: ...` on stderr (its client library's log lines are JSON, and skipped). */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('Error: ')).map((l) => l.slice('Error: '.length).trim());
}
