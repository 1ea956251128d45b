// A server that learns it is out of the cluster (a `Removed` message from the leader, or a leader
// that committed a configuration without itself) really is: the entry it was told about is
// committed, is a configuration entry, and does not list it. A notice that ran ahead of the
// commit could make an operator's tooling stop a server a quorum still needs.
import { decodeConfiguration, members } from '../../raft/index.js';
import type { CommittedLog } from './committed-log.js';
import type { MemberView } from './violation.js';
import { violation } from './violation.js';

export class RemovalNotice {
  private readonly checked = new Set<string>();
  /** Notices checked so far, for the run's summary. */
  count = 0;

  constructor(private readonly committed: CommittedLog) {}

  observe(node: MemberView): void {
    const notice = node.removed;
    if (notice === null) return;
    const key = `${node.id}@${notice.configIndex}`;
    if (this.checked.has(key)) return;
    this.checked.add(key);
    this.count++;
    const told = `${node.id} was told by ${notice.by} that entry ${notice.configIndex} removed it`;
    if (this.committed.commitIndex < notice.configIndex) {
      violation('Removal Notice', `${told}, but the cluster has committed only up to ${this.committed.commitIndex}`);
    }
    const entry = this.committed.entryAt(notice.configIndex);
    if (entry === undefined) return; // committed under a snapshot: its bytes were never seen
    if (entry.type !== 'config') violation('Removal Notice', `${told}, but the committed entry there is not a configuration`);
    const config = decodeConfiguration(entry.data);
    if (members(config).includes(node.id)) violation('Removal Notice', `${told}, but that committed configuration lists it: ${JSON.stringify(config)}`);
  }
}
