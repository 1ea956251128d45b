// The etcd side of the benchmark: closed-loop KV.Put calls over native gRPC, one channel (one
// HTTP/2 connection) per member shared by every client aimed at that member, like etcd's own
// clientv3. Each answer's header names the member that served it, so a client that was not
// served where it was aimed is counted (LoadResult.misrouted), never silently measured.
import type { LoadResult } from '../lib/load.js';
import { benchKey, runWorkload, type WorkloadOptions } from '../lib/workload.js';
import { EtcdChannel, encodePut } from './etcd-channel.js';

export interface EtcdMemberAddress {
  /** The member id as etcd reports it (decimal), what `header.member_id` of an answer says. */
  readonly id: string;
  readonly name: string;
  /** `host:port` of its client URL. */
  readonly address: string;
}

export interface EtcdLoadOptions extends WorkloadOptions<EtcdMemberAddress> {
  /** Deadline of one Put. @default 10000 */
  readonly requestTimeoutMs?: number;
}

export async function runEtcdLoad(o: EtcdLoadOptions): Promise<LoadResult> {
  const timeoutMs = o.requestTimeoutMs ?? 10_000;
  const channels = o.members.map((m) => new EtcdChannel(m.address));
  // Encoded once per key, so the hot path does not encode the same bytes again.
  const requests = Array.from({ length: o.keys }, (_, k) => encodePut({ key: Buffer.from(benchKey(k)), value: o.value }));
  try {
    return await runWorkload(o, async (_client, member, key) => {
      const answer = await channels[member]!.putEncoded(requests[key]!, timeoutMs);
      return answer.header?.member_id ?? 'no header';
    });
  } finally {
    for (const ch of channels) ch.close();
  }
}
