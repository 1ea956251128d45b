// Cluster membership as it lives in the log (thesis §4.1): a configuration entry takes effect on
// every server as soon as it is appended, committed or not. Joint consensus (thesis §4.3) is the
// case votersOutgoing ≠ []: decisions then need a majority of each set.
import { MAX_NODE_ID_BYTES, type Configuration, type NodeId } from './types.js';

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

/**
 * A node id every peer can carry and read back unchanged: a non-empty string of at most
 * MAX_NODE_ID_BYTES UTF-8 bytes without lone surrogates (which UTF-8 would turn into U+FFFD, so
 * the receiver would read another id).
 */
export function isValidNodeId(id: unknown): id is NodeId {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_NODE_ID_BYTES) return false;
  let bytes = 0;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c < 0xd800 || c > 0xdfff) bytes += 3;
    else if (c <= 0xdbff && i + 1 < id.length && (id.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else return false;
  }
  return bytes <= MAX_NODE_ID_BYTES;
}

/**
 * Why `config` cannot be a configuration in force, or null if it can. Every configuration the
 * core builds (bootstrap, applyChanges, transitionTo) passes; one from a message must too before
 * it is adopted: with a duplicate voter a single server would count twice toward a majority
 * (§5.2, thesis §4.3), with no voters nothing could ever be elected or committed, and an id the
 * codec cannot carry would leave this node unable to encode its own messages.
 */
export function configurationProblem(config: Configuration): string | null {
  const lists: [string, unknown][] = [['voters', config.voters], ['votersOutgoing', config.votersOutgoing], ['learners', config.learners]];
  for (const [name, list] of lists) {
    if (!Array.isArray(list)) return `${name} is not a list`;
    const seen = new Set<string>();
    for (const id of list as unknown[]) {
      if (!isValidNodeId(id)) return `${name} holds an invalid node id`;
      if (seen.has(id)) return `${name} lists ${id} twice`;
      seen.add(id);
    }
  }
  if (config.voters.length === 0) return 'there are no voters';
  // A learner may still be an outgoing voter (a voter demoted by a joint change), never an incoming one.
  for (const id of config.learners) if (config.voters.includes(id)) return `${id} is both a voter and a learner`;
  return null;
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
