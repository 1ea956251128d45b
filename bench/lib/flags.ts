// Benchmarks take `--name value` flags; a misspelt one must stop the run with one line, not
// be silently ignored while a long run measures the defaults.

/** Throws naming the first `--flag` on the command line that is not in `known`. */
export function rejectUnknownFlags(known: readonly string[], argv: readonly string[] = process.argv.slice(2)): void {
  for (const arg of argv) {
    if (!arg.startsWith('--')) continue;
    const name = arg.slice(2).split('=')[0]!;
    if (!known.includes(name)) throw new Error(`unknown flag --${name} (known: ${known.map((k) => `--${k}`).join(', ')})`);
  }
}
