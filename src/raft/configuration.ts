// Cluster membership as it lives in the log (thesis §4.1): a configuration entry takes effect on
// every server as soon as it is appended, committed or not. Joint consensus (thesis §4.3) is the
// case votersOutgoing ≠ []: decisions then need a majority of each set.
import type { Configuration, NodeId } from './types.js';

export const EMPTY_CONFIGURATION: Configuration = Object.freeze({
  voters: [],
  votersOutgoing: [],
  learners: [],
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Configuration entries are rare (one per membership change), so a readable encoding costs nothing.
export function encodeConfiguration(config: Configuration): Uint8Array {
  return encoder.encode(
    JSON.stringify({ voters: config.voters, votersOutgoing: config.votersOutgoing, learners: config.learners }),
  );
}

export function decodeConfiguration(bytes: Uint8Array): Configuration {
  const raw: unknown = JSON.parse(decoder.decode(bytes));
  if (typeof raw !== 'object' || raw === null) throw new Error('configuration entry is not an object');
  const r = raw as Record<string, unknown>;
  return {
    voters: stringList(r['voters'], 'voters'),
    votersOutgoing: stringList(r['votersOutgoing'] ?? [], 'votersOutgoing'),
    learners: stringList(r['learners'] ?? [], 'learners'),
  };
}

function stringList(value: unknown, name: string): readonly NodeId[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new Error(`configuration field ${name} is not a list of node ids`);
  }
  return value as NodeId[];
}

/** Every server that receives the log: voters of both sets and learners, each once. */
export function members(config: Configuration): NodeId[] {
  const all = new Set<NodeId>([...config.voters, ...config.votersOutgoing, ...config.learners]);
  return [...all];
}

/** May this server vote and campaign? (Learners and removed servers may not.) */
export function isVoter(config: Configuration, id: NodeId): boolean {
  return config.voters.includes(id) || config.votersOutgoing.includes(id);
}

export function isJoint(config: Configuration): boolean {
  return config.votersOutgoing.length > 0;
}

export function sameConfiguration(a: Configuration, b: Configuration): boolean {
  return sameSet(a.voters, b.voters) && sameSet(a.votersOutgoing, b.votersOutgoing) && sameSet(a.learners, b.learners);
}

function sameSet(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}
