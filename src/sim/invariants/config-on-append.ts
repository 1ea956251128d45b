// A configuration takes effect as soon as its entry is in the log, committed or not (thesis
// §4.1: "a server always uses the latest configuration in its log"), and reverts when a
// conflicting leader truncates it away. Checked two ways:
//   - every Ready: when a node hands storage a configuration entry, the configuration it acts
//     on is already that entry's (or a later one's): a follower that waited for the commit
//     before switching would be caught here;
//   - periodically (fullCheck): the configuration in force is the one in the newest
//     configuration entry of the log (or the snapshot's, if the log after it holds none).
import { decodeConfiguration, sameConfiguration, type Configuration, type Entry } from '../../raft/index.js';
import type { MemberView } from './violation.js';
import { violation } from './violation.js';

export class ConfigOnAppend {
  /** A Ready's entries are being handed to storage; `node` is the core right after ready(). */
  persist(node: MemberView, entries: readonly Entry[]): void {
    for (let k = entries.length - 1; k >= 0; k--) {
      const e = entries[k]!;
      if (e.type !== 'config') continue;
      if (node.configIndex < e.index) {
        violation('Config On Append', `${node.id} appended the configuration entry at ${e.index} (term ${e.term}) but acts on the one at ${node.configIndex}`);
      }
      if (node.configIndex === e.index) this.expect(node, decodeConfiguration(e.data), e.index);
      return;
    }
  }

  fullCheck(node: MemberView, snapshotConfig: Configuration | null): void {
    for (let i = node.lastIndex; i > node.snapshotIndex; i--) {
      const e = node.entryAt(i);
      if (e === undefined || e.type !== 'config') continue;
      if (node.configIndex !== i) {
        violation('Config On Append', `${node.id}'s newest configuration entry is at ${i} but it acts on the one at ${node.configIndex}`);
      }
      this.expect(node, decodeConfiguration(e.data), i);
      return;
    }
    if (node.configIndex !== node.snapshotIndex) {
      violation('Config On Append', `${node.id} holds no configuration entry after its snapshot at ${node.snapshotIndex} but acts on the one at ${node.configIndex}`);
    }
    if (snapshotConfig !== null) this.expect(node, snapshotConfig, node.snapshotIndex);
  }

  private expect(node: MemberView, config: Configuration, index: number): void {
    if (!sameConfiguration(node.config, config)) {
      violation('Config On Append', `${node.id} acts on ${JSON.stringify(node.config)}, not on ${JSON.stringify(config)} from its entry at ${index}`);
    }
  }
}
