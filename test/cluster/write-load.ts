// A background write load for the process-level tests: a few writers, each a RaftKvClient that
// puts fresh keys one after another and records which writes the cluster acknowledged. After the
// test has shaken the cluster, assertAckedEverywhere() reads every key back with linearizable
// reads through each given node: API.md's "nothing acknowledged is ever lost while a majority
// survives", and no write applied twice despite the client's retries (thesis §6.3).
import assert from 'node:assert/strict';
import { RaftKvClient } from '../../src/client/index.js';
import { pollUntil, type TestNode } from './harness.js';
import { http, type KvRecordJson } from './http.js';

export interface WriteLoadOptions {
  /** Client URLs the writers may use; a dead one is skipped (connection refused is a clean retry). */
  readonly endpoints: readonly string[];
  /** Keys are `${prefix}/w<writer>/<seq>`; no '%' or '?' in it. */
  readonly prefix: string;
  /** @default 3 */
  readonly writers?: number;
  /** One logical write's bound, retries included. @default 4000 */
  readonly timeoutMs?: number;
  /** For a secure cluster: the CA its certificates are signed by, and a token that may write. */
  readonly security?: { readonly ca: Buffer; readonly token: string };
}

export interface WriteLoad {
  readonly prefix: string;
  /** key → value, for every write the cluster acknowledged with a 200. */
  readonly acked: Map<string, string>;
  /** key → value, for every write tried (acknowledged or not). */
  readonly attempted: Map<string, string>;
  /** Writes that failed or whose outcome is unknown, with the reason. */
  readonly failures: string[];
  /** Acknowledgement times (Date.now()), in order. */
  readonly ackTimes: number[];
  /** Waits (bounded) until `n` more writes are acknowledged than when called. */
  waitForMore(n: number, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

const runningLoads = new Set<WriteLoad>();

/** Stops every load still running (a test that failed midway leaves its load behind); for after() hooks. */
export async function stopAllLoads(): Promise<void> {
  await Promise.all([...runningLoads].map((load) => load.stop()));
}

export function startWriteLoad(options: WriteLoadOptions): WriteLoad {
  const acked = new Map<string, string>();
  const attempted = new Map<string, string>();
  const failures: string[] = [];
  const ackTimes: number[] = [];
  let isStopping = false;
  const writer = async (w: number): Promise<void> => {
    const client = new RaftKvClient({
      endpoints: [...options.endpoints],
      timeoutMs: options.timeoutMs ?? 4000,
      attemptTimeoutMs: 1000,
      backoffMs: 20,
      maxBackoffMs: 200,
      clientId: `${options.prefix.replace(/\//g, '-')}-w${w}-${Math.random().toString(36).slice(2, 8)}`,
      ...(options.security !== undefined ? { ca: options.security.ca, token: options.security.token } : {}),
    });
    for (let seq = 0; !isStopping; seq++) {
      const key = `${options.prefix}/w${w}/${String(seq).padStart(6, '0')}`;
      const value = `v-${w}-${seq}-${Math.random().toString(36).slice(2, 10)}`;
      attempted.set(key, value);
      try {
        await client.put(key, value);
        acked.set(key, value);
        ackTimes.push(Date.now());
      } catch (err) {
        failures.push(`${key}: ${(err as Error).name}: ${(err as Error).message}`);
        // A cluster without a leader answers at once; do not spin.
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const running = Promise.all(Array.from({ length: options.writers ?? 3 }, (_, w) => writer(w)));
  const load: WriteLoad = {
    prefix: options.prefix,
    acked,
    attempted,
    failures,
    ackTimes,
    async waitForMore(n, timeoutMs) {
      const target = ackTimes.length + n;
      await pollUntil(`${n} more acknowledged writes (${ackTimes.length} so far; last failure: ${failures.at(-1) ?? 'none'})`, timeoutMs, async () => (ackTimes.length >= target ? true : undefined));
    },
    async stop() {
      isStopping = true;
      await running;
      runningLoads.delete(load);
    },
  };
  runningLoads.add(load);
  return load;
}

/** Every key under the load's prefix, read through `node` with the given consistency. */
export async function readAll(node: TestNode, prefix: string, consistency: 'linearizable' | 'stale'): Promise<Map<string, KvRecordJson>> {
  const r = await http(node.url, `/v1/kv?prefix=${encodeURIComponent(`${prefix}/`)}&limit=10000&consistency=${consistency}`, { timeoutMs: 10_000 });
  assert.equal(r.status, 200, `list through ${node.id}: ${r.status} ${r.text.slice(0, 300)}`);
  const body = r.json<{ items: KvRecordJson[]; more: boolean }>();
  assert.equal(body.more, false, 'more than 10000 keys: the test wrote more than it can check');
  return new Map(body.items.map((item) => [item.key, item]));
}

/**
 * Through each of `nodes`, a linearizable read of the whole prefix holds every acknowledged
 * write with its value, only values somebody wrote, and each key applied once.
 */
export async function assertAckedEverywhere(nodes: readonly TestNode[], load: WriteLoad): Promise<void> {
  assert.ok(load.acked.size > 0, 'the load acknowledged no write at all');
  for (const node of nodes) {
    const stored = await readAll(node, load.prefix, 'linearizable');
    for (const [key, value] of load.acked) {
      assert.equal(stored.get(key)?.value, value, `acknowledged write ${key} is missing or wrong when read through ${node.id}`);
    }
    for (const [key, record] of stored) {
      assert.equal(record.value, load.attempted.get(key), `${key} holds a value nobody wrote (through ${node.id})`);
      assert.equal(record.version, 1, `${key} was applied ${record.version} times (through ${node.id})`);
    }
  }
}
