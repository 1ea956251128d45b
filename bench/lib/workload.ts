// The benchmark's workload, the same for both systems: which member each client talks to, and
// which key each write goes to. Routing "spread": client i talks to member i mod n, counting the
// members from the one after the leader, so two clients in three reach a follower, which
// forwards the write to the leader (raftkv over its peer channel, etcd as a Raft proposal);
// "leader": every client talks to the leader.
import { runClosedLoop, type LoadResult } from './load.js';

export const ROUTINGS = ['spread', 'leader'] as const;
export type Routing = (typeof ROUTINGS)[number];

export function parseRoutings(text: string): Routing[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const wrong = names.find((s) => !(ROUTINGS as readonly string[]).includes(s));
  if (names.length === 0 || wrong !== undefined) throw new Error(`--routing takes ${ROUTINGS.join(', ')} or both, not "${text}"`);
  return [...new Set(names)] as Routing[];
}

/**
 * Index (into the members, in a fixed order) of the member client `client` is aimed at. Spread
 * starts after the leader, so the one client of level 1 talks to a follower in every run and
 * for both systems; from the first member it would reach the leader whenever that one leads.
 */
export function memberIndexFor(routing: Routing, client: number, memberCount: number, leaderIndex: number): number {
  switch (routing) {
    case 'spread':
      return (leaderIndex + 1 + client) % memberCount;
    case 'leader':
      return leaderIndex;
    default: {
      const never: never = routing;
      throw new Error(`unknown routing ${String(never)}`);
    }
  }
}

/** The benchmark's keys: `bench-000042`, the same names for both systems. */
export function benchKey(k: number): string {
  return `bench-${String(k).padStart(6, '0')}`;
}

/**
 * The key the n-th operation of a run writes. 7919 is prime and does not divide the key count
 * (unless it is a multiple of 7919), so consecutive writes walk every key in a scattered order.
 */
export function keyIndexOf(n: number, keys: number): number {
  return (n * 7919) % keys;
}

export interface WorkloadOptions<Member extends { readonly id: string }> {
  /** In a fixed order; `spread` aims client i at members[(leaderIndex + 1 + i) mod n]. */
  readonly members: readonly Member[];
  readonly leaderIndex: number;
  readonly routing: Routing;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly keys: number;
  readonly value: Uint8Array;
  /** Count successes per window of this length too (LoadResult.windowOps). @default none */
  readonly windowMs?: number;
}

/**
 * The benchmark clients of one system, without a loop around them: `write(client, member, key)`
 * writes the value to key index `key` as benchmark client `client`, through member index
 * `member`, and resolves with the id of the member that answered. runWorkload drives one for a
 * time; other loops (a fill of every key once) drive the same clients.
 */
export interface BenchWriter {
  write(client: number, member: number, key: number): Promise<string>;
  /** Closes every connection the clients opened. */
  close(): void;
}

/**
 * The closed loop with each client aimed by the routing. `write(client, member, key)` writes
 * the value to key index `key` through member index `member`, and resolves with the id of the
 * member that answered.
 */
export function runWorkload<Member extends { readonly id: string }>(
  o: WorkloadOptions<Member>,
  write: (client: number, member: number, key: number) => Promise<string>,
): Promise<LoadResult> {
  const targetOf = Array.from({ length: o.concurrency }, (_, c) => memberIndexFor(o.routing, c, o.members.length, o.leaderIndex));
  return runClosedLoop({
    concurrency: o.concurrency,
    warmupMs: o.warmupMs,
    durationMs: o.durationMs,
    expectedMember: (c) => o.members[targetOf[c]!]!.id,
    operation: (c, n) => write(c, targetOf[c]!, keyIndexOf(n, o.keys)),
    ...(o.windowMs !== undefined ? { windowMs: o.windowMs } : {}),
  });
}

/** runWorkload with `writer`'s clients; closes them when the run ends, however it ends. */
export async function runWriterWorkload<Member extends { readonly id: string }>(o: WorkloadOptions<Member>, writer: BenchWriter): Promise<LoadResult> {
  try {
    return await runWorkload(o, (client, member, key) => writer.write(client, member, key));
  } finally {
    writer.close();
  }
}
