// Child process for crash.test.ts: appends and syncs batches forever, printing each synced
// (acknowledged) last index, until the parent SIGKILLs it. Run with no arguments it does nothing,
// so the test runner may load it harmlessly.
import { FileStorage } from '../../src/storage/index.js';
import { range, snapshotAt } from './conformance.js';

async function main(dir: string, seed: number): Promise<void> {
  const storage = await FileStorage.open(dir, { segmentBytes: 16 * 1024 });
  const state = await storage.load();
  let lastIndex = state.entries.at(-1)?.index ?? state.applied;
  let term = Math.max(1, state.hardState.currentTerm);
  // A snapshot MUST carry the term of the entry at its index, or recovery rightly discards the
  // log after it (§7); so snapshots are taken only inside the run of entries of the current term.
  let termStartIndex = lastIndex + 1;
  for (let i = state.entries.length - 1; i >= 0 && state.entries[i]!.term === term; i--) termStartIndex = state.entries[i]!.index;
  let random = seed;
  const next = (bound: number): number => {
    random = (random * 1103515245 + 12345) & 0x7fffffff;
    return random % bound;
  };
  process.stdout.write(`ready ${lastIndex}\n`);
  for (;;) {
    // Now and then a new term overwrites the tail (§5.3), always ending past the old last index.
    const overwrite = next(10) === 0 ? Math.min(next(4), lastIndex - state.applied) : 0;
    const first = lastIndex + 1 - overwrite;
    if (overwrite > 0) {
      term++;
      termStartIndex = first;
    }
    const count = overwrite + 1 + next(40);
    storage.append(range(first, first + count - 1, term, 20 + next(200)));
    storage.setHardState({ currentTerm: term, votedFor: null, commitIndex: first + count - 1 });
    // Several concurrent callers, as a runtime with group commit has.
    await Promise.all([storage.sync(), storage.sync(), storage.sync()]);
    lastIndex = first + count - 1;
    process.stdout.write(`${lastIndex}\n`);
    if (next(25) === 0 && lastIndex - 20 >= termStartIndex) {
      await storage.saveSnapshot(snapshotAt(lastIndex - 20, term));
      await storage.compact(lastIndex - 20);
    }
  }
}

const [dir, seed] = process.argv.slice(2);
if (dir !== undefined) {
  main(dir, Number(seed ?? 1)).catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(2);
  });
}
