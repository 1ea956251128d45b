// The table of raftkv's commands: each entry is a name, its usage and summary, its flag table,
// and what runs it. main.ts dispatches through it; help, shell completion and the CLI reference
// in docs/operations.md are generated from it. A new command is one entry here (its module owns
// its flags and its run function).
import { readFileSync } from 'node:fs';
import { runCluster, CLUSTER_FLAGS } from './cluster.js';
import { CLIENT_COMMAND_TABLE, CLIENT_COMMANDS, clientCommandFlags, runClientCommand, type ClientIo } from './client-commands.js';
import { completionScript, SHELLS } from './completion.js';
import { UsageError } from './flags.js';
import { commandHelp, mainHelp, type CommandDoc } from './help.js';
import { runServe, SERVE_FLAGS } from './serve.js';
import { runRecover, RECOVER_FLAGS } from './recover-command.js';
import { runSnapshot, SNAPSHOT_FLAGS } from './snapshot-command.js';
import { translateUrlFlags } from './url-flags.js';

export type CliIo = ClientIo;

export interface CommandDef extends CommandDoc {
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  readonly run: (argv: string[], io: CliIo) => Promise<number>;
  /** Whether the command reads --help itself (the client commands), else the dispatcher does. */
  readonly handlesHelp?: boolean;
}

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

export const COMMANDS: readonly CommandDef[] = [
  {
    name: 'serve',
    usage: '--id ID --data-dir DIR --peer-addr HOST:PORT --client-addr HOST:PORT (--initial-cluster ID=HOST:PORT,... | --join URL) [flags]',
    summary: 'run one raftkv node (SIGTERM or SIGINT stop it cleanly; SIGHUP re-reads --auth-file)',
    flags: SERVE_FLAGS,
    isEnvForAll: true,
    footer: 'etcd\'s --listen-peer-urls, --listen-client-urls, --initial-advertise-peer-urls and --advertise-client-urls are taken too (docs/deploy.md).',
    // etcd's URL flags become the address flags above before parsing (url-flags.ts).
    run: (argv, io) => runServe(translateUrlFlags(argv), io),
  },
  {
    name: 'cluster',
    usage: '[--nodes 3] [--dir ./data] [--base-port 7000] [--secure]',
    summary: 'a local multi-process cluster for development and demos (Ctrl-C stops every node cleanly)',
    flags: CLUSTER_FLAGS,
    isEnvForAll: true,
    run: runCluster,
  },
  ...CLIENT_COMMANDS.map((name): CommandDef => {
    const c = CLIENT_COMMAND_TABLE[name];
    return {
      name,
      usage: c.usage.slice(name.length + 1),
      summary: c.summary,
      flags: clientCommandFlags(c),
      ...(c.actions !== undefined ? { actions: c.actions } : {}),
      handlesHelp: true,
      run: (argv, io) => runClientCommand([name, ...argv], io),
    };
  }),
  {
    name: 'snapshot',
    usage: 'save FILE [--endpoints URL,...] | restore FILE --data-dir DIR --id ID --initial-cluster ID=HOST:PORT,... | status FILE',
    summary: 'back up a live cluster to FILE, start a new cluster from one, or check one (docs/backup.md)',
    flags: SNAPSHOT_FLAGS,
    actions: ['save', 'restore', 'status'],
    footer: 'save: a consistent backup (admin permission), written atomically with a SHA-256. restore: one new member\'s data dir of a NEW cluster; restore every member from the same FILE with the same --initial-cluster. status: checks FILE as restore does.',
    run: (argv, io) => runSnapshot(argv, io),
  },
  {
    name: 'recover',
    usage: '--inspect --data-dir DIR | --force-new-cluster --data-dir DIR [--id ID]',
    summary: 'after a lost quorum: inspect stopped members, make the most complete one a cluster of itself (docs/backup.md)',
    flags: RECOVER_FLAGS,
    footer: '--force-new-cluster keeps every entry the member holds, committed or not (as etcd does); start it with serve, then add members back.',
    run: (argv, io) => runRecover(argv, io),
  },
  {
    name: 'completion',
    usage: 'bash|zsh',
    summary: 'print a shell completion script: source <(raftkv completion bash)',
    flags: {},
    actions: SHELLS,
    run: async (argv, io) => {
      if (argv.length > 1) throw new UsageError(`completion takes one shell, got "${argv[1]}"`);
      io.stdout(completionScript(argv[0] ?? '', COMMANDS));
      return 0;
    },
  },
  {
    name: 'version',
    usage: '',
    summary: 'print the version (as --version does)',
    flags: {},
    run: async (argv, io) => {
      if (argv.length > 0) throw new UsageError(`version takes no arguments, got "${argv[0]}"`);
      io.stdout(`${packageVersion()}\n`);
      return 0;
    },
  },
  {
    name: 'help',
    usage: '[COMMAND]',
    summary: 'this list, or one command\'s usage and flags',
    flags: {},
    actions: [],
    run: async (argv, io) => {
      const [name] = argv;
      if (name === undefined) {
        io.stdout(mainHelp(COMMANDS));
        return 0;
      }
      const def = findCommand(name);
      if (def === undefined) throw new UsageError(`unknown command "${name}" (see raftkv --help)`);
      io.stdout(commandHelp(def));
      return 0;
    },
  },
];

export function findCommand(name: string): CommandDef | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** Whether argv asks for help (-h or --help before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/**
 * `raftkv --endpoints URL get KEY`: flags before the command are moved after it. A flag is known
 * if some command's table has it; whether it takes a value decides whether the next word goes
 * with it. Returns null when argv has no leading flags.
 */
export function hoistLeadingFlags(argv: readonly string[]): { command: string; rest: string[] } | null {
  if (argv.length === 0 || !argv[0]!.startsWith('-') || argv[0] === '-') return null;
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-') && argv[i] !== '-') {
    const token = argv[i]!;
    if (token === '--') throw new UsageError('a command is required before "--" (usage: raftkv COMMAND [ARGS] [flags])');
    const name = token.startsWith('--') ? token.slice(2).split('=')[0]! : token.slice(1, 2);
    const def = COMMANDS.flatMap((c) => Object.entries(c.flags)).find(([n, d]) => (token.startsWith('--') ? n === name : d.short === name))?.[1];
    if (def === undefined) throw new UsageError(`unknown flag ${token.split('=')[0]} before the command (usage: raftkv COMMAND [ARGS] [flags]; see raftkv --help)`);
    const hasInlineValue = token.startsWith('--') ? token.includes('=') : token.length > 2;
    if (def.type === 'string' && !hasInlineValue) {
      if (i + 1 >= argv.length) throw new UsageError(`flag ${token} needs a value`);
      leading.push(token, argv[i + 1]!);
      i += 2;
    } else {
      leading.push(token);
      i += 1;
    }
  }
  const command = argv[i];
  if (command === undefined) throw new UsageError(`a command is required after ${leading.join(' ')} (usage: raftkv COMMAND [ARGS] [flags]; see raftkv --help)`);
  return { command, rest: [...leading, ...argv.slice(i + 1)] };
}
