// Where each outgoing message waits: every message the core makes goes through send(), which
// decides, as it is made, whether it may leave BEFORE the sync of the Ready that carries it
// (Ready.messages) or only AFTER (Ready.messagesAfterSync). The rule is the Ready contract in
// types.ts; this is the one place that applies it.
import type { Raft } from './raft.js';
import type { Message } from './types.js';

export function send(r: Raft, m: Message): void {
  if (mayLeaveBeforeSync(r, m)) r.messages.push(m);
  else r.messagesAfterSync.push(m);
}

/**
 * Whether `m` depends on nothing the next Ready writes. A change of currentTerm or votedFor not
 * yet handed to storage holds back everything: a message that carries the new term, or that
 * the new vote made possible, MUST NOT outlive a crash that forgets them (Figure 2). Ready()
 * also holds back what was made BEFORE such a change, so that a Ready which changes term or
 * vote sends nothing before its sync.
 */
function mayLeaveBeforeSync(r: Raft, m: Message): boolean {
  if (r.hasUnsyncedTermOrVote()) return false;
  switch (m.type) {
    case 'AppendEntries':
    case 'InstallSnapshot':
    case 'TimeoutNow':
    case 'Removed':
      // Only a leader sends these, in a term it has made durable. Thesis §10.2.1: it need not
      // wait for its own write of the entries it sends; the core counts its own copy toward
      // commitment only once advance() reports it durable (RaftLog.stableIndex).
      return true;
    case 'RequestVote':
    case 'RequestVoteResponse':
      // Thesis §9.6: a pre-vote changes no state and binds nobody; a real vote, or a grant, is
      // a promise for a term that MUST be durable first.
      return m.preVote;
    case 'AppendEntriesResponse':
    case 'InstallSnapshotResponse':
      // An acknowledgement says "I hold these entries": only once they are durable (§5.3).
      return false;
    default: {
      const never: never = m;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

/**
 * Drops acknowledgements still waiting for a sync that were made in an earlier term. A leader of
 * the current term may overwrite the entries they claim before that sync (§5.3), and they would
 * then leave claiming entries this server never made durable. The leader they answer is deposed
 * and resends what matters; nothing is lost but a message.
 */
export function dropStaleAcknowledgements(r: Raft): void {
  const queue = r.messagesAfterSync;
  let kept = 0;
  for (let i = 0; i < queue.length; i++) {
    const m = queue[i]!;
    if ((m.type === 'AppendEntriesResponse' || m.type === 'InstallSnapshotResponse') && m.term < r.term) continue;
    queue[kept++] = m;
  }
  queue.length = kept;
}
