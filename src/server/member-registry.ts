// The replicated registry beside the key-value data: member addresses (peer and client), so every
// node can tell clients where the leader is and restarted nodes find their peers without flags,
// and the cluster id (identity.ts), which the first leader draws and commits. Registry records
// travel through the log as entries whose first byte is MEMBER_RECORD_TAG (the KV codec never
// starts a command with it) followed by JSON, and ride in snapshots.
//
// Applying a record never throws: it is committed on every replica, so a record that does not
// parse or validate (a bug, or bytes from an older version) is skipped the same way everywhere and
// counted. What a node proposes is validated before (encodeMemberRecord), so that is the backstop.
import type { Entry, NodeId, SnapshotBytesSource, SnapshotWriter, StateMachine } from '../raft/index.js';
import { isAddress, isNodeId } from './address.js';
import { CLUSTER_ID_PATTERN } from './identity.js';
import { isLoadingInBackground, loadInBackground, readSourceRange, restoreSlices, sourceFrom, thenRestored, type RestoreInProgress, type SnapshotInProgress } from '../node/runtime.js';

/** A machine that writes its snapshot in slices behind a wrapper's header (KvStateMachine). */
interface PrefixedSlicedSnapshots {
  beginSnapshot(prefix: Uint8Array | null, writer: SnapshotWriter | null): SnapshotInProgress;
}

export const MEMBER_RECORD_TAG = 0xfe;
/** Version 1: [1][u32 n][JSON [[id, addresses], ...]][inner]; version 2: the JSON is {members, clusterId}. */
const SNAPSHOT_VERSION = 2;

export interface MemberAddresses {
  readonly peerAddr: string;
  readonly clientAddr: string;
  /** A learner that asked to become a voter: the leader promotes it once it has caught up. */
  readonly wantsVoter?: boolean;
  /** Where it serves the etcd v3 gRPC API (--etcd-addr), for etcd's MemberList; absent: not served. */
  readonly etcdAddr?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function tagged(json: unknown): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(json));
  const out = new Uint8Array(bytes.length + 1);
  out[0] = MEMBER_RECORD_TAG;
  out.set(bytes, 1);
  return out;
}

/** Validates and encodes an address record (null: forget the member). Throws on bad input. */
export function encodeMemberRecord(id: NodeId, addresses: MemberAddresses | null): Uint8Array {
  if (!isNodeId(id)) throw new RangeError(`bad member id ${JSON.stringify(id)}`);
  if (addresses === null) return tagged({ id, removed: true });
  if (!isValidAddresses(addresses)) throw new RangeError(`bad addresses for ${id}`);
  return tagged({
    id,
    peerAddr: addresses.peerAddr,
    clientAddr: addresses.clientAddr,
    ...(addresses.wantsVoter === true ? { wantsVoter: true } : {}),
    ...(addresses.etcdAddr !== undefined ? { etcdAddr: addresses.etcdAddr } : {}),
  });
}

export function encodeClusterIdRecord(clusterId: string): Uint8Array {
  if (!CLUSTER_ID_PATTERN.test(clusterId)) throw new RangeError('a cluster id is 32 hex digits');
  return tagged({ clusterId });
}

function isValidAddresses(a: MemberAddresses): boolean {
  return isAddress(a.peerAddr) && isAddress(a.clientAddr) && (a.etcdAddr === undefined || isAddress(a.etcdAddr));
}

/** Wraps the KV state machine; applies registry records itself and passes the rest through. */
export class ServiceStateMachine<R> implements StateMachine<R | undefined> {
  readonly addresses = new Map<NodeId, MemberAddresses>();
  /** Registry records skipped because they did not parse or validate (equal on every replica). */
  invalidRecords = 0;
  private id: string | null = null;
  /** Called after a registry record is applied or a snapshot restored. */
  onAddressesChanged: (() => void) | null = null;
  /** Called once the cluster id is known (applied or restored). */
  onClusterId: ((clusterId: string) => void) | null = null;
  private appliedListener: ((result: unknown) => void) | null = null;

  constructor(readonly inner: StateMachine<R>) {}

  /** `listener` hears each result the inner machine applies (the lease keeper follows grants and revokes by it); it must not throw. */
  onApplied(listener: (result: R) => void): void {
    this.appliedListener = listener as (result: unknown) => void;
  }

  get clusterId(): string | null {
    return this.id;
  }

  apply(entry: Entry): R | undefined {
    if (entry.type === 'normal' && entry.data.length > 0 && entry.data[0] === MEMBER_RECORD_TAG) {
      this.applyRecord(entry.data);
      return undefined;
    }
    const result = this.inner.apply(entry);
    if (this.appliedListener !== null) this.appliedListener(result);
    return result;
  }

  private applyRecord(data: Uint8Array): void {
    let rec: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(decoder.decode(data.subarray(1)));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new TypeError('not an object');
      rec = parsed as Record<string, unknown>;
    } catch {
      this.invalidRecords++;
      return;
    }
    if ('clusterId' in rec) {
      const id = rec['clusterId'];
      if (typeof id !== 'string' || !CLUSTER_ID_PATTERN.test(id)) {
        this.invalidRecords++;
        return;
      }
      // The first id committed is the cluster's; a second leader's draw (it could not have seen
      // the first one committed yet) changes nothing.
      if (this.id === null) {
        this.id = id;
        this.onClusterId?.(id);
      }
      return;
    }
    const id = rec['id'];
    if (!isNodeId(id)) {
      this.invalidRecords++;
      return;
    }
    if (rec['removed'] === true) {
      this.addresses.delete(id);
    } else {
      const a = { peerAddr: rec['peerAddr'], clientAddr: rec['clientAddr'] };
      if (!isAddress(a.peerAddr) || !isAddress(a.clientAddr)) {
        this.invalidRecords++;
        return;
      }
      const etcdAddr = rec['etcdAddr'];
      this.addresses.set(id, { peerAddr: a.peerAddr, clientAddr: a.clientAddr, ...(rec['wantsVoter'] === true ? { wantsVoter: true } : {}), ...(isAddress(etcdAddr) ? { etcdAddr } : {}) });
    }
    this.notify(() => this.onAddressesChanged?.());
  }

  /** A listener's failure is the listener's problem; it must not make apply throw. */
  private notify(f: () => void): void {
    try {
      f();
    } catch {
      // Listeners validate what they use; nothing applied depends on them.
    }
  }

  /** The snapshot's header: version, registry length, registry. */
  private snapshotHeader(): Uint8Array {
    const registry = encoder.encode(JSON.stringify({ members: [...this.addresses], clusterId: this.id }));
    const out = new Uint8Array(5 + registry.length);
    out[0] = SNAPSHOT_VERSION;
    new DataView(out.buffer).setUint32(1, registry.length);
    out.set(registry, 5);
    return out;
  }

  snapshot(): Uint8Array {
    const header = this.snapshotHeader();
    const inner = this.inner.snapshot();
    const out = new Uint8Array(header.length + inner.length);
    out.set(header, 0);
    out.set(inner, header.length);
    return out;
  }

  /**
   * A snapshot written in slices while apply goes on (the runtime's SlicedSnapshots): the inner
   * machine writes it behind our header when it can (KvStateMachine does), so neither the whole
   * store is serialized in one turn of the loop nor its bytes copied once more here; and into
   * the `writer`, if given. An inner machine that cannot slice is snapshotted at once, at the
   * first step, into memory.
   */
  beginSnapshot(writer: SnapshotWriter | null = null): SnapshotInProgress {
    const header = this.snapshotHeader();
    const inner = this.inner as Partial<PrefixedSlicedSnapshots>;
    if (typeof inner.beginSnapshot === 'function') return inner.beginSnapshot(header, writer);
    let over = false;
    return {
      step: () => {
        if (over) throw new Error('snapshot already complete or abandoned');
        over = true;
        const body = this.inner.snapshot();
        const out = new Uint8Array(header.length + body.length);
        out.set(header, 0);
        out.set(body, header.length);
        return out;
      },
      abandon: () => {
        over = true;
      },
    };
  }

  restore(data: Uint8Array): void {
    const { members, clusterId, body } = parseServiceSnapshot(data);
    this.inner.restore(body);
    this.adoptRegistry(members, clusterId);
  }

  /**
   * restore() in slices (node/runtime.ts, SlicedRestores), if the inner state machine restores
   * in slices (else in one step): the registry is parsed first and adopted with the inner state,
   * by the last step.
   */
  beginRestore(data: Uint8Array): RestoreInProgress {
    const { members, clusterId, body } = parseServiceSnapshot(data);
    return thenRestored(restoreSlices(this.inner, body), () => this.adoptRegistry(members, clusterId));
  }

  /**
   * beginRestore() from a snapshot read where it lies (its file): the header is read here, and
   * the rest handed to the inner state machine as a source of its own (read through its file if
   * the inner machine can, KvStateMachine can; else read whole).
   */
  beginRestoreThrough(source: SnapshotBytesSource): RestoreInProgress {
    const end = serviceHeaderEnd(readSourceRange(source, 0, Math.min(source.bytes, SERVICE_HEAD_BYTES)), source.bytes);
    const { members, clusterId } = parseRegistry(readSourceRange(source, 0, end));
    return thenRestored(restoreSlices(this.inner, sourceFrom(source, end)), () => this.adoptRegistry(members, clusterId));
  }

  /** The inner state machine's background load (node/runtime.ts, BackgroundLoads), if it has one. */
  get isLoadingInBackground(): boolean {
    return isLoadingInBackground(this.inner);
  }

  loadInBackground(): boolean {
    return loadInBackground(this.inner);
  }

  private adoptRegistry(members: readonly [NodeId, MemberAddresses][], clusterId: string | null): void {
    this.addresses.clear();
    for (const [id, a] of members) if (isNodeId(id) && isValidAddresses(a)) this.addresses.set(id, a);
    if (clusterId !== null && this.id === null && typeof clusterId === 'string' && CLUSTER_ID_PATTERN.test(clusterId)) {
      this.id = clusterId;
      this.notify(() => this.onClusterId?.(clusterId));
    }
    this.notify(() => this.onAddressesChanged?.());
  }
}

/** A service snapshot's fixed head: version u8, registry length u32. */
const SERVICE_HEAD_BYTES = 5;

/** A service snapshot's header: the registry, the cluster id, and the inner state machine's bytes after it. */
function parseServiceSnapshot(data: Uint8Array): { members: [NodeId, MemberAddresses][]; clusterId: string | null; body: Uint8Array } {
  const end = serviceHeaderEnd(data, data.length);
  return { ...parseRegistry(data.subarray(0, end)), body: data.subarray(end) };
}

/** Where the header ends (the inner bytes begin), from its head (`head`, at least its first 5 bytes) and the snapshot's length. */
function serviceHeaderEnd(head: Uint8Array, length: number): number {
  const version = head[0];
  if (version !== 1 && version !== 2) throw new Error(`unknown service snapshot version ${version}`);
  if (head.length < SERVICE_HEAD_BYTES || length < SERVICE_HEAD_BYTES) throw new Error('service snapshot shorter than its header');
  const n = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(1);
  if (SERVICE_HEAD_BYTES + n > length) throw new Error('service snapshot registry overruns it');
  return SERVICE_HEAD_BYTES + n;
}

/** The registry of the whole header `header` (serviceHeaderEnd checked its length). */
function parseRegistry(header: Uint8Array): { members: [NodeId, MemberAddresses][]; clusterId: string | null } {
  const version = header[0];
  const parsed = JSON.parse(decoder.decode(header.subarray(SERVICE_HEAD_BYTES))) as unknown;
  const members = (version === 1 ? parsed : (parsed as { members: unknown }).members) as [NodeId, MemberAddresses][];
  const clusterId = version === 1 ? null : (parsed as { clusterId: string | null }).clusterId;
  if (!Array.isArray(members)) throw new Error('service snapshot registry is not a list');
  return { members, clusterId };
}

/**
 * A service snapshot with its registry replaced (`raftkv snapshot restore`: a new cluster keeps the
 * store but not the old members' addresses, which its members register again, nor the old cluster
 * id: null lets the new cluster's first leader draw one). Throws on a snapshot it cannot read.
 */
export function replaceSnapshotRegistry(data: Uint8Array, members: readonly (readonly [NodeId, MemberAddresses])[], clusterId: string | null): Uint8Array {
  if (data.length < 5 || (data[0] !== 1 && data[0] !== 2)) throw new Error(`unknown service snapshot version ${data[0]}`);
  const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1);
  if (5 + n > data.length) throw new Error('service snapshot registry overruns it');
  const registry = encoder.encode(JSON.stringify({ members, clusterId }));
  const inner = data.subarray(5 + n);
  const out = new Uint8Array(5 + registry.length + inner.length);
  out[0] = SNAPSHOT_VERSION;
  new DataView(out.buffer).setUint32(1, registry.length);
  out.set(registry, 5);
  out.set(inner, 5 + registry.length);
  return out;
}
