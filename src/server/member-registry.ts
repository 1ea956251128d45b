// The replicated registry of member addresses (peer and client) beside the key-value data, so
// every node can tell clients where the leader is and restarted nodes find their peers without
// flags. Registry records travel through the log as entries whose first byte is
// MEMBER_RECORD_TAG (the KV codec never starts a command with it) and ride in snapshots.
import type { Entry, NodeId, StateMachine } from '../raft/index.js';

export const MEMBER_RECORD_TAG = 0xfe;
const SNAPSHOT_VERSION = 1;

export interface MemberAddresses {
  readonly peerAddr: string;
  readonly clientAddr: string;
  /** A learner that asked to become a voter: the leader promotes it once it has caught up. */
  readonly wantsVoter?: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeMemberRecord(id: NodeId, addresses: MemberAddresses | null): Uint8Array {
  const json = encoder.encode(JSON.stringify({ id, ...(addresses ?? { removed: true }) }));
  const out = new Uint8Array(json.length + 1);
  out[0] = MEMBER_RECORD_TAG;
  out.set(json, 1);
  return out;
}

/** Wraps the KV state machine; applies registry records itself and passes the rest through. */
export class ServiceStateMachine<R> implements StateMachine<R | undefined> {
  readonly addresses = new Map<NodeId, MemberAddresses>();
  /** Called after a registry record is applied or a snapshot restored. */
  onAddressesChanged: (() => void) | null = null;

  constructor(readonly inner: StateMachine<R>) {}

  apply(entry: Entry): R | undefined {
    if (entry.type === 'normal' && entry.data.length > 0 && entry.data[0] === MEMBER_RECORD_TAG) {
      const rec = JSON.parse(decoder.decode(entry.data.subarray(1))) as { id: NodeId; peerAddr?: string; clientAddr?: string; wantsVoter?: boolean; removed?: boolean };
      if (rec.removed === true) this.addresses.delete(rec.id);
      else this.addresses.set(rec.id, { peerAddr: rec.peerAddr ?? '', clientAddr: rec.clientAddr ?? '', ...(rec.wantsVoter === true ? { wantsVoter: true } : {}) });
      this.onAddressesChanged?.();
      return undefined;
    }
    return this.inner.apply(entry);
  }

  snapshot(): Uint8Array {
    const registry = encoder.encode(JSON.stringify([...this.addresses]));
    const inner = this.inner.snapshot();
    const out = new Uint8Array(5 + registry.length + inner.length);
    const view = new DataView(out.buffer);
    out[0] = SNAPSHOT_VERSION;
    view.setUint32(1, registry.length);
    out.set(registry, 5);
    out.set(inner, 5 + registry.length);
    return out;
  }

  restore(data: Uint8Array): void {
    if (data[0] !== SNAPSHOT_VERSION) throw new Error(`unknown service snapshot version ${data[0]}`);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const n = view.getUint32(1);
    const entries = JSON.parse(decoder.decode(data.subarray(5, 5 + n))) as [NodeId, MemberAddresses][];
    this.addresses.clear();
    for (const [id, a] of entries) this.addresses.set(id, a);
    this.inner.restore(data.subarray(5 + n));
    this.onAddressesChanged?.();
  }
}
