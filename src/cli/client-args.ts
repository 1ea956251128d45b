// Argument parsing for the client commands (put, get, del, list, status, members, leader):
// node:util parseArgs in strict mode, and a ClientUsageError that is one line naming the flag
// or argument at fault, so scripts and people see at once what to fix.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { normalizeEndpoint } from '../client/index.js';
import { choiceOf, choiceProblem, parseArgsOptions, type FlagTable } from './flags.js';

export const DEFAULT_ENDPOINTS = 'http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003';
export const DEFAULT_CLI_TIMEOUT_MS = 5_000;

export class ClientUsageError extends Error {
  readonly exitCode = 2;
}

/** A client command's own flags (the common ones below are added to every command). */
export type OptionSpec = FlagTable;

export const OUTPUT_FORMATS = ['simple', 'json', 'table'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Flags every client command takes. */
export const COMMON_OPTIONS: FlagTable = {
  endpoints: { type: 'string', value: 'URL,...', description: 'the cluster\'s client URLs (or RAFTKV_ENDPOINTS)', default: DEFAULT_ENDPOINTS },
  'write-out': { type: 'string', short: 'w', value: 'FORMAT', description: 'output: simple (text for people), json (the API\'s shapes), or table', default: 'simple', choices: OUTPUT_FORMATS },
  json: { type: 'boolean', description: 'the same as --write-out json' },
  'timeout-ms': { type: 'string', value: 'MS', description: 'deadline of the whole command, retries included', default: String(DEFAULT_CLI_TIMEOUT_MS) },
  token: { type: 'string', value: 'TOKEN', description: 'bearer token (prefer RAFTKV_TOKEN: a command line is visible in ps)' },
  cacert: { type: 'string', value: 'FILE', isFile: true, description: 'CA that signed the nodes\' certificates, for https endpoints (or RAFTKV_CACERT)' },
  cert: { type: 'string', value: 'FILE', isFile: true, description: 'client certificate, for nodes with --client-cert-auth (or RAFTKV_CERT)' },
  key: { type: 'string', value: 'FILE', isFile: true, description: 'its private key (or RAFTKV_KEY)' },
  help: { type: 'boolean', short: 'h', description: 'show this command\'s usage and flags' },
};

export interface ParsedCommand {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
}

export function parseCommand(command: string, argv: readonly string[], extra: OptionSpec): ParsedCommand {
  const options = { ...COMMON_OPTIONS, ...extra };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options: parseArgsOptions(options), strict: true, allowPositionals: true });
  } catch (err) {
    throw new ClientUsageError(parseErrorLine(command, err, options));
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [k, v] of Object.entries(parsed.values)) values[k] = Array.isArray(v) ? v[v.length - 1] : v;
  const problem = choiceProblem(options, values);
  if (problem !== null) throw new ClientUsageError(problem);
  return { values, positionals: parsed.positionals };
}

function parseErrorLine(command: string, err: unknown, options: OptionSpec): string {
  const text = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown }).code;
  const flag = /'(-{1,2}[^' ]+)/.exec(text)?.[1] ?? 'a flag';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const accepted = Object.keys(options).map((name) => `--${name}`).join(', ');
    return `unknown flag ${flag} for "${command}" (it accepts ${accepted})`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && /does not take an argument/.test(text)) return `flag ${flag} takes no value`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && /argument missing/.test(text)) return `flag ${flag} needs a value`;
  if (/ambiguous/.test(text)) return `flag ${flag} needs a value; to pass one starting with "-", write ${flag}=VALUE`;
  return text.split('\n')[0]!.replace(/^Option/, 'flag');
}

/** Exactly `names.length` positionals (the last `optional` of them may be left out). */
export function expectPositionals(command: string, positionals: readonly string[], names: readonly string[], optional = 0): string[] {
  const required = names.length - optional;
  if (positionals.length < required) {
    throw new ClientUsageError(`"${command}" needs ${names.slice(positionals.length, required).join(' and ')} (usage: raftkv ${command} ${names.join(' ')})`);
  }
  if (positionals.length > names.length) {
    throw new ClientUsageError(`"${command}" got an unexpected argument "${positionals[names.length]}" (usage: raftkv ${command} ${names.join(' ')})`);
  }
  return [...positionals];
}

export function stringFlag(parsed: ParsedCommand, name: string): string | undefined {
  const v = parsed.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function wholeNumberFlag(parsed: ParsedCommand, name: string, min: number, max: number): number | undefined {
  const v = stringFlag(parsed, name);
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ClientUsageError(`--${name} must be a whole number from ${min} to ${max}, not "${v}"`);
  return n;
}

/** A client flag with choices, narrowed to them (parseCommand has refused any other value). */
export function choiceFlag<T extends string>(parsed: ParsedCommand, name: string, choices: readonly T[]): T | undefined {
  return choiceOf(parsed.values, name, choices, (message) => new ClientUsageError(message));
}

/** -w/--write-out, with --json as its older spelling; a conflict between the two is a usage error. */
export function outputFormat(parsed: ParsedCommand): OutputFormat {
  const chosen = choiceFlag(parsed, 'write-out', OUTPUT_FORMATS);
  if (parsed.values['json'] === true) {
    if (chosen !== undefined && chosen !== 'json') throw new ClientUsageError(`--json and --write-out ${chosen} disagree; give one`);
    return 'json';
  }
  return chosen ?? 'simple';
}

/** The endpoints from --endpoints, else RAFTKV_ENDPOINTS, else the local three-node default. */
export function endpointsFrom(parsed: ParsedCommand, env: Readonly<Record<string, string | undefined>>): string[] {
  const flag = stringFlag(parsed, 'endpoints');
  const envValue = env['RAFTKV_ENDPOINTS'];
  const source = flag !== undefined ? '--endpoints' : envValue !== undefined && envValue !== '' ? 'RAFTKV_ENDPOINTS' : null;
  const text = flag ?? (source === null ? DEFAULT_ENDPOINTS : envValue!);
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (parts.length === 0) throw new ClientUsageError(`${source ?? '--endpoints'} needs at least one URL (http://HOST:PORT,...)`);
  return parts.map((part) => {
    try {
      return normalizeEndpoint(part);
    } catch (err) {
      throw new ClientUsageError(`${source ?? '--endpoints'}: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
}

/** What the client needs to reach a cluster with TLS and tokens. */
export interface ClientSecurity {
  readonly token?: string;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

// RFC 6750's b64token: what a bearer token may contain.
const TOKEN_PATTERN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * --token, --cacert, --cert and --key, each else from RAFTKV_TOKEN, RAFTKV_CACERT, RAFTKV_CERT,
 * RAFTKV_KEY. Files are read here, so a wrong path is a usage error naming the flag (or the
 * variable) before anything is sent.
 */
export function securityFrom(parsed: ParsedCommand, env: Readonly<Record<string, string | undefined>>): ClientSecurity {
  const pick = (flag: string): { value: string; source: string } | undefined => {
    const fromFlag = stringFlag(parsed, flag);
    if (fromFlag !== undefined) return { value: fromFlag, source: `--${flag}` };
    const name = `RAFTKV_${flag.toUpperCase()}`;
    const fromEnv = env[name];
    return fromEnv !== undefined && fromEnv !== '' ? { value: fromEnv, source: name } : undefined;
  };
  const token = pick('token');
  // A token pasted from a file or a terminal often brings a line break along.
  const tokenText = token?.value.trim();
  if (token !== undefined && !TOKEN_PATTERN.test(tokenText!)) throw new ClientUsageError(`${token.source} must be a bearer token (letters, digits and -._~+/), without spaces`);
  const ca = pemFile(pick('cacert'), 'CERTIFICATE');
  const cert = pemFile(pick('cert'), 'CERTIFICATE');
  const key = pemFile(pick('key'), 'PRIVATE KEY');
  if ((cert === undefined) !== (key === undefined)) throw new ClientUsageError(cert === undefined ? '--key needs --cert (the client certificate it belongs to)' : '--cert needs --key (its private key)');
  return { ...(tokenText !== undefined ? { token: tokenText } : {}), ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert, key: key! } : {}) };
}

function pemFile(from: { value: string; source: string } | undefined, kind: string): Buffer | undefined {
  if (from === undefined) return undefined;
  let bytes: Buffer;
  try {
    bytes = readFileSync(from.value);
  } catch (err) {
    throw new ClientUsageError(`${from.source}: cannot read ${from.value} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(bytes.toString('latin1'))) {
    throw new ClientUsageError(`${from.source}: ${from.value} is not a PEM file with a ${kind === 'CERTIFICATE' ? 'certificate' : 'private key'}`);
  }
  return bytes;
}
