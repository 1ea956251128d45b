// `raftkv snapshot save FILE` and `raftkv snapshot restore FILE`: backup of a live cluster and a
// new cluster from it (docs/backup.md). save streams GET /v1/snapshot from the first endpoint that
// answers into FILE atomically (a temporary file, fsync, rename, directory fsync), checking the
// backup's length and SHA-256 as it arrives; restore checks the whole file, then writes one new
// member's data dir (snapshot-restore.ts); status checks a file as restore does and describes it.
// Exit codes: 0 done, 1 failed, 2 usage.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { open, rename, rm, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { BACKUP_TRAILER_BYTES, BackupFileError, backupHash, parseBackupHead, type BackupHeader } from '../server/backup-format.js';
import { SNAPSHOT_PATH } from '../server/backup-route.js';
import { COMMON_OPTIONS, ClientUsageError, endpointsFrom, outputFormat, expectPositionals, parseCommand, securityFrom, stringFlag, wholeNumberFlag, type ClientSecurity } from './client-args.js';
import { checkBackupFile, restoreDataDir, RestoreError, type RestoreOptions } from './snapshot-restore.js';
import { parseInitialCluster, UsageError, type FlagTable } from './flags.js';

export interface SnapshotIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

export const SNAPSHOT_USAGE = `usage: raftkv snapshot save FILE [--endpoints URL,URL] [--token T] [--cacert FILE] [--cert FILE --key FILE] [--timeout-ms N] [--json]
       raftkv snapshot restore FILE --data-dir DIR --id ID --initial-cluster ID=HOST:PORT,... [--initial-cluster-token T] [--json]
       raftkv snapshot status FILE [--json]
save: a consistent backup of the live cluster (admin permission), written to FILE atomically with a SHA-256.
restore: a new member's data dir for a NEW cluster with the backup's state; restore every member of the new
cluster from the same FILE with the same --initial-cluster, then start each with raftkv serve.
status: checks FILE through and through (as restore does) and says what it holds.`;

const SAVE_OPTIONS: FlagTable = {};
/**
 * How long save waits for the answer to begin (the member takes a snapshot first, seconds for
 * millions of keys) and, after that, for each next chunk. --timeout-ms overrides it.
 */
const SAVE_TIMEOUT_MS = 120_000;
const RESTORE_OPTIONS: FlagTable = {
  'data-dir': { type: 'string', value: 'DIR', isFile: true, description: 'restore: the new member\'s data dir (must be empty or absent)' },
  id: { type: 'string', value: 'ID', description: 'restore: the new member\'s id' },
  'initial-cluster': { type: 'string', value: 'ID=HOST:PORT,...', description: 'restore: the new cluster\'s members, the same for every member' },
  'initial-cluster-token': { type: 'string', value: 'TOKEN', description: 'restore: the new cluster\'s token, as serve takes it' },
};

/** Every flag of the snapshot commands, for help and completion (COMMON_OPTIONS apply to save). */
export const SNAPSHOT_FLAGS: FlagTable = {
  ...COMMON_OPTIONS,
  'timeout-ms': { ...COMMON_OPTIONS['timeout-ms']!, description: 'save: how long to wait for the snapshot to begin, and then for each next chunk', default: String(SAVE_TIMEOUT_MS) },
  ...SAVE_OPTIONS,
  ...RESTORE_OPTIONS,
};

export async function runSnapshot(argv: readonly string[], io: SnapshotIo, env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'save') return await save(rest, io, env);
    if (sub === 'restore') return await restore(rest, io, env);
    if (sub === 'status') return await status(rest, io);
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      io.stdout(`${SNAPSHOT_USAGE}\n`);
      return sub === undefined ? 2 : 0;
    }
    io.stderr(`raftkv: unknown snapshot command "${sub}" (save, restore or status)\n`);
    return 2;
  } catch (err) {
    if (err instanceof ClientUsageError || err instanceof UsageError) {
      io.stderr(`raftkv: ${err.message}\n`);
      return 2;
    }
    if (err instanceof BackupFileError || err instanceof RestoreError || err instanceof SaveError) {
      io.stderr(`raftkv: ${err.message}\n`);
      return 1;
    }
    // Anything else (a data dir that is a file, a full disk, a lock held by a running node): one line.
    io.stderr(`raftkv: snapshot ${sub} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
    return 1;
  }
}

/** A save that failed; one line. */
class SaveError extends Error {}

async function save(argv: readonly string[], io: SnapshotIo, env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const parsed = parseCommand('snapshot save', argv, SAVE_OPTIONS);
  if (parsed.values['help'] === true) {
    io.stdout(`${SNAPSHOT_USAGE}\n`);
    return 0;
  }
  const [file] = expectPositionals('snapshot save', parsed.positionals, ['FILE']) as [string];
  const endpoints = endpointsFrom(parsed, env);
  const timeoutMs = wholeNumberFlag(parsed, 'timeout-ms', 1, 600_000) ?? SAVE_TIMEOUT_MS;
  const security = securityFrom(parsed, env);
  const target = resolve(file);
  try {
    if ((await stat(dirname(target))).isDirectory() === false) throw new Error('not a directory');
  } catch {
    throw new ClientUsageError(`cannot write ${file}: its directory ${dirname(target)} does not exist`);
  }
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    let outcome: Downloaded | Refused;
    try {
      outcome = await download(endpoint, target, security, timeoutMs);
    } catch (err) {
      failures.push(`${endpoint}: ${(err as Error).message}`);
      continue;
    }
    if ('refused' in outcome) {
      // No permission is the same answer on every member: say it now rather than ask each.
      if (outcome.status === 401 || outcome.status === 403) throw new SaveError(`snapshot save refused by ${endpoint}: ${outcome.status} ${outcome.refused}`);
      failures.push(`${endpoint}: ${outcome.status} ${outcome.refused}`);
      continue;
    }
    const h = outcome.header;
    if (outputFormat(parsed) === 'json') io.stdout(`${JSON.stringify({ file: target, bytes: outcome.bytes, sha256: outcome.sha256, ...h })}\n`);
    else io.stdout(`saved ${target}: ${outcome.bytes} bytes, index ${h.index}, term ${h.term}, from ${h.node} of cluster ${h.clusterId ?? '(none yet)'}, sha256 ${outcome.sha256}\n`);
    return 0;
  }
  throw new SaveError(`snapshot save failed on every endpoint: ${failures.join('; ')}`);
}

interface Downloaded {
  readonly header: BackupHeader;
  readonly bytes: number;
  readonly sha256: string;
}

interface Refused {
  readonly status: number;
  readonly refused: string;
}

/** GET /v1/snapshot into `target` atomically; throws (connection, damage) or answers a refusal. */
async function download(endpoint: string, target: string, security: ClientSecurity, timeoutMs: number): Promise<Downloaded | Refused> {
  const url = new URL(SNAPSHOT_PATH, endpoint);
  const res = await new Promise<IncomingMessage>((done, fail) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
      method: 'GET',
      headers: security.token !== undefined ? { authorization: `Bearer ${security.token}` } : {},
      ...(url.protocol === 'https:' ? { ...(security.ca !== undefined ? { ca: security.ca } : {}), ...(security.cert !== undefined ? { cert: security.cert, key: security.key } : {}) } : {}),
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('response', done);
    req.on('error', fail);
    req.end();
  });
  // Between chunks too: a stalled stream is a failed save, not a hung command.
  res.setTimeout(timeoutMs, () => res.destroy(new Error(`the backup stalled for ${timeoutMs} ms`)));
  if (res.statusCode !== 200) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res as AsyncIterable<Buffer>) {
      if (size < 64 * 1024) chunks.push(c);
      size += c.length;
    }
    let reason = Buffer.concat(chunks).toString('utf8').slice(0, 500);
    try {
      const body = JSON.parse(reason) as { error?: { code?: string; message?: string } };
      if (body.error !== undefined) reason = `${body.error.code ?? ''} ${body.error.message ?? ''}`.trim();
    } catch {
      // Not JSON: the text as it came.
    }
    return { status: res.statusCode ?? 0, refused: reason.replace(/\s+/g, ' ') };
  }
  const expected = Number(res.headers['content-length']);
  const temporary = `${target}.tmp-${process.pid}`;
  const handle = await open(temporary, 'wx', 0o600);
  let isRenamed = false;
  try {
    const hash = backupHash();
    let head: Buffer | null = Buffer.alloc(0);
    let header: BackupHeader | null = null;
    let headBytes = 0;
    // The last 32 bytes seen may be the trailer: hashed only once more bytes follow them.
    let tail = Buffer.alloc(0);
    let total = 0;
    for await (const c of res as AsyncIterable<Buffer>) {
      total += c.length;
      if (Number.isFinite(expected) && total > expected) throw new SaveError(`${endpoint} sent more than the ${expected} bytes it announced`);
      if (head !== null) {
        head = Buffer.concat([head, c]);
        let parsedHead: ReturnType<typeof parseBackupHead>;
        try {
          parsedHead = parseBackupHead(endpoint, head, null);
        } catch (err) {
          throw new SaveError(`${endpoint} did not send a raftkv backup: ${(err as BackupFileError).reason ?? String(err)}`);
        }
        if (parsedHead !== 'more') {
          header = parsedHead.header;
          headBytes = parsedHead.headBytes;
          const whole = headBytes + header.snapshotBytes + BACKUP_TRAILER_BYTES;
          if (Number.isFinite(expected) && whole !== expected) throw new SaveError(`${endpoint} announced ${expected} bytes but the backup's header says ${whole}`);
          head = null;
        }
      }
      await handle.write(c);
      const joined = Buffer.concat([tail, c]);
      hash.update(joined.subarray(0, Math.max(0, joined.length - BACKUP_TRAILER_BYTES)));
      tail = Buffer.from(joined.subarray(Math.max(0, joined.length - BACKUP_TRAILER_BYTES)));
    }
    if (header === null) throw new SaveError(`${endpoint} ended the backup after ${total} bytes, inside its header`);
    const whole = headBytes + header.snapshotBytes + BACKUP_TRAILER_BYTES;
    if (total > whole) throw new SaveError(`${endpoint} sent ${total} bytes, more than the ${whole} the backup's header gives`);
    if (total < whole) throw new SaveError(`${endpoint} ended the backup after ${total} of ${whole} bytes`);
    const sha = hash.digest();
    if (!sha.equals(tail)) throw new SaveError(`the backup from ${endpoint} fails its SHA-256 check`);
    await handle.sync();
    await handle.close();
    await rename(temporary, target);
    isRenamed = true;
    await syncDir(dirname(target));
    return { header, bytes: total, sha256: sha.toString('hex') };
  } finally {
    if (!isRenamed) {
      await handle.close().catch(() => undefined);
      await rm(temporary, { force: true });
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

async function restore(argv: readonly string[], io: SnapshotIo, env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const parsed = parseCommand('snapshot restore', argv, RESTORE_OPTIONS);
  if (parsed.values['help'] === true) {
    io.stdout(`${SNAPSHOT_USAGE}\n`);
    return 0;
  }
  const [file] = expectPositionals('snapshot restore', parsed.positionals, ['FILE']) as [string];
  const pick = (name: string): string | undefined => stringFlag(parsed, name) ?? (env[`RAFTKV_${name.replace(/-/g, '_').toUpperCase()}`] || undefined);
  const need = (name: string): string => {
    const v = pick(name);
    if (v === undefined || v === '') throw new ClientUsageError(`--${name} is required for snapshot restore`);
    return v;
  };
  const dataDir = need('data-dir');
  const id = need('id');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new ClientUsageError(`--id must be 1-64 letters, digits, '.', '_' or '-', not "${id}"`);
  const initialCluster = parseInitialCluster(need('initial-cluster'));
  if (!initialCluster.has(id)) throw new ClientUsageError(`--initial-cluster does not name this node (${id})`);
  const token = pick('initial-cluster-token') ?? null;
  if (token !== null && !/^[\x21-\x7e]{1,256}$/.test(token)) throw new ClientUsageError('--initial-cluster-token must be 1-256 printable characters without spaces');
  const options: RestoreOptions = { file, dataDir, id, initialCluster, initialClusterToken: token };
  const done = await restoreDataDir(options);
  if (outputFormat(parsed) === 'json') io.stdout(`${JSON.stringify(done)}\n`);
  else {
    io.stdout(
      `restored ${file} into ${dataDir} for ${id}: ${done.keys} keys at revision ${done.revision}, ${done.leases} leases, log index ${done.index}; ` +
        `a new cluster of ${[...initialCluster.keys()].join(', ')} (the old cluster was ${done.sourceClusterId ?? 'unnamed'}); start it with raftkv serve --data-dir ${dataDir} --id ${id} ...\n`,
    );
  }
  return 0;
}

async function status(argv: readonly string[], io: SnapshotIo): Promise<number> {
  const parsed = parseCommand('snapshot status', argv, {});
  if (parsed.values['help'] === true) {
    io.stdout(`${SNAPSHOT_USAGE}\n`);
    return 0;
  }
  const [file] = expectPositionals('snapshot status', parsed.positionals, ['FILE']) as [string];
  const { backup, kv, bytes } = await checkBackupFile(file);
  const h = backup.header;
  const view = {
    file,
    bytes,
    sha256: backup.sha256,
    ...h,
    keys: kv.size,
    revision: kv.revision,
    compactRevision: kv.compactRevision,
    leases: kv.leaseCount,
    members: backup.snapshot.meta.config.voters,
  };
  if (outputFormat(parsed) === 'json') io.stdout(`${JSON.stringify(view)}\n`);
  else {
    io.stdout(
      `${file}: a whole raftkv backup (${bytes} bytes, sha256 ${backup.sha256})\n` +
        `  taken ${h.createdAt} from ${h.node} of cluster ${h.clusterId ?? '(none yet)'} at log index ${h.index} (term ${h.term})\n` +
        `  ${kv.size} keys at revision ${kv.revision} (history from ${kv.compactRevision}), ${kv.leaseCount} leases; the source's voters: ${view.members.join(', ')}\n`,
    );
  }
  return 0;
}
