// `npm run sim -- [options]`: runs seeded simulations of a cluster under faults and reports
// invariant violations with the command that replays each failing seed. The LAST line printed is
// always one JSON object: {"seeds","violations","commits","elections","membership":{...},
// "runtime":{...},"failedSeeds"}.
import { availableParallelism } from 'node:os';
import { argv, exit, stdout } from 'node:process';
import { FAULT_KINDS, parseFaults, type FaultKind } from './options.js';
import { runSeeds } from './pool.js';
import { stateLine, type SimResult } from './result.js';
import { runSeed } from './simulation.js';

const USAGE = `usage: npm run sim -- [--seeds N] [--start S] [--seed S [--verbose]] [--nodes 3|5|7]
                      [--time SECONDS] [--faults LIST] [--membership RATE] [--workers K]
                      [--snapshot-every N] [--snapshot-keep K]
  --seeds N      run seeds S..S+N-1 (default 100)
  --start S      first seed (default 1)
  --seed S       run exactly one seed; with --verbose print its event trace
  --nodes N      cluster size (default 5)
  --time SEC     simulated seconds of faults and load before healing (default 60)
  --faults LIST  comma list of ${FAULT_KINDS.join(',')}; or all (default) or none
  --membership RATE  membership changes and leadership transfers among the faults, at RATE
                 times the seeded base rate (default 1); 0 or --no-membership turns them off
  --workers K    worker threads (default min(2, cpus))
  --snapshot-every N  applied entries between snapshots, instead of the seeded 16–215: a small
                 N keeps a snapshot being saved beside the Readies nearly all the time
  --snapshot-keep K   entries kept behind each snapshot, instead of the seeded 0–39
  --no-prevote, --no-check-quorum   run the core without PreVote (thesis §9.6) / CheckQuorum (§6.2)`;

interface CliOptions {
  seeds: number;
  start: number;
  seed: number | null;
  verbose: boolean;
  nodes: number;
  timeSeconds: number;
  faults: FaultKind[];
  workers: number;
  preVote: boolean;
  checkQuorum: boolean;
  membershipRate: number;
  snapshotEvery: number | null;
  snapshotKeep: number | null;
}

function parseArgs(args: readonly string[]): CliOptions {
  const o: CliOptions = {
    seeds: 100,
    start: 1,
    seed: null,
    verbose: false,
    nodes: 5,
    timeSeconds: 60,
    faults: [...FAULT_KINDS],
    workers: Math.min(2, availableParallelism()),
    preVote: true,
    checkQuorum: true,
    membershipRate: 1,
    snapshotEvery: null,
    snapshotKeep: null,
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) fail(`${flag} needs a value`);
      return v;
    };
    const int = (min: number): number => {
      const v = Number(value());
      if (!Number.isSafeInteger(v) || v < min) fail(`${flag} must be an integer ≥ ${min}`);
      return v;
    };
    switch (flag) {
      case '--seeds': o.seeds = int(1); break;
      case '--start': o.start = int(0); break;
      case '--seed': o.seed = int(0); break;
      case '--verbose': case '-v': o.verbose = true; break;
      case '--nodes': o.nodes = int(1); break;
      case '--time': {
        const v = Number(value());
        if (!(v > 0)) fail('--time must be a positive number of seconds');
        o.timeSeconds = v;
        break;
      }
      case '--faults':
        try {
          o.faults = parseFaults(value());
        } catch (err) {
          fail(`--faults: ${(err as Error).message}`);
        }
        break;
      case '--workers': o.workers = int(1); break;
      case '--membership': {
        const v = Number(value());
        if (!(v >= 0) || !Number.isFinite(v)) fail('--membership must be a rate ≥ 0 (0 turns membership changes off)');
        o.membershipRate = v;
        break;
      }
      case '--no-membership': o.membershipRate = 0; break;
      case '--snapshot-every': o.snapshotEvery = int(1); break;
      case '--snapshot-keep': o.snapshotKeep = int(0); break;
      case '--no-prevote': o.preVote = false; break;
      case '--no-check-quorum': o.checkQuorum = false; break;
      case '--help': case '-h':
        stdout.write(`${USAGE}\n`);
        exit(0);
        break;
      default:
        fail(`unknown flag ${flag}`);
    }
  }
  if (o.nodes > 15) fail('--nodes must be at most 15');
  return o;
}

function fail(message: string): never {
  process.stderr.write(`sim: ${message}\n${USAGE}\n`);
  exit(2);
}

function replayCommand(o: CliOptions, seed: number): string {
  const faults = o.faults.length === FAULT_KINDS.length ? '' : ` --faults ${o.faults.length === 0 ? 'none' : o.faults.join(',')}`;
  const core = `${o.preVote ? '' : ' --no-prevote'}${o.checkQuorum ? '' : ' --no-check-quorum'}`;
  const membership = o.membershipRate === 1 ? '' : ` --membership ${o.membershipRate}`;
  const snapshots = `${o.snapshotEvery === null ? '' : ` --snapshot-every ${o.snapshotEvery}`}${o.snapshotKeep === null ? '' : ` --snapshot-keep ${o.snapshotKeep}`}`;
  return `npm run sim -- --seed ${seed} --nodes ${o.nodes} --time ${o.timeSeconds}${faults}${membership}${snapshots}${core} --verbose`;
}

function describe(r: SimResult, o: CliOptions): string {
  const v = r.violation!;
  return `FAIL seed ${r.seed}: ${v.invariant} at ${v.timeMs.toFixed(3)} ms: ${v.details}\n  replay: ${replayCommand(o, r.seed)}`;
}

async function main(): Promise<void> {
  const o = parseArgs(argv.slice(2));
  const base = {
    nodes: o.nodes,
    timeMs: o.timeSeconds * 1000,
    faults: o.faults,
    preVote: o.preVote,
    checkQuorum: o.checkQuorum,
    membershipRate: o.membershipRate,
    snapshotEvery: o.snapshotEvery,
    snapshotKeep: o.snapshotKeep,
  };
  const started = performance.now();
  let results: SimResult[];
  if (o.seed !== null) {
    const trace = o.verbose ? (line: string): void => void stdout.write(`${line}\n`) : undefined;
    results = [runSeed({ ...base, seed: o.seed, trace })];
  } else {
    const seeds = Array.from({ length: o.seeds }, (_, i) => o.start + i);
    results = await runSeeds(seeds, base, o.workers);
  }
  const failed = results.filter((r) => r.violation !== null);
  // One seed: its fingerprint, which the playground (/ui/playground) shows for the same seed.
  if (o.seed !== null) stdout.write(`${stateLine(results[0]!)}\n`);
  for (const r of failed) stdout.write(`${describe(r, o)}\n`);
  const sum = (f: (r: SimResult) => number): number => results.reduce((s, r) => s + f(r), 0);
  const seconds = (performance.now() - started) / 1000;
  stdout.write(
    `${results.length} seed(s), ${o.nodes} nodes, ${o.timeSeconds} s simulated each, in ${seconds.toFixed(1)} s wall: ` +
      `${sum((r) => r.acknowledged)} acknowledged, ${sum((r) => r.crashes)} crashes, ${sum((r) => r.pauses)} pauses, ${sum((r) => r.snapshotsInstalled)} snapshots installed, ` +
      `${sum((r) => r.reads)} linearizable reads, ${sum((r) => r.events)} events; membership: ` +
      `${sum((r) => r.membershipCommitted)}/${sum((r) => r.membershipProposed)} changes committed, ${sum((r) => r.membershipRefused)} refused, ` +
      `${sum((r) => r.transfersSucceeded)}/${sum((r) => r.transfersAttempted)} transfers succeeded, ` +
      `${sum((r) => r.serversAdded)} servers added, ${sum((r) => r.serversStopped)} decommissioned, ${sum((r) => r.seamSplits)} seam splits; runtime: ` +
      `${sum((r) => r.sentBeforeSync)} messages sent before their sync, ${sum((r) => r.appliedBeforeSync)} entries applied before their sync, ` +
      `${sum((r) => r.appliedEarly)} applied early, ${sum((r) => r.followerCommits)} commits counted by followers, ${sum((r) => r.leaderCommitsChecked)} leader commits checked on durable majorities, ${sum((r) => r.snapshotsTaken)} snapshots taken (${sum((r) => r.idleSnapshots)} by idle members), ` +
      `${sum((r) => r.readiesBesideSnapshot)} Readies beside a snapshot in flight, ${sum((r) => r.installsWaited)} installs waited for one, ` +
      `${sum((r) => r.appliedWhileSerializing)} entries applied while one was serialized, ` +
      `${sum((r) => r.restoredBeside)} state machines loaded beside the core (${sum((r) => r.restoredInPlace)} through storage's windows; ${sum((r) => r.restoresSuperseded)} more replaced by a leader's snapshot first), ` +
      `${sum((r) => r.crashesDuringSave)} crashes during a save (${sum((r) => r.crashesBetweenSaveHalves)} between its halves)\n`,
  );
  const summary = {
    seeds: results.length,
    violations: failed.length,
    commits: sum((r) => r.commits),
    elections: sum((r) => r.elections),
    pauses: sum((r) => r.pauses),
    membership: {
      proposed: sum((r) => r.membershipProposed),
      committed: sum((r) => r.membershipCommitted),
      refused: sum((r) => r.membershipRefused),
      transfersAttempted: sum((r) => r.transfersAttempted),
      transfersSucceeded: sum((r) => r.transfersSucceeded),
      serversAdded: sum((r) => r.serversAdded),
      serversStopped: sum((r) => r.serversStopped),
      seamSplits: sum((r) => r.seamSplits),
      removedServerVotesIgnored: sum((r) => r.removedServerVotesIgnored),
      removalNotices: sum((r) => r.removalNotices),
    },
    runtime: {
      sentBeforeSync: sum((r) => r.sentBeforeSync),
      appliedBeforeSync: sum((r) => r.appliedBeforeSync),
      appliedEarly: sum((r) => r.appliedEarly),
      followerCommits: sum((r) => r.followerCommits),
      leaderCommitsChecked: sum((r) => r.leaderCommitsChecked),
      snapshotsTaken: sum((r) => r.snapshotsTaken),
      idleSnapshots: sum((r) => r.idleSnapshots),
      readiesBesideSnapshot: sum((r) => r.readiesBesideSnapshot),
      installsWaited: sum((r) => r.installsWaited),
      appliedWhileSerializing: sum((r) => r.appliedWhileSerializing),
      restoredBeside: sum((r) => r.restoredBeside),
      restoredInPlace: sum((r) => r.restoredInPlace),
      restoresSuperseded: sum((r) => r.restoresSuperseded),
      crashesDuringSave: sum((r) => r.crashesDuringSave),
      crashesBetweenSaveHalves: sum((r) => r.crashesBetweenSaveHalves),
    },
    failedSeeds: failed.map((r) => r.seed),
  };
  stdout.write(`${JSON.stringify(summary)}\n`);
  exit(failed.length > 0 ? 1 : 0);
}

main().catch((err: unknown) => {
  process.stderr.write(`sim: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  exit(2);
});
