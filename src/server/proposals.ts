// Writes taken by a follower go to the leader as proposals, not as whole HTTP requests (etcd's
// MsgProp): the follower validates and encodes the command itself, sends it in a batch with the
// others of the same turn of the event loop over the peer rpc stream, learns from the leader's
// answer the index and term the entry was appended at, and answers its client from its own state
// machine once it applies that entry. The leader only checks and appends: no routing, no reply
// to build, no caller to keep. Outcomes stay exact: an entry of another term at that index means
// "not applied"; a lost answer means "unknown".
//
//   batch  = 0x02 | u32be n | n × (u16be length | principal (UTF-8; empty: none) | u32be length | command)
//   answer = 0x02 | u8 0 (appended) | f64 term | n × (u8 0 | f64 index  or  u8 code | u16be length | message)
//          | 0x02 | u8 1 (not the leader) | u16be length | message
import { ProposalDroppedError, type NodeId } from '../raft/index.js';
import type { Applied, RaftNode } from '../node/index.js';
import { ApiError, ERROR_STATUS, toApiError, type ErrorCode } from './errors.js';
import type { PeerRequest } from './forward.js';
import { isTracing, trace } from '../node/trace.js';

export const PROPOSALS_KIND = 0x02;
/** A batch holds at most this many commands or bytes; more wait for the next one. */
const MAX_BATCH_COMMANDS = 1024;
const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/** Principal names are short (auth.ts); a longer one is refused, not cut. */
const MAX_PRINCIPAL_BYTES = 1024;
const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** What the leader makes of one forwarded command. */
export type ProposalOutcome = { readonly index: number } | { readonly code: ErrorCode; readonly message: string };

/** A command, and the principal the follower authenticated for it (with --auth-file), for the leader to judge again. */
export interface ForwardedProposal {
  readonly command: Uint8Array;
  readonly principal: string | null;
}

export type ProposalsAnswer = { readonly term: number; readonly outcomes: readonly ProposalOutcome[] } | { readonly notLeader: string };

export function encodeProposals(proposals: readonly ForwardedProposal[]): Uint8Array {
  const names = proposals.map((p) => (p.principal === null ? EMPTY : encoder.encode(p.principal)));
  let size = 5;
  proposals.forEach((p, i) => (size += 6 + names[i]!.length + p.command.length));
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = PROPOSALS_KIND;
  view.setUint32(1, proposals.length);
  let at = 5;
  proposals.forEach((p, i) => {
    const name = names[i]!;
    if (name.length > MAX_PRINCIPAL_BYTES) throw new Error('a principal name is too long to forward');
    view.setUint16(at, name.length);
    out.set(name, at + 2);
    at += 2 + name.length;
    view.setUint32(at, p.command.length);
    out.set(p.command, at + 4);
    at += 4 + p.command.length;
  });
  return out;
}

/** The proposals of a batch; throws on anything malformed (the peer gets an error, nothing is appended). */
export function decodeProposals(bytes: Uint8Array): ForwardedProposal[] {
  if (bytes.length < 5 || bytes[0] !== PROPOSALS_KIND) throw new Error('malformed proposal batch');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(1);
  if (n === 0 || n > MAX_BATCH_COMMANDS) throw new Error(`a proposal batch holds 1 to ${MAX_BATCH_COMMANDS} commands, not ${n}`);
  const proposals: ForwardedProposal[] = [];
  let at = 5;
  for (let i = 0; i < n; i++) {
    if (at + 2 > bytes.length) throw new Error('proposal batch cut short');
    const nameLength = view.getUint16(at);
    if (nameLength > MAX_PRINCIPAL_BYTES || at + 2 + nameLength + 4 > bytes.length) throw new Error('proposal batch cut short');
    const principal = nameLength === 0 ? null : strictDecoder.decode(bytes.subarray(at + 2, at + 2 + nameLength));
    at += 2 + nameLength;
    const len = view.getUint32(at);
    if (len === 0 || at + 4 + len > bytes.length) throw new Error('proposal batch cut short');
    proposals.push({ command: bytes.subarray(at + 4, at + 4 + len), principal });
    at += 4 + len;
  }
  if (at !== bytes.length) throw new Error('proposal batch has trailing bytes');
  return proposals;
}

export function encodeProposalsAnswer(answer: ProposalsAnswer): Uint8Array {
  if ('notLeader' in answer) {
    const msg = encoder.encode(answer.notLeader.slice(0, 1000));
    const out = new Uint8Array(4 + msg.length);
    out[0] = PROPOSALS_KIND;
    out[1] = 1;
    new DataView(out.buffer).setUint16(2, msg.length);
    out.set(msg, 4);
    return out;
  }
  const messages = answer.outcomes.map((o) => ('code' in o ? encoder.encode(`${o.code}\n${o.message.slice(0, 1000)}`) : null));
  let size = 10;
  for (const m of messages) size += m === null ? 9 : 3 + m.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = PROPOSALS_KIND;
  out[1] = 0;
  view.setFloat64(2, answer.term);
  let at = 10;
  answer.outcomes.forEach((o, i) => {
    const m = messages[i];
    if (m === null || m === undefined) {
      out[at] = 0;
      view.setFloat64(at + 1, (o as { index: number }).index);
      at += 9;
    } else {
      out[at] = 1;
      view.setUint16(at + 1, m.length);
      out.set(m, at + 3);
      at += 3 + m.length;
    }
  });
  return out;
}

const isIndex = (x: number): boolean => Number.isSafeInteger(x) && x > 0;

export function decodeProposalsAnswer(bytes: Uint8Array, expected: number): ProposalsAnswer {
  const bad = (): Error => new Error('malformed answer to a proposal batch');
  if (bytes.length < 2 || bytes[0] !== PROPOSALS_KIND) throw bad();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[1] === 1) {
    if (bytes.length < 4 || 4 + view.getUint16(2) !== bytes.length) throw bad();
    return { notLeader: decoder.decode(bytes.subarray(4)) };
  }
  if (bytes[1] !== 0 || bytes.length < 10) throw bad();
  const term = view.getFloat64(2);
  if (!isIndex(term)) throw bad();
  const outcomes: ProposalOutcome[] = [];
  let at = 10;
  for (let i = 0; i < expected; i++) {
    if (at >= bytes.length) throw bad();
    if (bytes[at] === 0) {
      if (at + 9 > bytes.length) throw bad();
      const index = view.getFloat64(at + 1);
      if (!isIndex(index)) throw bad();
      outcomes.push({ index });
      at += 9;
    } else {
      if (at + 3 > bytes.length) throw bad();
      const len = view.getUint16(at + 1);
      if (at + 3 + len > bytes.length) throw bad();
      const text = decoder.decode(bytes.subarray(at + 3, at + 3 + len));
      const nl = text.indexOf('\n');
      outcomes.push({ code: refusalCode(nl > 0 ? text.slice(0, nl) : ''), message: nl > 0 ? text.slice(nl + 1) : text });
      at += 3 + len;
    }
  }
  if (at !== bytes.length) throw bad();
  return { term, outcomes };
}

/** A refused command was never appended: a code the leader sends that says otherwise is its fault. */
function refusalCode(code: string): ErrorCode {
  if (!Object.hasOwn(ERROR_STATUS, code)) return 'INTERNAL';
  return ERROR_STATUS[code as ErrorCode] === 504 ? 'INTERNAL' : (code as ErrorCode);
}

/**
 * Leader side: checks each forwarded command with `check` (an ApiError refuses that command
 * alone) and appends the rest, in order. `from` is the member that forwarded them. A node that
 * does not lead appends nothing.
 */
export function appendForwarded<R>(node: RaftNode<R>, proposals: readonly ForwardedProposal[], from: NodeId, check: (proposal: ForwardedProposal) => void): ProposalsAnswer {
  if (!node.isLeader) return { notLeader: `${node.id} is not the leader` };
  const outcomes: ProposalOutcome[] = [];
  let term = 0;
  for (const proposal of proposals) {
    try {
      check(proposal);
      const at = node.proposeForwarded(proposal.command, from);
      term = at.term;
      outcomes.push({ index: at.index });
    } catch (err) {
      // Nothing was appended, so nothing can apply: never an unknown outcome (504) here.
      const api = toApiError(err);
      const code = api instanceof ApiError && api.status !== 504 ? api.code : 'NO_LEADER';
      outcomes.push({ code, message: err instanceof Error ? err.message : String(err) });
    }
  }
  // Every command refused: the term is only a placeholder the answer's format needs.
  return { term: term === 0 ? Math.max(1, node.status().currentTerm) : term, outcomes };
}

interface Queued<R> extends ForwardedProposal {
  readonly resolve: (applied: Applied<R>) => void;
  readonly reject: (err: Error) => void;
}

export interface ForwarderStats {
  batches: number;
  commands: number;
}

/**
 * Follower side: `propose()` resolves with the entry's result as applied on this node. Commands
 * proposed in one turn of the event loop travel in one batch (at most 1,024 commands or 4 MiB).
 */
export class ProposalForwarder<R> {
  private queue: Queued<R>[] = [];
  private queuedBytes = 0;
  private isFlushScheduled = false;
  readonly stats: ForwarderStats = { batches: 0, commands: 0 };

  constructor(
    private readonly node: RaftNode<R>,
    private readonly request: PeerRequest,
    private readonly timeoutMs: number,
  ) {}

  /** `principal`: who asked, with --auth-file (the leader judges it again by its own file). */
  propose(command: Uint8Array, principal: string | null): Promise<Applied<R>> {
    return new Promise<Applied<R>>((resolve, reject) => {
      if (this.queue.length >= MAX_BATCH_COMMANDS || this.queuedBytes + command.length > MAX_BATCH_BYTES) this.flush();
      this.queue.push({ command, principal, resolve, reject });
      this.queuedBytes += command.length;
      if (!this.isFlushScheduled) {
        this.isFlushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.isFlushScheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    this.queuedBytes = 0;
    const leader = this.node.leaderId;
    if (leader === null || leader === this.node.id) {
      // No leader to send to (or this node just became it: the caller retries, nothing was sent).
      const err = new ApiError('NO_LEADER', leader === null ? 'no leader is known' : `${this.node.id} just became the leader; retry`);
      for (const q of batch) q.reject(err);
      return;
    }
    void this.send(leader, batch);
  }

  private async send(leader: NodeId, batch: readonly Queued<R>[]): Promise<void> {
    this.stats.batches++;
    this.stats.commands += batch.length;
    this.node.forwarding(batch.length);
    if (isTracing) trace('fwd-send', -1);
    let answer: ProposalsAnswer;
    try {
      const bytes = await this.request(leader, encodeProposals(batch), this.timeoutMs);
      answer = decodeProposalsAnswer(bytes, batch.length);
      if (isTracing && 'outcomes' in answer) trace('fwd-answer', (answer.outcomes[0] as { index?: number } | undefined)?.index ?? -1);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const maybeDelivered = (err as { maybeDelivered?: boolean }).maybeDelivered !== false;
      const out = maybeDelivered
        ? new ProposalDroppedError(`forwarding to the leader ${leader} failed (${reason}); the outcome is unknown`, 'unknown')
        : new ApiError('NO_LEADER', `the leader ${leader} could not be reached (${reason})`);
      this.node.forwardAnswered(batch.length);
      for (const q of batch) q.reject(out);
      return;
    }
    if ('notLeader' in answer) {
      this.node.forwardAnswered(batch.length);
      const err = new ApiError('NO_LEADER', answer.notLeader);
      for (const q of batch) q.reject(err);
      return;
    }
    batch.forEach((q, i) => {
      const o = answer.outcomes[i]!;
      if ('code' in o) {
        q.reject(new ApiError(o.code, o.message));
        return;
      }
      let settled: Promise<Applied<R>>;
      try {
        settled = this.node.awaitForwarded(o.index, answer.term);
      } catch (err) {
        settled = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      settled.then(q.resolve, q.reject);
    });
    this.node.forwardAnswered(batch.length);
  }
}
