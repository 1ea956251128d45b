// Benchmarks take `--name value` flags; a misspelt one must stop the run with one line, not
// be silently ignored while a long run measures the defaults.

/** A variable's space-separated words (extra flags for the members), none when it is unset. */
export function envWords(name: string): string[] {
  return (process.env[name] ?? '').split(' ').filter((w) => w !== '');
}

/** Throws naming the first `--flag` on the command line that is not in `known`. */
export function rejectUnknownFlags(known: readonly string[], argv: readonly string[] = process.argv.slice(2)): void {
  for (const arg of argv) {
    if (!arg.startsWith('--')) continue;
    const name = arg.slice(2).split('=')[0]!;
    if (!known.includes(name)) throw new Error(`unknown flag --${name} (known: ${known.map((k) => `--${k}`).join(', ')})`);
  }
}

/** `--name value` or `--name=value` from the command line, else the environment variable `env`; undefined when neither. */
export function flagValue(name: string, env: string, argv: readonly string[] = process.argv.slice(2)): string | undefined {
  const at = argv.indexOf(`--${name}`);
  if (at >= 0) return argv[at + 1];
  const joined = argv.find((a) => a.startsWith(`--${name}=`));
  return joined !== undefined ? joined.slice(name.length + 3) : process.env[env];
}

/** A numeric flag (flagValue) of at least `min`, whole when `isWhole`; `fallback` when absent. */
export function numberFlag(name: string, env: string, fallback: number, o: { readonly min: number; readonly isWhole?: boolean }): number {
  const text = flagValue(name, env);
  if (text === undefined) return fallback;
  const value = Number(text);
  const isValid = Number.isFinite(value) && value >= o.min && (o.isWhole !== true || Number.isInteger(value));
  if (!isValid) throw new Error(`--${name} takes ${o.isWhole === true ? 'a whole number' : 'a number'} >= ${o.min}, not "${text}"`);
  return value;
}
