// Binary codec for the consensus core's Messages (Figure 2, §7, thesis §3.10, §9.6). One
// message is one frame; the layout is a contract (docs/transport.md):
//
//   frame    = u32be length | u8 type | body          (length counts type + body)
//   body     = str from | str to | varint term | fields of the type
//   str      = u8 byteLength | UTF-8 bytes
//   varint   = unsigned LEB128, at most 8 bytes, value <= 2^53 - 1 (terms, indexes, counts)
//   entry    = varint index | varint term | u8 type (0 normal, 1 config) | varint len | data
//
// An AppendEntries ends with its entries, or, in message format 2 (frame.ts, MESSAGE_FORMAT),
// with `varint leaderStable` after them, sent only to a peer that announced format 2.
//
// AppendEntries comes out as several buffers: a small header and views of the entry cache
// (entry-cache.ts), so a run of entries is encoded once however many followers receive it.
// Decoding returns entry and snapshot data as views into the received frame, never copies.
import { CodecError, Reader, Writer } from './binary.js';
import { EntryEncodingCache } from './entry-cache.js';
import { MESSAGE_FORMAT } from './frame.js';
import { DEFAULT_TRANSPORT_OPTIONS } from './types.js';
import type { Configuration, Entry, Message, MessageType, NodeId } from '../raft/types.js';

/** Frame type bytes 1..8 are messages; control frames (frame.ts) use 0x40 and above. */
export const MESSAGE_TYPE_CODES: Readonly<Record<MessageType, number>> = {
  RequestVote: 1,
  RequestVoteResponse: 2,
  AppendEntries: 3,
  AppendEntriesResponse: 4,
  InstallSnapshot: 5,
  InstallSnapshotResponse: 6,
  TimeoutNow: 7,
  Removed: 8,
};

export function isMessageFrameType(type: number): boolean {
  return type >= 1 && type <= 8;
}

export const FRAME_HEADER_BYTES = 5;

const ENTRY_TYPES_BY_CODE = ['normal', 'config'] as const;
const FLAG_A = 1;
const FLAG_B = 2;

/** Encodes messages, sharing one entry cache across every peer it encodes for. */
export class MessageEncoder {
  private readonly writer = new Writer();
  readonly entryCache: EntryEncodingCache;

  constructor(entryCacheBytes: number = DEFAULT_TRANSPORT_OPTIONS.entryCacheBytes) {
    this.entryCache = new EntryEncodingCache(entryCacheBytes);
  }

  /**
   * The whole frame: one Buffer, or a header followed by views that are never written to.
   * `format` is the message format the receiver decodes (frame.ts, MESSAGE_FORMAT).
   */
  encode(m: Message, format: number = MESSAGE_FORMAT): Buffer | Buffer[] {
    const w = this.writer;
    w.reset();
    w.u32(0);
    w.u8(MESSAGE_TYPE_CODES[m.type]);
    w.shortString(m.from, 'from');
    w.shortString(m.to, 'to');
    w.varint(m.term, 'term');
    switch (m.type) {
      case 'RequestVote':
        w.u8((m.preVote ? FLAG_A : 0) | (m.transfer ? FLAG_B : 0));
        w.varint(m.lastLogIndex, 'lastLogIndex');
        w.varint(m.lastLogTerm, 'lastLogTerm');
        break;
      case 'RequestVoteResponse':
        w.u8((m.preVote ? FLAG_A : 0) | (m.voteGranted ? FLAG_B : 0));
        break;
      case 'AppendEntries': {
        w.varint(m.prevLogIndex, 'prevLogIndex');
        w.varint(m.prevLogTerm, 'prevLogTerm');
        w.varint(m.leaderCommit, 'leaderCommit');
        w.varint(m.seq, 'seq');
        w.varint(m.entries.length, 'entry count');
        // Format 2 (frame.ts, MESSAGE_FORMAT): the leader's durable index follows the entries.
        const stable = format >= 2 ? m.leaderStable ?? 0 : 0;
        if (m.entries.length === 0) {
          if (stable > 0) w.varint(stable, 'leaderStable');
          break;
        }
        const chunks: Buffer[] = [Buffer.alloc(0)];
        const entryBytes = this.entryCache.encodeRun(m.entries, chunks);
        const headerEnd = w.offset;
        if (stable > 0) w.varint(stable, 'leaderStable');
        w.patchU32(0, w.offset - 4 + entryBytes);
        const written = w.finish();
        chunks[0] = written.subarray(0, headerEnd);
        if (written.length > headerEnd) chunks.push(written.subarray(headerEnd));
        return chunks;
      }
      case 'AppendEntriesResponse':
        w.u8(m.success ? FLAG_A : 0);
        w.varint(m.matchIndex, 'matchIndex');
        w.varint(m.rejectedIndex, 'rejectedIndex');
        w.varint(m.conflictTerm, 'conflictTerm');
        w.varint(m.conflictIndex, 'conflictIndex');
        w.varint(m.seq, 'seq');
        break;
      case 'InstallSnapshot': {
        const { meta, data } = m.snapshot;
        w.varint(m.seq, 'seq');
        w.varint(meta.index, 'snapshot index');
        w.varint(meta.term, 'snapshot term');
        writeIds(w, meta.config.voters, 'voter');
        writeIds(w, meta.config.votersOutgoing, 'outgoing voter');
        writeIds(w, meta.config.learners, 'learner');
        w.varint(data.length, 'snapshot length');
        if (data.length === 0) break;
        w.patchU32(0, w.offset - 4 + data.length);
        return [w.finish(), Buffer.from(data.buffer, data.byteOffset, data.length)];
      }
      case 'InstallSnapshotResponse':
        w.varint(m.matchIndex, 'matchIndex');
        w.varint(m.seq, 'seq');
        break;
      case 'TimeoutNow':
        break;
      case 'Removed':
        w.varint(m.configIndex, 'configIndex');
        break;
      default: {
        const never: never = m;
        throw new CodecError(`unknown message ${(never as { type: string }).type}`);
      }
    }
    w.patchU32(0, w.offset - 4);
    return w.finish();
  }
}

function writeIds(w: Writer, ids: readonly NodeId[], what: string): void {
  w.varint(ids.length, `${what} count`);
  for (const id of ids) w.shortString(id, what);
}

function readIds(r: Reader, what: string): NodeId[] {
  const count = r.varint(`${what} count`);
  // Each id takes at least one byte, so a count beyond the frame is malformed, not a huge array.
  if (count > r.end - r.offset) throw new CodecError(`${what} count ${count} exceeds the frame`);
  const ids: NodeId[] = [];
  for (let i = 0; i < count; i++) ids.push(r.shortString(what));
  return ids;
}

function readFlags(r: Reader, allowed: number): number {
  const flags = r.u8('flags');
  if ((flags & ~allowed) !== 0) throw new CodecError(`unknown flag bits 0x${flags.toString(16)}`);
  return flags;
}

let defaultEncoder: MessageEncoder | null = null;

/** Encodes with a process-wide encoder (and entry cache); transports own their own. */
export function encodeMessage(m: Message, format: number = MESSAGE_FORMAT): Buffer | Buffer[] {
  defaultEncoder ??= new MessageEncoder();
  return defaultEncoder.encode(m, format);
}

/** Total length of an encoded frame. */
export function encodedLength(frame: Buffer | Buffer[]): number {
  if (!Array.isArray(frame)) return frame.length;
  let n = 0;
  for (const b of frame) n += b.length;
  return n;
}

/**
 * Decodes one whole frame (length prefix included). Throws CodecError on anything malformed:
 * a wrong length, an unknown type or flag, a truncated field or trailing bytes.
 */
export function decodeMessage(frame: Buffer): Message {
  if (frame.length < FRAME_HEADER_BYTES) throw new CodecError('frame shorter than its header');
  const length = frame.readUInt32BE(0);
  if (length !== frame.length - 4) throw new CodecError(`frame length ${length} but ${frame.length - 4} bytes follow`);
  const r = new Reader(frame, 4);
  const type = r.u8('type');
  const from = r.shortString('from');
  const to = r.shortString('to');
  const term = r.varint('term');
  let m: Message;
  switch (type) {
    case 1: {
      const flags = readFlags(r, FLAG_A | FLAG_B);
      const lastLogIndex = r.varint('lastLogIndex');
      const lastLogTerm = r.varint('lastLogTerm');
      m = { type: 'RequestVote', from, to, term, preVote: (flags & FLAG_A) !== 0, lastLogIndex, lastLogTerm, transfer: (flags & FLAG_B) !== 0 };
      break;
    }
    case 2: {
      const flags = readFlags(r, FLAG_A | FLAG_B);
      m = { type: 'RequestVoteResponse', from, to, term, preVote: (flags & FLAG_A) !== 0, voteGranted: (flags & FLAG_B) !== 0 };
      break;
    }
    case 3: {
      const prevLogIndex = r.varint('prevLogIndex');
      const prevLogTerm = r.varint('prevLogTerm');
      const leaderCommit = r.varint('leaderCommit');
      const seq = r.varint('seq');
      const entries = readEntries(r);
      // Format 2: a sender that knows we decode it may add the leader's durable index.
      const leaderStable = r.offset < r.end ? r.varint('leaderStable') : 0;
      m = { type: 'AppendEntries', from, to, term, prevLogIndex, prevLogTerm, entries, leaderCommit, seq, leaderStable };
      break;
    }
    case 4: {
      const success = (readFlags(r, FLAG_A) & FLAG_A) !== 0;
      const matchIndex = r.varint('matchIndex');
      const rejectedIndex = r.varint('rejectedIndex');
      const conflictTerm = r.varint('conflictTerm');
      const conflictIndex = r.varint('conflictIndex');
      const seq = r.varint('seq');
      m = { type: 'AppendEntriesResponse', from, to, term, success, matchIndex, rejectedIndex, conflictTerm, conflictIndex, seq };
      break;
    }
    case 5: {
      const seq = r.varint('seq');
      const index = r.varint('snapshot index');
      const snapTerm = r.varint('snapshot term');
      const config: Configuration = {
        voters: readIds(r, 'voter'),
        votersOutgoing: readIds(r, 'outgoing voter'),
        learners: readIds(r, 'learner'),
      };
      const data = r.view(r.varint('snapshot length'), 'snapshot data');
      m = { type: 'InstallSnapshot', from, to, term, seq, snapshot: { meta: { index, term: snapTerm, config }, data } };
      break;
    }
    case 6: {
      const matchIndex = r.varint('matchIndex');
      const seq = r.varint('seq');
      m = { type: 'InstallSnapshotResponse', from, to, term, matchIndex, seq };
      break;
    }
    case 7:
      m = { type: 'TimeoutNow', from, to, term };
      break;
    case 8:
      m = { type: 'Removed', from, to, term, configIndex: r.varint('configIndex') };
      break;
    default:
      throw new CodecError(`unknown message type ${type}`);
  }
  r.expectEnd(m.type);
  return m;
}

function readEntries(r: Reader): Entry[] {
  const count = r.varint('entry count');
  // An entry takes at least 4 bytes; a larger count cannot be honest.
  if (count * 4 > r.end - r.offset) throw new CodecError(`entry count ${count} exceeds the frame`);
  const entries: Entry[] = new Array<Entry>(count);
  for (let i = 0; i < count; i++) {
    const index = r.varint('entry index');
    const term = r.varint('entry term');
    const typeCode = r.u8('entry type');
    const type = ENTRY_TYPES_BY_CODE[typeCode];
    if (type === undefined) throw new CodecError(`unknown entry type ${typeCode}`);
    const data = r.view(r.varint('entry length'), 'entry data');
    entries[i] = { index, term, type, data };
  }
  return entries;
}

