// Flag parsing for the raftkv command line: node:util parseArgs in strict mode, with every flag
// also readable from the environment (RAFTKV_<FLAG_IN_UPPER_SNAKE>). A wrong or missing flag is
// a UsageError: one line naming the flag, exit code 2, and nothing written.
import { parseArgs } from 'node:util';
import { ID_PATTERN, parseAddress, type HostPort } from '../server/address.js';

export class UsageError extends Error {
  readonly exitCode = 2;
}

/**
 * One flag of one command: what parsing needs (type, short form) and what help, shell completion
 * and docs/operations.md show (the value's placeholder, a description, the default, the choices).
 * Every command's flags are one table of these; nothing else lists them.
 */
export interface FlagDef {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** The value's placeholder in help, e.g. HOST:PORT; string flags only. @default 'VALUE' */
  readonly value?: string;
  readonly description: string;
  /** The default as help shows it. */
  readonly default?: string;
  /** The values it takes: any other is refused at parsing, and shell completion offers these. */
  readonly choices?: readonly string[];
  /** Completion offers file names for its value. */
  readonly isFile?: boolean;
}

/** A command's flags, by name (without the dashes). */
export type FlagTable = Readonly<Record<string, FlagDef>>;

/** @deprecated the old name of FlagTable, kept for flags added on other branches. */
export type FlagSpec = FlagTable;

/** What node:util parseArgs needs of a table. */
export function parseArgsOptions(table: FlagTable): Record<string, { type: 'string' | 'boolean'; short?: string }> {
  const out: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, def] of Object.entries(table)) out[name] = def.short === undefined ? { type: def.type } : { type: def.type, short: def.short };
  return out;
}

export interface ParsedFlags {
  readonly values: Record<string, string | boolean | undefined>;
  readonly positionals: string[];
}

export function envName(flag: string): string {
  return `RAFTKV_${flag.replace(/-/g, '_').toUpperCase()}`;
}

/**
 * The first value that its flag's `choices` do not list, as a one-line message naming the flag
 * (or the environment variable it came from); null when every value is one of its choices.
 */
export function choiceProblem(table: FlagTable, values: Readonly<Record<string, string | boolean | undefined>>, fromEnv: ReadonlySet<string> = new Set()): string | null {
  for (const [name, def] of Object.entries(table)) {
    const v = values[name];
    if (def.choices === undefined || typeof v !== 'string' || def.choices.includes(v)) continue;
    return notAChoice(fromEnv.has(name) ? envName(name) : `--${name}`, def.choices, v);
  }
  return null;
}

function notAChoice(label: string, choices: readonly string[], value: string): string {
  return `${label} must be one of ${choices.join(', ')}, not "${value}"`;
}

/**
 * A flag's value narrowed to `choices`, undefined when not given. Parsing has refused any other
 * value (parseFlags, parseCommand); `fail` builds the command's usage error if a caller skipped it.
 */
export function choiceOf<T extends string>(values: Readonly<Record<string, string | boolean | undefined>>, name: string, choices: readonly T[], fail: (message: string) => Error): T | undefined {
  const v = values[name];
  if (typeof v !== 'string' || v === '') return undefined;
  if (!(choices as readonly string[]).includes(v)) throw fail(notAChoice(`--${name}`, choices, v));
  return v as T;
}

/** A serve or cluster flag with choices, narrowed to them; `fallback` when not given. */
export function choiceValue<T extends string>(flags: ParsedFlags, name: string, choices: readonly T[], fallback: T): T {
  return choiceOf(flags.values, name, choices, (message) => new UsageError(message)) ?? fallback;
}

/** Parses argv against `spec`, filling unset flags from the environment; a value outside its flag's choices is refused. */
export function parseFlags(argv: string[], spec: FlagTable, env: NodeJS.ProcessEnv = process.env): ParsedFlags {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options: parseArgsOptions(spec), strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(usageMessage(err));
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [k, v] of Object.entries(parsed.values)) values[k] = Array.isArray(v) ? v[v.length - 1] : v;
  const setByEnv = new Set<string>();
  for (const [name, opt] of Object.entries(spec)) {
    if (values[name] !== undefined) continue;
    const fromEnv = env[envName(name)];
    if (fromEnv === undefined || fromEnv === '') continue;
    if (opt.type === 'boolean') {
      if (!/^(1|0|true|false|yes|no)$/i.test(fromEnv)) throw new UsageError(`${envName(name)} must be true or false, not "${fromEnv}"`);
      values[name] = /^(1|true|yes)$/i.test(fromEnv);
    } else {
      values[name] = fromEnv;
      setByEnv.add(name);
    }
  }
  const problem = choiceProblem(spec, values, setByEnv);
  if (problem !== null) throw new UsageError(problem);
  return { values, positionals: parsed.positionals };
}

function usageMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  // parseArgs explains at length; keep the first sentence, which names the flag.
  const first = text.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '');
  return first.replace(/^Unknown option/, 'unknown flag').replace(/^Option/, 'flag');
}

export function requireString(flags: ParsedFlags, name: string): string {
  const v = flags.values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required (or set ${envName(name)})`);
  return v;
}

export function optionalString(flags: ParsedFlags, name: string): string | undefined {
  const v = flags.values[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function intFlag(flags: ParsedFlags, name: string, fallback: number, min: number, max: number): number {
  const v = flags.values[name];
  if (v === undefined) return fallback;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not "${String(v)}"`);
  }
  return n;
}

export type { HostPort };

export function parseHostPort(value: string, flag: string): HostPort {
  const a = parseAddress(value);
  if (a === null) throw new UsageError(`--${flag} must be HOST:PORT, not "${value}"`);
  return a;
}

/** `n1=HOST:PORT,n2=HOST:PORT` → ordered map of node id to peer address. */
export function parseInitialCluster(value: string, flag = 'initial-cluster'): Map<string, HostPort> {
  const out = new Map<string, HostPort>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${flag} must be ID=HOST:PORT,..., not "${part}"`);
    const id = part.slice(0, eq);
    if (!ID_PATTERN.test(id)) throw new UsageError(`--${flag} has a bad node id "${id}"`);
    if (out.has(id)) throw new UsageError(`--${flag} names ${id} twice`);
    out.set(id, parseHostPort(part.slice(eq + 1), flag));
  }
  return out;
}
