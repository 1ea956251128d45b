// The etcd side of the benchmark: closed-loop KV.Put calls over native gRPC, one channel (one
// HTTP/2 connection) per member shared by every client aimed at that member, like etcd's own
// clientv3. Each answer's header names the member that served it, so a client that was not
// served where it was aimed is counted (LoadResult.misrouted), never silently measured.
import type { LoadResult } from '../lib/load.js';
import { benchKey, runWriterWorkload, type BenchWriter, type WorkloadOptions } from '../lib/workload.js';
import { EtcdChannel, encodePut, type EncodedPut } from './etcd-channel.js';

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

/**
 * Up to this many keys, every key's request is encoded once before the run, so the hot path does
 * not encode the same bytes again; beyond it each write encodes its own (a million prebuilt
 * requests would hold ~0.4 GB in the benchmark's process, on the machine being measured).
 */
export const PREBUILT_PUTS_MAX_KEYS = 100_000;

export type EtcdWriterOptions = Pick<EtcdLoadOptions, 'members' | 'keys' | 'value' | 'requestTimeoutMs'>;

/** One channel per member, shared by every client aimed at it; key index k is benchKey(k). */
export function etcdWriter(o: EtcdWriterOptions): BenchWriter {
  const timeoutMs = o.requestTimeoutMs ?? 10_000;
  const channels = o.members.map((m) => new EtcdChannel(m.address));
  const encode = (k: number): EncodedPut => encodePut({ key: Buffer.from(benchKey(k)), value: o.value });
  const prebuilt = o.keys <= PREBUILT_PUTS_MAX_KEYS ? Array.from({ length: o.keys }, (_, k) => encode(k)) : null;
  return {
    async write(_client, member, key) {
      const answer = await channels[member]!.putEncoded(prebuilt?.[key] ?? encode(key), timeoutMs);
      return answer.header?.member_id ?? 'no header';
    },
    close() {
      for (const ch of channels) ch.close();
    },
  };
}

export function runEtcdLoad(o: EtcdLoadOptions): Promise<LoadResult> {
  return runWriterWorkload(o, etcdWriter(o));
}
