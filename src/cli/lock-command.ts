// `raftkv lock NAME [-- COMMAND]` and `raftkv elect NAME VALUE | NAME --listen` (API.md
// "Coordination"; etcdctl's lock and elect): entries of the client commands (client-commands.ts).
// A lock is held with a lease this process keeps alive; the command runs while it is held, with
// the lock's key and fencing token in its environment (RAFTKV_LOCK_KEY, RAFTKV_LOCK_TOKEN, as
// etcdctl sets ETCD_LOCK_KEY and ETCD_LOCK_REV). If the lease is lost while it runs, the command
// is stopped (SIGTERM) and the exit is 1: someone else may hold the lock from then on.
import { spawn } from 'node:child_process';
import type { LeaseLostError, RaftKvClient } from '../client/index.js';
import { ClientUsageError, expectPositionals, wholeNumberFlag, type OptionSpec, type ParsedCommand } from './client-args.js';

export const LOCK_USAGE = 'lock NAME [--ttl SECONDS] [-- COMMAND [ARGS...]]';
export const ELECT_USAGE = 'elect NAME VALUE [--ttl SECONDS] | elect NAME --listen';
const TTL: OptionSpec = { ttl: { type: 'string', value: 'SECONDS', description: 'TTL of the lease that holds it (kept alive while this runs)', default: '10' } };
export const LOCK_OPTIONS: OptionSpec = TTL;
export const ELECT_OPTIONS: OptionSpec = { ...TTL, listen: { type: 'boolean', description: 'print the leader now and at every change instead of campaigning' } };

export interface CoordinationCommandContext {
  readonly parsed: ParsedCommand;
  readonly args: readonly string[];
  readonly client: RaftKvClient;
  readonly isJson: boolean;
  readonly io: { readonly stdout: (s: string) => void; readonly stderr: (s: string) => void };
}

/** Resolves on SIGINT or SIGTERM (and stops listening then). */
function interrupted(): { promise: Promise<string>; off: () => void } {
  let off = (): void => undefined;
  const promise = new Promise<string>((resolve) => {
    const on = (signal: NodeJS.Signals): void => resolve(signal);
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
    off = () => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    };
  });
  return { promise, off };
}

export async function runLock({ parsed, args, client, isJson, io }: CoordinationCommandContext): Promise<number> {
  if (args.length === 0) throw new ClientUsageError(`"lock" needs NAME (usage: raftkv ${LOCK_USAGE})`);
  const [name, ...command] = args as [string, ...string[]];
  const ttlSeconds = wholeNumberFlag(parsed, 'ttl', 1, 9_000_000_000) ?? 10;
  const signal = interrupted();
  const abort = new AbortController();
  void signal.promise.then(() => abort.abort());
  let held;
  try {
    held = await client.lock(name, { ttlSeconds, signal: abort.signal });
  } catch (err) {
    signal.off();
    if (abort.signal.aborted) return 0;
    throw err;
  }
  const about = { name, key: held.key, token: held.token, lease: held.lease };
  try {
    if (command.length === 0) {
      io.stdout(isJson ? `${JSON.stringify(about)}\n` : `${held.key}\n`);
      const ended = await Promise.race([signal.promise.then(() => null), held.lost]);
      if (ended !== null) return lost(io, name, ended);
      return 0;
    }
    const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, RAFTKV_LOCK_KEY: held.key, RAFTKV_LOCK_TOKEN: String(held.token) } });
    const exited = new Promise<number>((resolve) => {
      child.once('error', (err) => {
        io.stderr(`error: could not run ${command[0]}: ${err.message}\n`);
        resolve(127);
      });
      child.once('exit', (code, sig) => resolve(code ?? (sig !== null ? 128 + signalNumber(sig) : 1)));
    });
    // A signal to this process goes on to the command; the lock is released once it exits.
    void signal.promise.then((sig) => child.kill(sig as NodeJS.Signals));
    const first = await Promise.race([exited.then((code) => ({ code })), held.lost.then((err) => ({ err }))]);
    if ('err' in first) {
      child.kill('SIGTERM');
      await exited;
      return lost(io, name, first.err);
    }
    return first.code;
  } finally {
    signal.off();
    await held.release().catch((err: unknown) => io.stderr(`warning: releasing ${held.key}: ${(err as Error).message} (its lease ends it within ${ttlSeconds} s)\n`));
  }
}

function lost(io: CoordinationCommandContext['io'], name: string, err: LeaseLostError): number {
  io.stderr(`error: the lock ${JSON.stringify(name)} was lost (${err.code}: ${err.message}); another holder may have it now\n`);
  return 1;
}

export async function runElect({ parsed, args, client, isJson, io }: CoordinationCommandContext): Promise<number> {
  if (parsed.values['listen'] === true) {
    const [name] = expectPositionals('elect', args, ['NAME']) as [string];
    return listen(client, name, isJson, io);
  }
  const [name, value] = expectPositionals('elect', args, ['NAME', 'VALUE']) as [string, string];
  const ttlSeconds = wholeNumberFlag(parsed, 'ttl', 1, 9_000_000_000) ?? 10;
  const signal = interrupted();
  const abort = new AbortController();
  void signal.promise.then(() => abort.abort());
  let leading;
  try {
    leading = await client.campaign(name, value, { ttlSeconds, signal: abort.signal });
  } catch (err) {
    signal.off();
    if (abort.signal.aborted) return 0;
    throw err;
  }
  try {
    io.stdout(isJson ? `${JSON.stringify({ name, key: leading.key, revision: leading.revision, value })}\n` : `${leading.key}\n${value}\n`);
    const ended = await Promise.race([signal.promise.then(() => null), leading.lost]);
    if (ended !== null) {
      io.stderr(`error: leadership of ${JSON.stringify(name)} was lost (${ended.code}); another contender may lead now\n`);
      return 1;
    }
    return 0;
  } finally {
    signal.off();
    await leading.resign().catch(() => undefined);
  }
}

/** Prints the leader now and at every change, until interrupted (a watch on the name's prefix). */
async function listen(client: RaftKvClient, name: string, isJson: boolean, io: CoordinationCommandContext['io']): Promise<number> {
  const signal = interrupted();
  const stop = new AbortController();
  void signal.promise.then(() => stop.abort());
  let last = '';
  const show = async (): Promise<void> => {
    const leader = await client.electionLeader(name);
    const text = leader === null ? '' : `${leader.key}\n${new TextDecoder().decode(leader.value)}`;
    if (text === last) return;
    last = text;
    if (isJson) io.stdout(`${JSON.stringify(leader === null ? { leader: null } : { key: leader.key, revision: leader.revision, value: new TextDecoder().decode(leader.value) })}\n`);
    else io.stdout(leader === null ? '(no leader)\n' : `${text}\n`);
  };
  try {
    await show();
    for await (const event of client.watch({ prefix: `${name}/` }, { signal: stop.signal })) {
      if (event.type === 'put' || event.type === 'delete') await show();
    }
    return 0;
  } finally {
    signal.off();
  }
}

function signalNumber(sig: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[sig] ?? 1;
}
