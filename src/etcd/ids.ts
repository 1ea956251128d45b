// raftkv's ids as etcd's uint64s. Members are named by strings (`--id n1`) and the cluster by a
// string id (src/server/identity.ts); etcd's API carries both as uint64 (etcdctl prints them in
// hex). The mapping is stable and the same on every member: the first 8 bytes of
// SHA-256("raftkv-member:" + id) (or "raftkv-cluster:" + cluster id), big-endian, as a decimal
// string; 0 is never used (etcd reads 0 as "none"), it becomes 1. Lease ids are raftkv's own
// numbers (1 to 2^53 - 1), the same on both APIs.
import { createHash } from 'node:crypto';

const cache = new Map<string, string>();

function hashId(kind: string, id: string): string {
  const name = `${kind}:${id}`;
  let out = cache.get(name);
  if (out === undefined) {
    const digest = createHash('sha256').update(name).digest();
    const n = digest.readBigUInt64BE(0);
    out = (n === 0n ? 1n : n).toString();
    if (cache.size > 10_000) cache.clear();
    cache.set(name, out);
  }
  return out;
}

/** The uint64 (decimal) etcd's API shows for the raftkv member `id`. */
export function memberUint64(id: string): string {
  return hashId('raftkv-member', id);
}

/** The uint64 (decimal) for the cluster id; "0" while the cluster id is not yet known. */
export function clusterUint64(clusterId: string | null): string {
  return clusterId === null ? '0' : hashId('raftkv-cluster', clusterId);
}
