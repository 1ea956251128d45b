// The node side of `raftkv cluster`'s partition control: a node started with --cluster-control
// takes, over the IPC channel its supervisor opened (and nothing else: no port, no file), the list
// of members it must not hear, so the dashboard can cut one node off without network namespaces.
// Every message is checked; a malformed one is ignored. Without that channel the flag is refused.
import { UsageError } from './flags.js';

export interface BlockMessage {
  readonly type: 'block';
  readonly peers: readonly string[];
}

const ID = /^[A-Za-z0-9_.-]{1,64}$/;

export function parseBlockMessage(x: unknown): BlockMessage | null {
  if (typeof x !== 'object' || x === null) return null;
  const m = x as Record<string, unknown>;
  if (m['type'] !== 'block' || !Array.isArray(m['peers']) || m['peers'].length > 64) return null;
  const peers = m['peers'] as unknown[];
  if (!peers.every((p): p is string => typeof p === 'string' && ID.test(p))) return null;
  return { type: 'block', peers };
}

/** The live set of blocked peers, kept in step with the supervisor; tells it when it listens. */
export function listenForPartitions(): Set<string> {
  const send = process.send?.bind(process);
  if (send === undefined || process.channel === undefined) {
    throw new UsageError('--cluster-control is only for nodes that `raftkv cluster` starts (it needs the channel that command opens)');
  }
  const blocked = new Set<string>();
  process.on('message', (x: unknown) => {
    const m = parseBlockMessage(x);
    if (m === null) return;
    blocked.clear();
    for (const p of m.peers) blocked.add(p);
  });
  // The channel must not keep a stopping node alive.
  process.channel.unref();
  send({ type: 'listening' });
  return blocked;
}
