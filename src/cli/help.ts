// Help text, generated from each command's flag table (flags.ts): `raftkv COMMAND --help`,
// `raftkv --help`, and the Markdown reference in docs/operations.md (a test holds the doc to it),
// so a flag added to a table is documented everywhere at once.
import { envName, type FlagDef, type FlagTable } from './flags.js';

/** What help shows of one command. */
export interface CommandDoc {
  readonly name: string;
  /** What follows `raftkv NAME` on the usage line. */
  readonly usage: string;
  readonly summary: string;
  readonly flags: FlagTable;
  /** Sub-commands (members list|add|...), offered by completion. */
  readonly actions?: readonly string[];
  /** Whether every flag also comes from RAFTKV_<FLAG> (serve and cluster). */
  readonly isEnvForAll?: boolean;
  readonly footer?: string;
}

export function flagLabel(name: string, def: FlagDef): string {
  const long = `--${name}${def.type === 'string' ? ` ${def.value ?? 'VALUE'}` : ''}`;
  return def.short === undefined ? long : `-${def.short}, ${long}`;
}

function flagNote(def: FlagDef): string {
  const notes = [...(def.choices !== undefined ? [`one of ${def.choices.join(', ')}`] : []), ...(def.default !== undefined ? [`default ${def.default}`] : [])];
  return notes.length === 0 ? def.description : `${def.description} (${notes.join('; ')})`;
}

export function commandHelp(doc: CommandDoc): string {
  const entries = Object.entries(doc.flags);
  const width = Math.min(34, Math.max(0, ...entries.map(([n, d]) => flagLabel(n, d).length)));
  const lines = [`usage: raftkv ${doc.name}${doc.usage === '' ? '' : ` ${doc.usage}`}`, '', doc.summary];
  if (entries.length > 0) {
    lines.push('', 'Flags:');
    for (const [name, def] of entries) {
      const label = flagLabel(name, def);
      lines.push(label.length > width ? `  ${label}\n  ${''.padEnd(width)}  ${flagNote(def)}` : `  ${label.padEnd(width)}  ${flagNote(def)}`);
    }
  }
  if (doc.isEnvForAll === true && entries.length > 0) {
    const [first] = entries[0]!;
    lines.push('', `Every flag may also come from the environment: --${first} as ${envName(first)}, and so on.`);
  }
  if (doc.footer !== undefined) lines.push('', doc.footer);
  return `${lines.join('\n')}\n`;
}

export function mainHelp(commands: readonly CommandDoc[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: raftkv COMMAND [ARGS] [flags]',
    '',
    'The Raft consensus algorithm and a replicated key-value store: serve a node, run a local',
    'cluster, or talk to a cluster as a client.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    '`raftkv COMMAND --help` shows its arguments and flags; `raftkv --version` the version.',
    'Flags go after the command; client flags may also come before it (raftkv --endpoints URL get KEY).',
    'Flags also come from the environment (--endpoints as RAFTKV_ENDPOINTS, --token as RAFTKV_TOKEN, ...).',
    '',
  ].join('\n');
}

/** The CLI reference of docs/operations.md, between its markers. */
export function markdownReference(commands: readonly CommandDoc[]): string {
  const out: string[] = [];
  for (const c of commands) {
    out.push(`### raftkv ${c.name}`, '', `\`raftkv ${c.name}${c.usage === '' ? '' : ` ${c.usage}`}\``, '', `${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.${c.isEnvForAll === true ? ' Every flag may also come from `RAFTKV_<FLAG>`.' : ''}`, '');
    const entries = Object.entries(c.flags);
    if (entries.length > 0) {
      out.push('| flag | default | meaning |', '| --- | --- | --- |');
      for (const [name, def] of entries) {
        const choices = def.choices !== undefined ? ` (${def.choices.join(', ')})` : '';
        out.push(`| \`${flagLabel(name, def).replace(/\|/g, '\\|')}\` | ${def.default !== undefined ? `\`${def.default}\`` : ''} | ${def.description.replace(/\|/g, '\\|')}${choices} |`);
      }
      out.push('');
    }
  }
  return out.join('\n');
}
