// etcd's side of the coordination benchmark, over etcd's native gRPC API: KV/Put for the writer,
// the Watch stream, LeaseGrant/LeaseRevoke and the LeaseKeepAlive stream, and v3lock's
// Lock/Unlock. Channels (HTTP/2 connections): one per member for the calls and keep-alive
// streams, the way etcd's Go client talks to each endpoint, and `watchChannelsPerMember` more per
// member for the watchers. Each watcher is its own Watch stream (one watch per stream, as raftkv's
// watchers have one connection each), its member's watch streams spread over that member's watch
// channels. clientv3 would put every watch of one client on one stream; one stream per watcher
// keeps the server's work per watcher the same shape as raftkv's.
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { SystemName } from '../lib/report.js';
import type { CoordinationTarget, KeepAliveSession, KeyWriter, LockSession, WatchHandle } from '../lib/coordination-target.js';
import { EtcdChannel } from './etcd-channel.js';
import type { EtcdMemberAddress } from './etcd-load.js';
import { etcdMethods, type LeaseIdRequest, type LeaseKeepAliveResponse, type WatchRequest, type WatchResponse } from './etcd-proto.js';

const CALL_TIMEOUT_MS = 30_000;

export interface EtcdCoordinationOptions {
  /** HTTP/2 connections per member that carry the watch streams. @default 1 */
  readonly watchChannelsPerMember?: number;
  /**
   * Whose servers these are: 'raftkv' when the members are raftkv's etcd ports (--etcd-addr), so
   * the same client code measures both servers. @default 'etcd'
   */
  readonly system?: SystemName;
}

export function etcdCoordination(members: readonly EtcdMemberAddress[], leaderIndex: number, o: EtcdCoordinationOptions = {}): CoordinationTarget {
  const methods = etcdMethods();
  const perMember = o.watchChannelsPerMember ?? 1;
  const calls = members.map((m) => new EtcdChannel(m.address));
  const watchChannels = members.map((m) => Array.from({ length: perMember }, () => new EtcdChannel(m.address)));
  const watchesOpened = members.map(() => 0);
  return {
    system: o.system ?? 'etcd',
    memberNames: members.map((m) => m.name),
    leaderIndex,
    notes: {
      watch: `etcdserverpb.Watch/Watch, one stream per watcher (one watch each), ${perMember} HTTP/2 channel${perMember === 1 ? '' : 's'} per member for the watch streams`,
      keepAlive: 'etcdserverpb.Lease/LeaseKeepAlive, one stream per client (one renewal in flight), one HTTP/2 channel per member',
      lock: 'v3lockpb.Lock/Lock and /Unlock, one HTTP/2 channel per member shared by its contenders',
    },
    async revision() {
      const answer = await calls[leaderIndex]!.range({ key: Buffer.from('bench-revision-probe/') }, CALL_TIMEOUT_MS);
      return Number(answer.header?.revision ?? NaN);
    },
    writer(member): KeyWriter {
      const channel = calls[member]!;
      return {
        async put(key, value) {
          await channel.put({ key: Buffer.from(key), value }, CALL_TIMEOUT_MS);
        },
        close: () => undefined,
      };
    },
    watch(member, prefix, fromRevision, callbacks) {
      const channel = watchChannels[member]![watchesOpened[member]!++ % perMember]!;
      const stream: ClientDuplexStream<WatchRequest, WatchResponse> = channel.bidi(methods.watch);
      return new Promise<WatchHandle>((resolve, reject) => {
        let isClosed = false;
        let isCreated = false;
        const end = (why: string): void => {
          if (!isCreated) reject(new Error(`watch on ${members[member]!.name}: ${why}`));
          else if (!isClosed) callbacks.onEnd(why);
        };
        stream.on('data', (r: WatchResponse) => {
          if (r.created && !isCreated) {
            isCreated = true;
            resolve({
              close() {
                isClosed = true;
                stream.cancel();
              },
            });
          }
          for (const e of r.events) {
            if (e.type === 'PUT' && e.kv !== null) callbacks.onPut(e.kv.key.toString());
          }
          if (r.canceled) end(`canceled: ${r.cancel_reason || `compacted at ${r.compact_revision}`}`);
        });
        stream.on('error', (err: Error) => end(err.message));
        stream.on('end', () => end('the stream ended'));
        stream.write({ create_request: { key: Buffer.from(prefix), range_end: prefixEnd(prefix), start_revision: fromRevision } });
      });
    },
    async grantLease(member, ttlSeconds) {
      const answer = await calls[member]!.leaseGrant(ttlSeconds, CALL_TIMEOUT_MS);
      if (answer.error !== '') throw new Error(`LeaseGrant: ${answer.error}`);
      return answer.ID;
    },
    async revokeLease(member, lease) {
      await calls[member]!.leaseRevoke(lease, CALL_TIMEOUT_MS);
    },
    keepAliveSession: (member) => keepAliveStream(calls[member]!, members[member]!.name),
    lockSession(member): LockSession {
      const channel = calls[member]!;
      return {
        async lock(name, lease) {
          const answer = await channel.lock(Buffer.from(name), lease, CALL_TIMEOUT_MS);
          if (answer.header === null) throw new Error('a LockResponse without a header');
          return { key: answer.key.toString('latin1'), token: BigInt(answer.header.revision) };
        },
        async unlock(_name, key) {
          await channel.unlock(Buffer.from(key, 'latin1'), CALL_TIMEOUT_MS);
        },
        close: () => undefined,
      };
    },
    close() {
      for (const c of [...calls, ...watchChannels.flat()]) c.close();
    },
  };
}

/** One LeaseKeepAlive stream: a renewal is sent, and its answer awaited, one at a time. */
function keepAliveStream(channel: EtcdChannel, memberName: string): KeepAliveSession {
  const stream: ClientDuplexStream<LeaseIdRequest, LeaseKeepAliveResponse> = channel.bidi(etcdMethods().leaseKeepAlive);
  const waiting: { resolve: () => void; reject: (err: Error) => void; lease: string }[] = [];
  let failure: Error | null = null;
  let isClosed = false;
  stream.on('data', (r: LeaseKeepAliveResponse) => {
    const w = waiting.shift();
    if (w === undefined) return;
    if (r.ID !== w.lease) w.reject(new Error(`LeaseKeepAlive answered lease ${r.ID} for ${w.lease}`));
    else if (Number(r.TTL) <= 0) w.reject(new Error(`lease ${w.lease} is gone`));
    else w.resolve();
  });
  const fail = (err: Error): void => {
    failure ??= err;
    for (const w of waiting.splice(0)) w.reject(err);
  };
  stream.on('error', (err: Error) => {
    if (!isClosed) fail(new Error(`LeaseKeepAlive on ${memberName}: ${err.message}`));
  });
  stream.on('end', () => fail(new Error(`LeaseKeepAlive on ${memberName}: the stream ended`)));
  return {
    keepAlive(lease) {
      if (failure !== null) return Promise.reject(failure);
      return new Promise<void>((resolve, reject) => {
        waiting.push({ resolve, reject, lease });
        stream.write({ ID: lease });
      });
    },
    close() {
      isClosed = true;
      stream.cancel();
    },
  };
}

/** The range_end that makes [prefix, end) every key starting with `prefix` (etcd's rule). */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
