// The command line's client commands (put, get, del, list, status, members, leader): parse the
// flags, call the cluster through RaftKvClient, print short human text or --json, and return the
// exit code: 0 done, 1 failed (for status: no endpoint ready, i.e. no quorum), 2 usage, 3 not
// found, 4 compare failed.
import {
  CONSISTENCY_LEVELS,
  CompareFailedError,
  NotFoundError,
  RaftKvClient,
  type EndpointReadiness,
  type EndpointStatus,
  type PutOptions,
  type WatchEvent,
} from '../client/index.js';
import {
  ClientUsageError,
  DEFAULT_CLI_TIMEOUT_MS,
  COMMON_OPTIONS,
  choiceFlag,
  endpointsFrom,
  expectPositionals,
  outputFormat,
  parseCommand,
  securityFrom,
  stringFlag,
  wholeNumberFlag,
  type OptionSpec,
  type OutputFormat,
  type ParsedCommand,
} from './client-args.js';
import { describe, displayValue, errorJson, membersTable, oneLine, recordJson, recordsTable, statusJson, statusTable } from './client-format.js';
import { commandHelp } from './help.js';
import { LEASE_ACTIONS, LEASE_OPTIONS, LEASE_USAGE, runLease } from './lease-command.js';
import { ELECT_OPTIONS, ELECT_USAGE, LOCK_OPTIONS, LOCK_USAGE, runElect, runLock } from './lock-command.js';

export interface ClientIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  /** Reads standard input to its end, refusing more than maxBytes; absent where there is none. */
  readonly readStdin?: (maxBytes: number) => Promise<Uint8Array>;
  /** Whether standard input is a terminal (a person typing, not a pipe or a file). */
  readonly isStdinTerminal?: boolean;
}

/** The largest value a node takes (--max-value-bytes at most 64 MiB); stdin is not read past it. */
const MAX_STDIN_VALUE_BYTES = 64 << 20;

/** `put KEY VALUE` as given, `put KEY -` from stdin, `put KEY` from stdin when it is piped. */
async function putValue(given: string | undefined, io: ClientIo): Promise<string | Uint8Array> {
  if (given !== undefined && given !== '-') return given;
  const isPiped = io.readStdin !== undefined && io.isStdinTerminal !== true;
  if (given === undefined && !isPiped) throw new ClientUsageError('"put" needs VALUE (or - to read it from stdin) (usage: raftkv put KEY VALUE)');
  if (io.readStdin === undefined) throw new ClientUsageError('"put KEY -" reads the value from stdin, and there is none here');
  const bytes = await io.readStdin(MAX_STDIN_VALUE_BYTES);
  // No VALUE and an empty stdin is more likely a mistake than an empty value; `-` says it is meant.
  if (given === undefined && bytes.length === 0) throw new ClientUsageError('"put" needs VALUE: none was given and stdin was empty (give - to store an empty value from stdin)');
  return bytes;
}

export const CLIENT_COMMANDS = ['put', 'get', 'del', 'list', 'compact', 'watch', 'status', 'members', 'leader', 'lease', 'lock', 'elect'] as const;

export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, compareFailed: 4 } as const;

const PREV_OPTIONS: OptionSpec = {
  'prev-value': { type: 'string', value: 'V', description: 'only if the key\'s value is V now' },
  'prev-index': { type: 'string', value: 'N', description: 'only if the key was last modified at log index N (0: only if absent)' },
};
const CONSISTENCY: OptionSpec = {
  consistency: { type: 'string', value: 'LEVEL', description: 'linearizable (ReadIndex), lease (leader lease) or stale (this node\'s state)', default: 'linearizable', choices: CONSISTENCY_LEVELS },
  revision: { type: 'string', value: 'R', description: 'read the store as it was at revision R' },
};

/** One client command: its usage line, one-line summary, own flags, actions (for completion), and run. */
export interface ClientCommand {
  readonly usage: string;
  readonly summary: string;
  readonly options: OptionSpec;
  readonly actions?: readonly string[];
  readonly run: (ctx: Context) => Promise<number>;
}

interface Context {
  readonly name: string;
  readonly parsed: ParsedCommand;
  readonly args: readonly string[];
  readonly client: RaftKvClient;
  readonly isJson: boolean;
  readonly format: OutputFormat;
  readonly io: ClientIo;
  readonly hasToken: boolean;
}

export const CLIENT_COMMAND_TABLE: Readonly<Record<(typeof CLIENT_COMMANDS)[number], ClientCommand>> = {
  put: {
    usage: 'put KEY VALUE [--prev-value V] [--prev-index N] [--prev-exist true|false] [--lease ID]',
    summary: 'write a value; VALUE - (or no VALUE, with stdin not a terminal) reads it from stdin, byte for byte',
    options: {
      ...PREV_OPTIONS,
      'prev-exist': { type: 'string', value: 'BOOL', description: 'only if the key exists (true) or does not (false)', choices: ['true', 'false'] },
      lease: { type: 'string', value: 'ID', description: 'attach the key to a lease: it is deleted when the lease ends' },
    },
    async run({ parsed, args, client, isJson, io }) {
      const [key, given] = expectPositionals('put', args, ['KEY', 'VALUE'], 1) as [string, string | undefined];
      const value = await putValue(given, io);
      const prevExist = choiceFlag(parsed, 'prev-exist', ['true', 'false'] as const);
      const lease = wholeNumberFlag(parsed, 'lease', 0, Number.MAX_SAFE_INTEGER);
      const opts: PutOptions = { ...conditions(parsed), ...(prevExist !== undefined ? { prevExist: prevExist === 'true' } : {}), ...(lease !== undefined ? { lease } : {}) };
      const { index, revision } = await client.put(key, value, opts);
      io.stdout(isJson ? `${JSON.stringify({ index, revision })}\n` : `OK (index ${index}, revision ${revision})\n`);
      return EXIT.ok;
    },
  },
  get: {
    usage: 'get KEY [--consistency linearizable|lease|stale] [--revision R]',
    summary: 'read one key (the value alone; -w json or table for its revisions too)',
    options: CONSISTENCY,
    async run({ parsed, args, client, isJson, format, io }) {
      const [key] = expectPositionals('get', args, ['KEY']) as [string];
      const record = await client.get(key, readOptions(parsed));
      if (record === null) {
        io.stderr(isJson ? `${JSON.stringify({ error: { code: 'NOT_FOUND', message: `key not found: ${key}` } })}\n` : `key not found: ${key}\n`);
        return EXIT.notFound;
      }
      if (isJson) {
        io.stdout(`${JSON.stringify(recordJson(record))}\n`);
      } else if (format === 'table') {
        io.stdout(recordsTable([record]));
      } else {
        const { text, isBase64 } = displayValue(record.value);
        if (isBase64) io.stderr('(the value is not UTF-8; shown as base64)\n');
        io.stdout(`${text}\n`);
      }
      return EXIT.ok;
    },
  },
  del: {
    usage: 'del KEY [--prev-value V] [--prev-index N]',
    summary: 'delete one key',
    options: PREV_OPTIONS,
    async run({ parsed, args, client, isJson, io }) {
      const [key] = expectPositionals('del', args, ['KEY']) as [string];
      const result = await client.delete(key, conditions(parsed));
      io.stdout(isJson ? `${JSON.stringify(result)}\n` : `${result.deleted ? 'deleted' : 'not found, nothing deleted'} (index ${result.index})\n`);
      return EXIT.ok;
    },
  },
  list: {
    usage: 'list [PREFIX] [--limit N] [--consistency linearizable|lease|stale] [--revision R]',
    summary: 'the keys under a prefix, in order, with their values',
    options: { limit: { type: 'string', value: 'N', description: 'at most N keys, 1-10000', default: 'the node\'s page size' }, ...CONSISTENCY },
    async run({ parsed, args, client, isJson, format, io }) {
      const [prefix = ''] = expectPositionals('list', args, ['PREFIX'], 1);
      const limit = wholeNumberFlag(parsed, 'limit', 1, 10_000);
      const result = await client.list(prefix, limit, readOptions(parsed));
      if (isJson) {
        io.stdout(`${JSON.stringify({ items: result.items.map(recordJson), more: result.more })}\n`);
        return EXIT.ok;
      }
      io.stdout(format === 'table' ? recordsTable(result.items) : result.items.map((r) => `${r.key}\t${oneLine(displayValue(r.value).text)}\n`).join(''));
      if (result.more) io.stderr(`(more keys match; raise --limit to see them)\n`);
      return EXIT.ok;
    },
  },
  compact: {
    usage: 'compact REVISION',
    summary: 'drop the history before REVISION (reads and watches from earlier revisions fail then)',
    options: {},
    async run({ args, client, isJson, io }) {
      const [text] = expectPositionals('compact', args, ['REVISION']) as [string];
      if (!/^[1-9][0-9]{0,15}$/.test(text) || !Number.isSafeInteger(Number(text))) throw new ClientUsageError(`REVISION must be a whole number from 1, not "${text}"`);
      const result = await client.compact(Number(text));
      io.stdout(isJson ? `${JSON.stringify(result)}\n` : `compacted: history before revision ${result.compactRevision} is gone (the store is at ${result.revision})\n`);
      return EXIT.ok;
    },
  },
  watch: {
    usage: 'watch KEY | --prefix P [--from REV] [--prev-value]',
    summary: 'print every change of a key or prefix until interrupted',
    options: {
      prefix: { type: 'string', value: 'P', description: 'watch every key under P ("" for all keys) instead of one KEY' },
      from: { type: 'string', value: 'REV', description: 'start at revision REV (replays history since then)', default: 'now' },
      'prev-value': { type: 'boolean', description: 'also print each change\'s previous value' },
    },
    run: runWatch,
  },
  status: {
    usage: 'status',
    summary: 'every endpoint\'s role, term, leader, indexes and readiness; exits 1 without a quorum',
    options: {},
    async run({ args, client, isJson, io, hasToken }) {
      expectPositionals('status', args, []);
      const [statuses, readiness] = await Promise.all([client.statusOfAll(), client.readyOfAll()]);
      io.stdout(isJson ? `${JSON.stringify(statusJson(statuses, readiness))}\n` : statusTable(statuses, readiness, (err) => describe(err, hasToken)));
      // The exit code answers "can this cluster serve?": only a node that knows a leader with a
      // quorum is ready, so no ready endpoint means no quorum as far as these endpoints can tell.
      if (readiness.some((r) => r.isReady)) return EXIT.ok;
      const { code, message } = noQuorum(statuses, readiness, hasToken);
      io.stderr(isJson ? `${JSON.stringify({ error: { code, message } })}\n` : `error: ${message}\n`);
      return EXIT.failed;
    },
  },
  members: {
    usage: 'members list | add ID --peer-addr HOST:PORT --client-addr [http://]HOST:PORT [--learner] | remove ID | promote ID',
    summary: 'list, add, remove or promote cluster members',
    actions: ['list', 'add', 'remove', 'promote'],
    options: {
      'peer-addr': { type: 'string', value: 'HOST:PORT', description: 'members add: the new node\'s peer address' },
      'client-addr': { type: 'string', value: 'URL', description: 'members add: the new node\'s client URL or HOST:PORT' },
      learner: { type: 'boolean', description: 'members add: as a learner that stays one (else promoted once caught up)' },
    },
    run: runMembers,
  },
  leader: {
    usage: 'leader transfer [--to ID]',
    summary: 'hand leadership to another voter',
    actions: ['transfer'],
    options: { to: { type: 'string', value: 'ID', description: 'the voter to lead', default: 'the most caught-up voter' } },
    async run({ parsed, args, client, isJson, io }) {
      const [action] = expectPositionals('leader', args, ['transfer']);
      if (action !== 'transfer') throw new ClientUsageError(`unknown action "leader ${action}" (usage: raftkv leader transfer [--to ID])`);
      const to = stringFlag(parsed, 'to');
      const result = await client.transferLeader(to);
      io.stdout(isJson ? `${JSON.stringify(result)}\n` : `the leader is now ${result.leader}\n`);
      return EXIT.ok;
    },
  },
  lease: { usage: LEASE_USAGE, summary: 'grant, keep alive, revoke and inspect leases', actions: LEASE_ACTIONS, options: LEASE_OPTIONS, run: runLease },
  lock: { usage: LOCK_USAGE, summary: 'hold a distributed lock (while COMMAND runs, or until interrupted)', options: LOCK_OPTIONS, run: runLock },
  elect: { usage: ELECT_USAGE, summary: 'campaign to lead an election, or --listen to its leaders', options: ELECT_OPTIONS, run: runElect },
};

/**
 * One line per change until SIGINT or SIGTERM (exit 0), or until the history it needs is
 * compacted (exit 1). The client resumes on another endpoint after a disconnect, so a node that
 * goes away costs no event and repeats none.
 */
async function runWatch({ parsed, args, client, isJson, io }: Context): Promise<number> {
  const prefix = stringFlag(parsed, 'prefix');
  const usage = '(usage: raftkv watch KEY | --prefix P [--from REV] [--prev-value])';
  if (prefix !== undefined && args.length > 0) throw new ClientUsageError(`"watch" takes KEY or --prefix P, not both ${usage}`);
  if (prefix === undefined && args.length !== 1) throw new ClientUsageError(args.length === 0 ? `"watch" needs KEY or --prefix P ${usage}` : `"watch" got an unexpected argument "${args[1]}" ${usage}`);
  const key = args[0];
  if (key === '') throw new ClientUsageError('"watch" needs a non-empty KEY (or --prefix P; --prefix "" watches every key)');
  const fromRevision = wholeNumberFlag(parsed, 'from', 1, Number.MAX_SAFE_INTEGER - 1);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const events = client.watch(key !== undefined ? { key } : { prefix: prefix! }, {
      ...(fromRevision !== undefined ? { fromRevision } : {}),
      prevValue: parsed.values['prev-value'] === true,
      signal: stop.signal,
    });
    for await (const event of events) {
      if (event.type === 'progress') continue;
      if (event.type === 'compacted') {
        const message = `the history this watch needs is compacted (up to revision ${event.compactRevision}); start again with --from ${event.compactRevision} or later`;
        io.stderr(isJson ? `${JSON.stringify({ error: { code: 'COMPACTED', message, compactRevision: event.compactRevision } })}\n` : `error: ${message}\n`);
        return EXIT.failed;
      }
      io.stdout(isJson ? `${JSON.stringify(watchEventJson(event))}\n` : `${watchEventLine(event)}\n`);
    }
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function watchEventJson(event: Exclude<WatchEvent, { type: 'progress' | 'compacted' }>): Record<string, unknown> {
  const prev = event.prevValue === undefined ? {} : (({ text, isBase64 }) => ({ prevValue: text, ...(isBase64 ? { prevEncoding: 'base64' } : {}) }))(displayValue(event.prevValue));
  if (event.type === 'delete') return { type: 'delete', key: event.key, modRevision: event.modRevision, ...prev };
  const { text, isBase64 } = displayValue(event.value);
  return { type: 'put', key: event.key, value: text, ...(isBase64 ? { encoding: 'base64' } : {}), createRevision: event.createRevision, modRevision: event.modRevision, version: event.version, lease: event.lease, ...prev };
}

/** `put KEY VALUE (revision R)` or `delete KEY (revision R)`, the value on one line. */
function watchEventLine(event: Exclude<WatchEvent, { type: 'progress' | 'compacted' }>): string {
  if (event.type === 'delete') return `delete ${oneLine(event.key)} (revision ${event.modRevision})`;
  return `put ${oneLine(event.key)} ${oneLine(displayValue(event.value).text)} (revision ${event.modRevision})`;
}

async function runMembers({ parsed, args, client, isJson, io }: Context): Promise<number> {
  const action = args[0];
  const onlyFor = (flags: string[], allowed: string): void => {
    for (const f of flags) if (parsed.values[f] !== undefined) throw new ClientUsageError(`flag --${f} is only for "members ${allowed}"`);
  };
  switch (action) {
    case 'list': {
      expectPositionals('members list', args.slice(1), []);
      onlyFor(['peer-addr', 'client-addr', 'learner'], 'add');
      const members = await client.members();
      io.stdout(isJson ? `${JSON.stringify({ members })}\n` : membersTable(members));
      return EXIT.ok;
    }
    case 'add': {
      const [id] = expectPositionals('members add', args.slice(1), ['ID']) as [string];
      const peerAddr = stringFlag(parsed, 'peer-addr');
      const clientAddr = stringFlag(parsed, 'client-addr');
      if (peerAddr === undefined) throw new ClientUsageError('flag --peer-addr is required for "members add" (HOST:PORT of the new node\'s peer channel)');
      if (!/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(peerAddr)) throw new ClientUsageError(`flag --peer-addr must be HOST:PORT, not "${peerAddr}"`);
      if (clientAddr === undefined) throw new ClientUsageError('flag --client-addr is required for "members add" (the new node\'s client URL)');
      const result = await client.addMember({ id, peerAddr, clientAddr: clientHostPort(clientAddr), role: parsed.values['learner'] === true ? 'learner' : 'voter' });
      io.stdout(isJson ? `${JSON.stringify(result)}\n` : `added ${id}${parsed.values['learner'] === true ? ' as a learner' : ' (a learner until it catches up, then a voter)'}\n`);
      return EXIT.ok;
    }
    case 'remove':
    case 'promote': {
      const [id] = expectPositionals(`members ${action}`, args.slice(1), ['ID']) as [string];
      onlyFor(['peer-addr', 'client-addr', 'learner'], 'add');
      const result = action === 'remove' ? await client.removeMember(id) : await client.promoteMember(id);
      io.stdout(isJson ? `${JSON.stringify(result)}\n` : `${action === 'remove' ? 'removed' : 'promoted'} ${id}\n`);
      return EXIT.ok;
    }
    default:
      throw new ClientUsageError(action === undefined ? '"members" needs an action: list, add, remove or promote' : `unknown action "members ${action}" (use list, add, remove or promote)`);
  }
}

/**
 * The server records a member's client address as HOST:PORT (what `serve --client-addr` takes);
 * the command line also accepts the URL form that --endpoints uses, http://HOST:PORT.
 */
function clientHostPort(value: string): string {
  const hostPort = value.replace(/^https?:\/\//, '').replace(/\/$/, '');
  if (!/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(hostPort)) throw new ClientUsageError(`flag --client-addr must be http(s)://HOST:PORT or HOST:PORT, not "${value}"`);
  return hostPort;
}

function readOptions(parsed: ParsedCommand): { consistency?: (typeof CONSISTENCY_LEVELS)[number]; revision?: number } {
  const consistency = choiceFlag(parsed, 'consistency', CONSISTENCY_LEVELS);
  const revision = wholeNumberFlag(parsed, 'revision', 1, Number.MAX_SAFE_INTEGER);
  return { ...(consistency !== undefined ? { consistency } : {}), ...(revision !== undefined ? { revision } : {}) };
}

function conditions(parsed: ParsedCommand): { prevValue?: string; prevIndex?: number } {
  const prevValue = stringFlag(parsed, 'prev-value');
  const prevIndex = wholeNumberFlag(parsed, 'prev-index', 0, Number.MAX_SAFE_INTEGER);
  return { ...(prevValue !== undefined ? { prevValue } : {}), ...(prevIndex !== undefined ? { prevIndex } : {}) };
}

export function isClientCommand(name: string): name is (typeof CLIENT_COMMANDS)[number] {
  return (CLIENT_COMMANDS as readonly string[]).includes(name);
}

/** Every flag a client command takes: its own, then the common ones. */
export function clientCommandFlags(command: ClientCommand): OptionSpec {
  return { ...command.options, ...COMMON_OPTIONS };
}

export function clientCommandHelp(name: string, command: ClientCommand): string {
  return commandHelp({ name, usage: command.usage.slice(name.length + 1), summary: command.summary, flags: clientCommandFlags(command), footer: CLIENT_HELP_FOOTER, ...(command.actions !== undefined ? { actions: command.actions } : {}) });
}

const CLIENT_HELP_FOOTER = 'Exit codes: 0 done, 1 failed (status: no endpoint ready, no quorum), 2 usage, 3 not found, 4 compare failed.';

/** Runs one client command; `argv` starts with the command name. Returns the exit code. */
export async function runClientCommand(argv: string[], io: ClientIo, env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  const [name, ...rest] = argv;
  const command = name === undefined || !isClientCommand(name) ? undefined : CLIENT_COMMAND_TABLE[name];
  if (command === undefined) {
    io.stderr(name === undefined ? `a command is required (${CLIENT_COMMANDS.join(', ')})\n` : `unknown command "${name}" (client commands: ${CLIENT_COMMANDS.join(', ')}; see raftkv --help)\n`);
    return EXIT.usage;
  }
  let isJson = rest.includes('--json') || /(^|\s)(-w|--write-out)(=|\s)json(\s|$)/.test(rest.join(' '));
  let format: OutputFormat = isJson ? 'json' : 'simple';
  let client: RaftKvClient;
  let parsed: ParsedCommand;
  let hasToken = false;
  try {
    parsed = parseCommand(name!, rest, command.options);
    if (parsed.values['help'] === true) {
      io.stdout(clientCommandHelp(name!, command));
      return EXIT.ok;
    }
    format = outputFormat(parsed);
    isJson = format === 'json';
    const endpoints = endpointsFrom(parsed, env);
    const timeoutMs = wholeNumberFlag(parsed, 'timeout-ms', 1, 600_000) ?? DEFAULT_CLI_TIMEOUT_MS;
    const security = securityFrom(parsed, env);
    hasToken = security.token !== undefined;
    client = newClient({ endpoints, timeoutMs, ...security });
  } catch (err) {
    if (err instanceof ClientUsageError) {
      io.stderr(`${err.message}\n`);
      return EXIT.usage;
    }
    throw err;
  }
  try {
    return await command.run({ name: name!, parsed, args: parsed.positionals, client, isJson, format, io, hasToken });
  } catch (err) {
    if (err instanceof ClientUsageError) {
      io.stderr(`${err.message}\n`);
      return EXIT.usage;
    }
    const error = err instanceof Error ? err : new Error(String(err));
    const json = errorJson(error);
    io.stderr(isJson ? `${JSON.stringify({ error: { ...json.error, message: describe(error, hasToken) } })}\n` : `error: ${describe(error, hasToken)}\n`);
    if (err instanceof CompareFailedError) return EXIT.compareFailed;
    if (err instanceof NotFoundError) return EXIT.notFound;
    return EXIT.failed;
  } finally {
    client.close();
  }
}

const OPTION_FLAGS: Readonly<Record<string, string>> = { 'the ca option': '--cacert', 'the cert option': '--cert', 'the key option': '--key', 'cert and key': '--cert and --key' };

/** The client refuses bad TLS material with a TypeError naming its option; say it in flag names. */
function newClient(options: ConstructorParameters<typeof RaftKvClient>[0]): RaftKvClient {
  try {
    return new RaftKvClient(options);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    let message = oneLine(err.message);
    for (const [option, flag] of Object.entries(OPTION_FLAGS)) message = message.replace(option, flag);
    throw new ClientUsageError(message);
  }
}

/** Why `status` fails: the one error every endpoint gave when they agree (a token, a CA), else no quorum. */
function noQuorum(statuses: readonly EndpointStatus[], readiness: readonly EndpointReadiness[], hasToken: boolean): { code: string; message: string } {
  const errors = statuses.flatMap((s) => ('error' in s ? [s.error] : []));
  const first = errors[0];
  if (first !== undefined && errors.length === statuses.length && errors.every((e) => e.constructor === first.constructor)) {
    const code = (first as { code?: unknown }).code;
    const none = statuses.length === 1 ? 'the endpoint gave no status' : `none of the ${statuses.length} endpoints gave its status`;
    return { code: typeof code === 'string' ? code : 'ERROR', message: `${none}: ${describe(first, hasToken)}` };
  }
  const notReady = readiness.length === 1 ? 'the endpoint is not ready' : `none of the ${readiness.length} endpoints is ready`;
  return { code: 'NO_QUORUM', message: `no quorum: ${notReady} (a node is ready when it knows a leader with a quorum and has applied what it committed)` };
}
