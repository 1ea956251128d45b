// Framing on a byte stream and the control frames around the message stream. Every frame is
// `u32be length | u8 type | body`, length counting type + body. Messages use types 1..7
// (codec.ts); the handshake and the snapshot stream use these:
//
//   0x40 HELLO          u8 version | str clusterId | str from | str to | u8 purpose (0 msgs, 1 snapshot)
//   0x41 HELLO_ACK      u8 format: the message format the acceptor decodes (MESSAGE_FORMAT)
//   0x42 HELLO_REJECT   str reason
//   0x43 GOODBYE        (empty) the acceptor closes this idle stream; it read nothing after the
//                       frames it sent before this one, so the dialer may resend what is unanswered
//   0x50 SNAP_BEGIN     varint totalBytes | an InstallSnapshot message frame with empty data
//   0x51 SNAP_CHUNK     raw snapshot bytes (the next slice, in order)
//   0x52 SNAP_END       u32be crc32 of all the bytes
//   0x53 SNAP_ACK       u8 ok (1 delivered, 0 refused)
//   0x60 RPC_REQUEST    varint id | payload (the rest of the frame)
//   0x61 RPC_RESPONSE   varint id | u8 status | payload (1: the answer; 0: an error text, the request
//                       may have been acted on; 2: an error text, refused before it was acted on)
import { CodecError, MAX_SHORT_STRING_BYTES, Reader, Writer } from './binary.js';
import type { NodeId } from '../raft/types.js';

export const PROTOCOL_VERSION = 1;

/**
 * The message format an acceptor decodes, told in HELLO_ACK. 1: the first; 2: an AppendEntries
 * may end with `leaderStable` (a varint, codec.ts). A dialer sends that field only to a peer
 * whose HELLO_ACK said 2 or more, so members of both versions go on talking through a rolling
 * upgrade. The HELLO keeps version 1: an acceptor of the first version refuses any other, and a
 * dialer of the first version reads nothing past HELLO_ACK's type.
 */
export const MESSAGE_FORMAT = 2;

export const FrameType = {
  hello: 0x40,
  helloAck: 0x41,
  helloReject: 0x42,
  goodbye: 0x43,
  snapshotBegin: 0x50,
  snapshotChunk: 0x51,
  snapshotEnd: 0x52,
  snapshotAck: 0x53,
  rpcRequest: 0x60,
  rpcResponse: 0x61,
} as const;

export const STREAM_PURPOSES = ['messages', 'snapshot', 'rpc'] as const;
export type StreamPurpose = (typeof STREAM_PURPOSES)[number];

/** The opening frame of every connection: who is dialing whom, in which cluster, for what. */
export interface Hello {
  readonly version: number;
  readonly clusterId: string;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly purpose: StreamPurpose;
}

/** The longest HELLO's length field (type, version, three short strings, purpose): 771. */
export const MAX_HELLO_FRAME_BYTES = 1 + 1 + 3 * (1 + MAX_SHORT_STRING_BYTES) + 1;

const writer = new Writer();

function controlFrame(type: number, fill: (w: Writer) => void): Buffer {
  writer.reset();
  writer.u32(0);
  writer.u8(type);
  fill(writer);
  writer.patchU32(0, writer.offset - 4);
  return writer.finish();
}

export function encodeHello(h: Hello): Buffer {
  return controlFrame(FrameType.hello, (w) => {
    w.u8(h.version);
    w.shortString(h.clusterId, 'cluster id');
    w.shortString(h.from, 'from');
    w.shortString(h.to, 'to');
    w.u8(STREAM_PURPOSES.indexOf(h.purpose));
  });
}

export function encodeHelloAck(format: number = MESSAGE_FORMAT): Buffer {
  return controlFrame(FrameType.helloAck, (w) => w.u8(format));
}

/** The message format a HELLO_ACK announces; 1 when it carries none. */
export function decodeHelloAck(frame: Buffer): number {
  return frame.length > 5 ? frame[5]! : 1;
}

export function encodeHelloReject(reason: string): Buffer {
  // Cut by characters until it fits: a reason is for a log line, not a contract.
  let text = reason;
  while (Buffer.byteLength(text) > MAX_SHORT_STRING_BYTES) text = text.slice(0, -1);
  return controlFrame(FrameType.helloReject, (w) => w.shortString(text, 'reason'));
}

export function encodeGoodbye(): Buffer {
  return controlFrame(FrameType.goodbye, () => {});
}

export function encodeSnapshotBegin(totalBytes: number, messageFrame: Buffer): Buffer {
  return controlFrame(FrameType.snapshotBegin, (w) => {
    w.varint(totalBytes, 'snapshot length');
    w.bytes(messageFrame);
  });
}

/** Only the 5-byte header: the payload is written after it as a view, never copied. */
export function snapshotChunkHeader(length: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h.writeUInt32BE(length + 1, 0);
  h[4] = FrameType.snapshotChunk;
  return h;
}

export function encodeSnapshotEnd(crc: number): Buffer {
  return controlFrame(FrameType.snapshotEnd, (w) => w.u32(crc >>> 0));
}

export function encodeSnapshotAck(ok: boolean): Buffer {
  return controlFrame(FrameType.snapshotAck, (w) => w.u8(ok ? 1 : 0));
}

/** Header only; the payload follows as a view, never copied into the frame. */
function rpcHeader(type: number, id: number, payloadBytes: number, status: number | null): Buffer {
  writer.reset();
  writer.u32(0);
  writer.u8(type);
  writer.varint(id, 'rpc id');
  if (status !== null) writer.u8(status);
  writer.patchU32(0, writer.offset - 4 + payloadBytes);
  return writer.finish();
}

export function encodeRpcRequest(id: number, payload: Uint8Array): Buffer[] {
  return [rpcHeader(FrameType.rpcRequest, id, payload.length, null), Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)];
}

export const RPC_STATUSES = ['error', 'ok', 'refused'] as const;
/** `refused`: turned away before the handler ran, so the caller may safely retry it anywhere. */
export type RpcStatus = (typeof RPC_STATUSES)[number];

export function encodeRpcResponse(id: number, status: RpcStatus, payload: Uint8Array): Buffer[] {
  return [rpcHeader(FrameType.rpcResponse, id, payload.length, RPC_STATUSES.indexOf(status)), Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)];
}

export function decodeRpcRequest(frame: Buffer): { id: number; payload: Buffer } {
  const r = frameBody(frame);
  const id = r.varint('rpc id');
  return { id, payload: frame.subarray(r.offset) };
}

export function decodeRpcResponse(frame: Buffer): { id: number; status: RpcStatus; payload: Buffer } {
  const r = frameBody(frame);
  const id = r.varint('rpc id');
  const code = r.u8('rpc status');
  // An unknown status is an error that may have been acted on: the cautious reading.
  const status = RPC_STATUSES[code] ?? 'error';
  return { id, status, payload: frame.subarray(r.offset) };
}

export function frameType(frame: Buffer): number {
  return frame[4]!;
}

/** A reader positioned after a frame's type byte. */
export function frameBody(frame: Buffer): Reader {
  return new Reader(frame, 5);
}

export function decodeHello(frame: Buffer): Hello {
  const r = frameBody(frame);
  const version = r.u8('version');
  const clusterId = r.shortString('cluster id');
  const from = r.shortString('from');
  const to = r.shortString('to');
  const purposeCode = r.u8('purpose');
  const purpose = STREAM_PURPOSES[purposeCode];
  if (purpose === undefined) throw new CodecError(`unknown stream purpose ${purposeCode}`);
  r.expectEnd('hello');
  return { version, clusterId, from, to, purpose };
}

/**
 * Splits a byte stream into whole frames (length prefix included). A frame inside one socket
 * chunk is handed out as a view of it; only a frame that spans chunks is copied, once.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /**
   * The limit may change between frames, even from inside `onFrame`: a listener holds a
   * stranger to a small limit until its handshake is accepted, then raises it for the stream.
   */
  constructor(public maxFrameBytes: number) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Feeds one chunk; calls `onFrame` per complete frame until it returns false. Throws
   * CodecError for an empty or oversize length, as soon as the length is known.
   */
  push(chunk: Buffer, onFrame: (frame: Buffer) => boolean): void {
    if (this.buffered === 0) {
      let o = 0;
      while (chunk.length - o >= 4) {
        const len = this.checkLength(chunk.readUInt32BE(o));
        if (chunk.length - o - 4 < len) break;
        const frame = chunk.subarray(o, o + 4 + len);
        o += 4 + len;
        if (!onFrame(frame)) return;
      }
      if (o < chunk.length) {
        this.chunks.push(o === 0 ? chunk : chunk.subarray(o));
        this.buffered = chunk.length - o;
      }
      return;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      if (this.chunks[0]!.length < 4) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
      const len = this.checkLength(this.chunks[0]!.readUInt32BE(0));
      if (this.buffered < 4 + len) return;
      if (!onFrame(this.take(4 + len))) return;
    }
  }

  private checkLength(len: number): number {
    if (len === 0) throw new CodecError('empty frame');
    if (len > this.maxFrameBytes) throw new CodecError(`frame of ${len} bytes exceeds the limit of ${this.maxFrameBytes}`);
    return len;
  }

  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const want = n - filled;
      if (c.length <= want) {
        c.copy(out, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, filled, 0, want);
        this.chunks[0] = c.subarray(want);
        filled = n;
      }
    }
    return out;
  }
}
