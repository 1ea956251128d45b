// `raftkv recover`: the way out of a lost quorum (docs/backup.md, "Recover").
//
//   raftkv recover --inspect --data-dir D            what a stopped member's data dir holds: its
//                                                    last index and term, commit index, snapshot,
//                                                    configuration (to pick the most complete)
//   raftkv recover --force-new-cluster --data-dir D [--id ID]
//
// --force-new-cluster rewrites a stopped survivor's data dir so that it is a one-member cluster
// of itself, as etcd's --force-new-cluster does: it appends, after every entry it holds, a
// configuration entry naming itself alone (thesis §4.1: the newest configuration in the log is in
// force) and registry records forgetting the other members, all in a term above any it has seen,
// and marks the whole log committed. So it keeps EVERY entry it held, committed or not: an entry
// the old cluster never committed (its client got no answer, or a timeout) becomes committed
// here. That is the price of going on without a quorum, and why the survivor whose log is the
// most up to date (§5.4.1: the highest last term, then the highest last index) is the one to pick,
// as an election among the survivors would. The cluster id stays; old members are no longer
// members, and are heard on the peer port only once added again (with an empty data dir).
import type { Configuration, Entry, InitialState } from '../raft/index.js';
import { decodeConfiguration, encodeConfiguration } from '../raft/index.js';
import { acquireDataDirLock, DataDirLockedError, FileStorage } from '../storage/index.js';
import { ClusterFileError, readClusterFile, type ClusterFile } from '../server/identity.js';
import { writeClusterFile } from '../server/data-dir.js';
import { encodeMemberRecord } from '../server/member-registry.js';
import { parseFlags, requireString, optionalString, UsageError, type FlagTable } from './flags.js';

export interface RecoverIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

export const RECOVER_USAGE = `usage: raftkv recover --inspect --data-dir DIR [--json]
       raftkv recover --force-new-cluster --data-dir DIR [--id ID] [--json]
--inspect: the last index and term, commit index, snapshot and configuration of a stopped member's data dir.
--force-new-cluster: quorum lost: make this stopped member a one-member cluster of itself, keeping every entry
it holds (committed or not); start it with raftkv serve, then add members back (raftkv members add).`;

export const RECOVER_FLAGS: FlagTable = {
  inspect: { type: 'boolean', description: 'print what the stopped member holds: last index and term, commit, snapshot, configuration' },
  'force-new-cluster': { type: 'boolean', description: 'make the stopped member a one-member cluster of itself, keeping every entry it holds' },
  'data-dir': { type: 'string', value: 'DIR', isFile: true, description: 'the member\'s data dir (the member must be stopped)' },
  id: { type: 'string', value: 'ID', description: 'the member\'s id, checked against the data dir' },
  json: { type: 'boolean', description: 'print the result as JSON' },
  help: { type: 'boolean', short: 'h', description: 'show this command\'s usage and flags' },
};

/** What a data dir holds, for choosing the survivor. */
export interface Inspection {
  readonly dataDir: string;
  readonly id: string;
  readonly clusterId: string | null;
  readonly currentTerm: number;
  readonly votedFor: string | null;
  readonly commitIndex: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly snapshotIndex: number;
  readonly snapshotTerm: number;
  readonly config: Configuration;
}

/** A recovery refused or failed; one line. */
export class RecoverError extends Error {}

export async function runRecover(argv: string[], io: RecoverIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const flags = parseFlags(argv, RECOVER_FLAGS, env);
    if (flags.values['help'] === true) {
      io.stdout(`${RECOVER_USAGE}\n`);
      return 0;
    }
    if (flags.positionals.length > 0) throw new UsageError(`recover takes no arguments, got "${flags.positionals[0]}"`);
    const isInspect = flags.values['inspect'] === true;
    const isForce = flags.values['force-new-cluster'] === true;
    if (isInspect === isForce) throw new UsageError('recover needs exactly one of --inspect and --force-new-cluster');
    const dataDir = requireString(flags, 'data-dir');
    const id = optionalString(flags, 'id');
    const isJson = flags.values['json'] === true;
    if (isInspect) {
      const seen = await withDataDir(dataDir, id, io, async (file, _storage, state) => inspection(dataDir, file, state));
      io.stdout(isJson ? `${JSON.stringify(seen)}\n` : describe(seen));
      return 0;
    }
    const result = await withDataDir(dataDir, id, io, (file, storage, state) => forceNewCluster(dataDir, file, storage, state));
    io.stdout(
      isJson
        ? `${JSON.stringify(result)}\n`
        : `${dataDir} is now a one-member cluster of ${result.id}: kept every entry up to index ${result.keptLastIndex} (committed ${result.previousCommitIndex} before; ` +
            `${result.keptLastIndex - result.previousCommitIndex} not known committed are committed now), membership at index ${result.configIndex} in term ${result.term}. ` +
            `Start it with raftkv serve --data-dir ${dataDir} --id ${result.id} ..., then add members back.\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`raftkv: ${err.message}\n`);
      return 2;
    }
    if (err instanceof RecoverError || err instanceof ClusterFileError || err instanceof DataDirLockedError) {
      io.stderr(`raftkv: ${err.message}\n`);
      return 1;
    }
    io.stderr(`raftkv: recover failed: ${(err as Error).message}\n`);
    return 1;
  }
}

/** Opens a stopped member's data dir under its lock (a running node holds it: refused). */
async function withDataDir<T>(dataDir: string, id: string | undefined, io: RecoverIo, f: (file: ClusterFile, storage: FileStorage, state: InitialState) => Promise<T>): Promise<T> {
  const file = readClusterFile(dataDir);
  if (file === null) throw new RecoverError(`--data-dir ${dataDir} holds no cluster.json: not a raftkv member's data dir`);
  if (id !== undefined && id !== file.nodeId) throw new RecoverError(`--data-dir ${dataDir} belongs to node ${file.nodeId}, not ${id}`);
  const lock = await acquireDataDirLock(dataDir, { nodeId: file.nodeId });
  try {
    // Opening repairs a torn tail (a crash mid-write) as a restart would: the operator hears of it.
    const storage = await FileStorage.open(dataDir, { logger: { warn: (msg: string) => io.stderr(`raftkv: ${msg}\n`) } });
    try {
      return await f(file, storage, await storage.load());
    } finally {
      await storage.close();
    }
  } finally {
    await lock.release();
  }
}

function configInForce(state: InitialState): Configuration {
  let config = state.snapshot?.config ?? { voters: [], votersOutgoing: [], learners: [] };
  for (const e of state.entries) if (e.type === 'config') config = decodeConfiguration(e.data);
  return config;
}

function inspection(dataDir: string, file: ClusterFile, state: InitialState): Inspection {
  const last = state.entries.at(-1);
  return {
    dataDir,
    id: file.nodeId,
    clusterId: file.clusterId,
    currentTerm: state.hardState.currentTerm,
    votedFor: state.hardState.votedFor,
    commitIndex: state.hardState.commitIndex,
    lastIndex: last?.index ?? state.snapshot?.index ?? 0,
    lastTerm: last?.term ?? state.snapshot?.term ?? 0,
    snapshotIndex: state.snapshot?.index ?? 0,
    snapshotTerm: state.snapshot?.term ?? 0,
    config: configInForce(state),
  };
}

function describe(s: Inspection): string {
  const c = s.config;
  const members = `voters ${c.voters.join(',') || '-'}${c.votersOutgoing.length > 0 ? ` (joint with ${c.votersOutgoing.join(',')})` : ''}${c.learners.length > 0 ? `, learners ${c.learners.join(',')}` : ''}`;
  return (
    `node ${s.id} of cluster ${s.clusterId ?? '(none yet)'} in ${s.dataDir}\n` +
    `  last index ${s.lastIndex} (term ${s.lastTerm}), commit index ${s.commitIndex}, current term ${s.currentTerm}, voted for ${s.votedFor ?? '-'}\n` +
    `  snapshot at ${s.snapshotIndex} (term ${s.snapshotTerm}); membership: ${members}\n` +
    `  recover the survivor whose log is the most up to date: the highest last term, then the highest last index (§5.4.1)\n`
  );
}

export interface RecoverResult {
  readonly id: string;
  readonly previousCommitIndex: number;
  readonly keptLastIndex: number;
  readonly configIndex: number;
  readonly term: number;
  readonly removed: readonly string[];
}

async function forceNewCluster(dataDir: string, file: ClusterFile, storage: FileStorage, state: InitialState): Promise<RecoverResult> {
  const seen = inspection(dataDir, file, state);
  const self = file.nodeId;
  const old = seen.config;
  const others = [...new Set([...old.voters, ...old.votersOutgoing, ...old.learners])].filter((m) => m !== self);
  // A term above every term this member has seen or holds: its new entries are the newest in any
  // log an old member might still have, and its own campaign starts from there.
  const term = Math.max(seen.currentTerm, seen.lastTerm) + 1;
  const configIndex = seen.lastIndex + 1;
  const entries: Entry[] = [{ index: configIndex, term, type: 'config', data: encodeConfiguration({ voters: [self], votersOutgoing: [], learners: [] }) }];
  for (const id of others) entries.push({ index: configIndex + entries.length, term, type: 'normal', data: encodeMemberRecord(id, null) });
  const newLast = entries.at(-1)!.index;
  storage.append(entries);
  storage.setHardState({ currentTerm: term, votedFor: self, commitIndex: newLast });
  await storage.sync();
  // The founders' allowance (identity.ts) is for a cluster still without an id; after a forced
  // recovery only this member is a founder, and it dials no one until members are added.
  await writeClusterFile(dataDir, { ...file, founders: file.founders.filter((f) => f === self), peers: Object.fromEntries(Object.entries(file.peers).filter(([id]) => id === self)) });
  return { id: self, previousCommitIndex: seen.commitIndex, keptLastIndex: seen.lastIndex, configIndex, term, removed: others };
}
