// Argument parsing for the client commands (put, get, del, list, status, members, leader):
// node:util parseArgs in strict mode, and a ClientUsageError that is one line naming the flag
// or argument at fault, so scripts and people see at once what to fix.
import { parseArgs } from 'node:util';
import { normalizeEndpoint } from '../client/index.js';

export const DEFAULT_ENDPOINTS = 'http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003';
export const DEFAULT_CLI_TIMEOUT_MS = 5_000;

export class ClientUsageError extends Error {
  readonly exitCode = 2;
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** Flags every client command takes. */
export const COMMON_OPTIONS: OptionSpec = {
  endpoints: { type: 'string' },
  json: { type: 'boolean' },
  'timeout-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export interface ParsedCommand {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
}

export function parseCommand(command: string, argv: readonly string[], extra: OptionSpec): ParsedCommand {
  const options = { ...COMMON_OPTIONS, ...extra };
  try {
    const parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
    const values: Record<string, string | boolean | undefined> = {};
    for (const [k, v] of Object.entries(parsed.values)) values[k] = Array.isArray(v) ? v[v.length - 1] : v;
    return { values, positionals: parsed.positionals };
  } catch (err) {
    throw new ClientUsageError(parseErrorLine(command, err, options));
  }
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

export function choiceFlag<T extends string>(parsed: ParsedCommand, name: string, choices: readonly T[]): T | undefined {
  const v = stringFlag(parsed, name);
  if (v === undefined) return undefined;
  if (!(choices as readonly string[]).includes(v)) throw new ClientUsageError(`--${name} must be one of ${choices.join(', ')}, not "${v}"`);
  return v as T;
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
