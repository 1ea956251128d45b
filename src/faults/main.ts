#!/usr/bin/env node
// `npm run faults -- [flags]`: one fault run against a real raftkv cluster (docs/faults.md).
//
// In netns mode this process is only a supervisor: it creates the bridge namespace, runs the
// harness again INSIDE it (`ip netns exec`, flag --netns-prefix), and on every way out (the
// harness's exit, SIGINT/SIGTERM/SIGHUP, its own time bound) kills every process in the run's
// namespaces and deletes them. Namespaces left by a run that was SIGKILLed are swept at start.
//
// Exit: 0 valid, 1 a violation (not linearizable, a lost or phantom element, no recovery,
// diverged replicas, a node that crashed), 2 bad usage, 3 inconclusive check, 4 harness failure.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hasOpenssl } from '../security/certs.js';
import { bridgeNamespace, canUseNetns, createBridge, destroyNamespaces, namespacePrefix, sweepStaleNamespaces } from './netns.js';
import { DEFAULT_FAULT_RUN_OPTIONS, FAULT_MIX_NAMES, NETWORK_MODES, type FaultMix, type FaultRunOptions, type NetworkMode } from './options.js';
import { DATA_ROOT_ENV, runFaults, verdictLine } from './run.js';

const USAGE = `usage: npm run faults -- [--time SEC] [--seed S] [--nodes 3|5] [--mix ${FAULT_MIX_NAMES.join('|')}[,...]]
                        [--network auto|netns|loopback] [--out DIR] [--clients N] [--keys N] [--set-clients N] [--lock-clients N] [--lease-clients N] [--watchers N]
                        [--fault-gap-ms MS] [--fault-duration-ms MS] [--heartbeat-ms MS] [--election-ms MS]
                        [--check-time-ms MS] [--snapshot-entries N] [--secure] [--verbose]`;

class UsageError extends Error {}

const SPEC = {
  time: { type: 'string' },
  seed: { type: 'string' },
  nodes: { type: 'string' },
  mix: { type: 'string' },
  network: { type: 'string' },
  out: { type: 'string' },
  clients: { type: 'string' },
  keys: { type: 'string' },
  'set-clients': { type: 'string' },
  'lock-clients': { type: 'string' },
  'lease-clients': { type: 'string' },
  watchers: { type: 'string' },
  'fault-gap-ms': { type: 'string' },
  'fault-duration-ms': { type: 'string' },
  'heartbeat-ms': { type: 'string' },
  'election-ms': { type: 'string' },
  'check-time-ms': { type: 'string' },
  'snapshot-entries': { type: 'string' },
  verbose: { type: 'boolean' },
  secure: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'netns-prefix': { type: 'string' },
} as const;

function int(values: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not "${String(v)}"`);
  return n;
}

function parse(argv: string[]): { options: FaultRunOptions; insidePrefix: string | undefined; help: boolean } {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options: SPEC, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0] as string);
  }
  const d = DEFAULT_FAULT_RUN_OPTIONS;
  const mixes = (typeof values['mix'] === 'string' ? values['mix'] : d.mixes.join(',')).split(',').filter((m) => m !== '');
  for (const m of mixes) if (!(FAULT_MIX_NAMES as string[]).includes(m)) throw new UsageError(`--mix must name mixes among ${FAULT_MIX_NAMES.join(', ')}, not "${m}"`);
  const network = typeof values['network'] === 'string' ? values['network'] : d.network;
  if (!(NETWORK_MODES as readonly string[]).includes(network)) throw new UsageError(`--network must be one of ${NETWORK_MODES.join(', ')}, not "${network}"`);
  const nodes = int(values, 'nodes', d.nodes, 3, 7);
  const seed = int(values, 'seed', Math.floor(Math.random() * 0x7fffffff), 0, 0xffffffff);
  const heartbeatMs = int(values, 'heartbeat-ms', d.heartbeatMs, 5, 10_000);
  const electionMs = int(values, 'election-ms', d.electionMs, 20, 60_000);
  if (electionMs <= 2 * heartbeatMs) throw new UsageError(`--election-ms must be more than twice --heartbeat-ms`);
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  const options: FaultRunOptions = {
    timeSec: int(values, 'time', d.timeSec, 1, 24 * 3600),
    seed,
    nodes,
    mixes: mixes as FaultMix[],
    network: network as NetworkMode,
    registerClients: int(values, 'clients', d.registerClients, 1, 200),
    keys: int(values, 'keys', d.keys, 1, 1000),
    keyRotateMs: d.keyRotateMs,
    setClients: int(values, 'set-clients', d.setClients, 0, 100),
    lockClients: int(values, 'lock-clients', d.lockClients, 0, 50),
    leaseClients: int(values, 'lease-clients', d.leaseClients, 0, 50),
    watchers: int(values, 'watchers', d.watchers, 0, 50),
    faultGapMs: int(values, 'fault-gap-ms', d.faultGapMs, 10, 600_000),
    faultDurationMs: int(values, 'fault-duration-ms', d.faultDurationMs, 10, 600_000),
    heartbeatMs,
    electionMs,
    outDir: resolve(typeof values['out'] === 'string' ? values['out'] : `faults-out/${stamp}-s${seed}`),
    checkTimeMs: int(values, 'check-time-ms', d.checkTimeMs, 100, 3_600_000),
    verbose: values['verbose'] === true,
    secure: values['secure'] === true,
    snapshotEntries: values['snapshot-entries'] === undefined ? null : int(values, 'snapshot-entries', 0, 10, 100_000_000),
  };
  return { options, insidePrefix: typeof values['netns-prefix'] === 'string' ? values['netns-prefix'] : undefined, help: values['help'] === true };
}

async function supervise(argv: string[], options: FaultRunOptions): Promise<number> {
  sweepStaleNamespaces();
  const prefix = namespacePrefix();
  let cleaned = false;
  // The data dirs belong to the supervisor, so a harness killed outright leaves none behind.
  const dataRoot = mkdtempSync(join(tmpdir(), 'raftkv-faults-'));
  const cleanup = (): void => {
    if (cleaned) return;
    cleaned = true;
    destroyNamespaces(prefix);
    rmSync(dataRoot, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  let child: ReturnType<typeof spawn> | null = null;
  const childExited = new Promise<number>((resolveExit) => {
    const wait = setInterval(() => {
      if (child === null) return;
      clearInterval(wait);
      child.on('exit', (c, s) => resolveExit(c ?? (s === 'SIGKILL' ? 4 : 1)));
    }, 10);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      // Let the harness stop its nodes and remove its data; then make sure of it.
      child?.kill('SIGTERM');
      const force = setTimeout(() => child?.kill('SIGKILL'), 3000);
      void childExited.finally(() => {
        clearTimeout(force);
        cleanup();
        process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
      });
      if (child === null) {
        cleanup();
        process.exit(130);
      }
    });
  }
  try {
    await createBridge(prefix);
  } catch (err) {
    cleanup();
    throw err;
  }
  const self = fileURLToPath(import.meta.url);
  // The seed and output folder are fixed here so the supervisor and the harness agree on them.
  const args = [...argv, '--seed', String(options.seed), '--out', options.outDir, '--network', 'netns', '--netns-prefix', prefix];
  // nsenter --net changes the network namespace only: the harness stays in the host's mount
  // namespace, where the run's namespace mounts live (`ip netns exec` would give it a private
  // mount namespace, and namespaces it creates would not be visible to this supervisor).
  child = spawn('nsenter', [`--net=/run/netns/${bridgeNamespace(prefix)}`, process.execPath, self, ...args], {
    stdio: 'inherit',
    env: { ...process.env, [DATA_ROOT_ENV]: dataRoot },
  });
  // The harness bounds itself; this bound is for a harness that hangs.
  const boundMs = (options.timeSec + 300) * 1000 + options.checkTimeMs;
  const timer = setTimeout(() => {
    process.stderr.write(`faults: the harness did not finish within ${Math.round(boundMs / 1000)} s; killing it\n`);
    child?.kill('SIGKILL');
  }, boundMs);
  const code = await childExited;
  clearTimeout(timer);
  cleanup();
  return code;
}

async function main(argv: string[]): Promise<number> {
  const { options, insidePrefix, help } = parse(argv);
  if (help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (options.secure && !hasOpenssl()) {
    // Before any namespace or process exists: nothing to clean up, and one line says why.
    process.stderr.write('faults: --secure makes its certificates with the openssl command, which is not installed (or not on PATH)\n');
    return 4;
  }
  let network: 'netns' | 'loopback';
  if (insidePrefix !== undefined) network = 'netns';
  else if (options.network === 'loopback') network = 'loopback';
  else if (canUseNetns()) network = 'netns';
  else if (options.network === 'netns') throw new UsageError('--network netns needs root and a working `ip netns`');
  else network = 'loopback';
  if (network === 'netns' && insidePrefix === undefined) return supervise(argv, options);

  // The harness proper (loopback, or inside the bridge namespace). Signals end it through the
  // exit hooks, which SIGKILL every node and remove the data dirs.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => process.exit(130));
  if (insidePrefix !== undefined) {
    // A supervisor killed outright cannot clean up: stop too (the next run sweeps the namespaces).
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) process.exit(130);
    }, 500).unref();
  }
  const summary = await runFaults(options, network, insidePrefix ?? null);
  process.stdout.write(`${verdictLine(summary)}\n`);
  for (const reason of summary.reasons) process.stdout.write(`  ${reason}\n`);
  process.stdout.write(`  seed ${summary.seed}; replay: npm run faults -- --seed ${summary.seed} --time ${summary.timeSec} --mix ${summary.mixes.join(',')} --nodes ${summary.nodes}${summary.snapshotEntries !== null ? ` --snapshot-entries ${summary.snapshotEntries}` : ''}${summary.secure ? ' --secure' : ''}\n`);
  process.stdout.write(`  history ${summary.files.history}\n  fault log ${summary.files.faults}\n  summary ${summary.files.summary}\n`);
  if (summary.files.timeline !== undefined) process.stdout.write(`  violation ${summary.files.violation} (timeline ${summary.files.timeline})\n`);
  return summary.verdict === 'valid' ? 0 : summary.verdict === 'invalid' ? 1 : 3;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`faults: ${err.message}\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`faults: harness failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(4);
  },
);
