// The configurations a server's log holds (thesis §4.1): the snapshot's, then one per
// configuration entry after it. The newest is in force whether committed or not, so appending an
// entry changes the configuration at once, truncating it away reverts it, and compacting the log
// folds the history into the snapshot's. One object owns all of it, so a snapshot install is one
// call (restore) and no caller can move one field without the others.
import type { Configuration } from './types.js';

export interface ConfigEntry {
  readonly index: number;
  readonly config: Configuration;
}

export class ConfigHistory {
  private current: Configuration;
  private snapshotConfig: Configuration;
  /** Configuration entries after the snapshot, in index order. */
  private readonly entries: ConfigEntry[] = [];

  constructor(snapshotConfig: Configuration) {
    this.snapshotConfig = snapshotConfig;
    this.current = snapshotConfig;
  }

  /** The configuration in force: the newest entry's, or the snapshot's (thesis §4.1). */
  get inForce(): Configuration {
    return this.current;
  }

  /** The configuration as of the snapshot's last index (what an InstallSnapshot carries, §7). */
  get atSnapshot(): Configuration {
    return this.snapshotConfig;
  }

  /** The newest configuration entry in the log, or undefined if the snapshot's is in force. */
  get latest(): ConfigEntry | undefined {
    return this.entries.at(-1);
  }

  /** A configuration entry was appended at `index`: it is in force from now on. */
  add(index: number, config: Configuration): void {
    this.entries.push({ index, config });
    this.current = config;
  }

  /** The configuration in force at `index` (the newest entry at or below it). */
  at(index: number): Configuration {
    let config = this.snapshotConfig;
    for (const c of this.entries) {
      if (c.index > index) break;
      config = c.config;
    }
    return config;
  }

  /** The log lost `index` and everything after it (§5.3): their configurations revert. */
  truncateFrom(index: number): void {
    let changed = false;
    while (this.entries.length > 0 && this.entries[this.entries.length - 1]!.index >= index) {
      this.entries.pop();
      changed = true;
    }
    if (changed) this.current = this.entries.at(-1)?.config ?? this.snapshotConfig;
  }

  /** The log up to `index` was compacted into a snapshot (§7): its history folds into it. */
  compact(index: number): void {
    this.snapshotConfig = this.at(index);
    while (this.entries.length > 0 && this.entries[0]!.index <= index) this.entries.shift();
  }

  /** A snapshot replaced the whole log (§7): its configuration is all there is, and in force. */
  restore(config: Configuration): void {
    this.entries.length = 0;
    this.snapshotConfig = config;
    this.current = config;
  }
}
