// The raftkv side of the benchmark: closed-loop PUTs through raftkv's own typed client
// (RaftKvClient, src/client/), one client instance per benchmark client; by default, as the
// client does, they share one raftkv-mux connection per member (docs/mux.md), as etcd's clients
// share one HTTP/2 connection per member.
//
// The plain client follows the `raftkv-leader` header of every answer, so a client given a
// follower's address alone moves to the leader after its first request. For routing "spread"
// that would silently measure "leader", so each client gets the client's own transport
// (the same transport it builds for itself, LeanHttpTransport) wrapped to drop that header
// from answers: the client then stays on the member it was given, and the follower forwards.
// For "leader" the header is left alone. Either way the wrapper reads `raftkv-node`, the node
// that answered, so an answer from elsewhere is counted (LoadResult.misrouted).
import { RaftKvClient } from '../../src/client/index.js';
import { NodeHttpTransport, type FetchLike } from '../../src/client/node-transport.js';
import { LeanHttpTransport } from '../../src/client/lean-transport.js';
import { MuxTransport } from '../../src/client/mux-transport.js';
import type { LoadResult } from './load.js';
import { benchKey, memberIndexFor, runWriterWorkload, type BenchWriter, type WorkloadOptions } from './workload.js';

export interface RaftkvMemberAddress {
  /** The node id, what the `raftkv-node` header of an answer says. */
  readonly id: string;
  /** Client URL, `http://host:port`. */
  readonly url: string;
}

export type RaftkvLoadOptions = WorkloadOptions<RaftkvMemberAddress>;

/**
 * The cluster's members in id order, as the plain client reads them from `endpoint`. A node's
 * client address reaches the replicated member registry shortly after it starts, so this waits
 * (up to `timeoutMs`) until every member has one.
 */
export async function raftkvMembers(endpoint: string, timeoutMs = 10_000): Promise<RaftkvMemberAddress[]> {
  const client = new RaftKvClient({ endpoints: [endpoint], timeoutMs: Math.min(timeoutMs, 5000) });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const members = await client.members();
      if (members.every((m) => m.clientAddr !== '')) {
        return members
          .map((m) => ({ id: m.id, url: /^https?:\/\//.test(m.clientAddr) ? m.clientAddr : `http://${m.clientAddr}` }))
          .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      }
      if (Date.now() > deadline) throw new Error(`members without a client address after ${timeoutMs} ms: ${members.filter((m) => m.clientAddr === '').map((m) => m.id).join(', ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.close();
  }
}

/** One benchmark client: a RaftKvClient on one endpoint, and who answered its last request. */
class ObservedClient {
  readonly client: RaftKvClient;
  answeredBy = 'no answer';
  // The client's own default transport (RaftKvClient builds the same: raftkv-mux, one connection
  // per node shared by every client of the process, HTTP/1.1 for a node that refuses it);
  // BENCH_TRANSPORT=http1 for one HTTP/1.1 connection per client, =node for node:http's.
  private readonly http1 = process.env['BENCH_TRANSPORT'] === 'node' ? new NodeHttpTransport() : new LeanHttpTransport();
  private readonly mux = process.env['BENCH_TRANSPORT'] === undefined || process.env['BENCH_TRANSPORT'] === 'mux' ? new MuxTransport(this.http1.fetch) : null;
  private readonly transport: { readonly fetch: FetchLike } = this.mux ?? this.http1;

  constructor(endpoint: string, followsLeader: boolean) {
    const fetch: FetchLike = async (url, init) => {
      const response = await this.transport.fetch(url, init);
      this.answeredBy = response.headers.get('raftkv-node') ?? 'no raftkv-node header';
      if (!followsLeader) response.headers.delete('raftkv-leader');
      return response;
    };
    // ClientOptions.fetch is typed as the global fetch, though the client only ever calls it the
    // way FetchLike says (and its own transport is a FetchLike too).
    this.client = new RaftKvClient({ endpoints: [endpoint], fetch: fetch as unknown as typeof globalThis.fetch });
  }

  close(): void {
    this.mux?.close();
    this.http1.close();
  }
}

export type RaftkvWriterOptions = Pick<RaftkvLoadOptions, 'members' | 'leaderIndex' | 'routing' | 'concurrency' | 'keys' | 'value'>;

/** One ObservedClient per benchmark client, aimed by the routing; key index k is benchKey(k). */
export function raftkvWriter(o: RaftkvWriterOptions): BenchWriter {
  const clients = Array.from({ length: o.concurrency }, (_, c) => new ObservedClient(o.members[memberIndexFor(o.routing, c, o.members.length, o.leaderIndex)]!.url, o.routing === 'leader'));
  const keys = Array.from({ length: o.keys }, (_, k) => benchKey(k));
  return {
    async write(client, _member, key) {
      const observed = clients[client]!;
      await observed.client.put(keys[key]!, o.value);
      return observed.answeredBy;
    },
    close() {
      for (const c of clients) c.close();
    },
  };
}

export function runRaftkvLoad(o: RaftkvLoadOptions): Promise<LoadResult> {
  return runWriterWorkload(o, raftkvWriter(o));
}
