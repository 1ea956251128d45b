// raftkv-mux/1: the HTTP API's requests and answers, many in flight on one connection, in
// length-prefixed binary frames (docs/mux.md). A client asks for it with an HTTP/1.1 upgrade
// (`GET /v1/mux`, `Upgrade: raftkv-mux/1`) on the client port, so TLS, the port and the
// connection limit are the HTTP API's; each request keeps HTTP's meaning (method, path and query,
// headers, body; status, headers, body) and the server handles it exactly as the same HTTP
// request. What it saves is per request: no request line or header block to parse, and answers
// finished together leave in one write instead of one write per connection. etcd's clients get
// the same from HTTP/2 (gRPC); node:http2 costs more per stream than node:http per request.
//
//   request = length:u32 id:u32 method:u8 pathLength:u16 path headerCount:u8 header* body
//   answer  = length:u32 id:u32 status:u16 headerCount:u8 header* body
//   header  = nameLength:u8 name valueLength:u16 value
//
// Integers are big-endian; `length` counts the bytes after it. Path, names and values are bytes
// of printable ASCII (names lowercase); the body is the rest of the frame. Answers may come in
// any order; `id` pairs them with their requests.

import type { Writable } from 'node:stream';

export const MUX_PROTOCOL = 'raftkv-mux/1';
export const MUX_PATH = '/v1/mux';

export const MUX_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD'] as const;
export type MuxMethod = (typeof MUX_METHODS)[number];

/** The most headers one frame may carry (a request needs four or five). */
export const MUX_MAX_HEADERS = 32;
/** A request's path and query, at most (node:http's whole header block is 16 KiB). */
export const MUX_MAX_PATH_BYTES = 16 * 1024;
const MAX_NAME_BYTES = 64;
const MAX_VALUE_BYTES = 8 * 1024;
const HEADER_NAME = /^[a-z0-9-]+$/;
/** Printable ASCII and tab: what a header value or path may hold (no CR, LF or NUL). */
const PRINTABLE = /^[\t\x20-\x7e]*$/;

export class MuxProtocolError extends Error {
  readonly code = 'MUX_PROTOCOL';
}

export interface MuxRequest {
  readonly id: number;
  readonly method: MuxMethod;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export interface MuxAnswer {
  readonly id: number;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

function headersSize(headers: Readonly<Record<string, string>>): { bytes: number; count: number } {
  let bytes = 1;
  let count = 0;
  for (const name in headers) {
    const value = headers[name]!;
    if (name.length > MAX_NAME_BYTES || !HEADER_NAME.test(name)) throw new TypeError(`the header name "${name.slice(0, 80)}" cannot be sent`);
    if (value.length > MAX_VALUE_BYTES || !PRINTABLE.test(value)) throw new TypeError(`the value of header "${name}" cannot be sent`);
    bytes += 1 + name.length + 2 + value.length;
    count++;
  }
  if (count > MUX_MAX_HEADERS) throw new TypeError(`more than ${MUX_MAX_HEADERS} headers`);
  return { bytes, count };
}

function writeHeaders(out: Buffer, at: number, headers: Readonly<Record<string, string>>, count: number): number {
  out[at++] = count;
  for (const name in headers) {
    const value = headers[name]!;
    out[at++] = name.length;
    at += out.write(name, at, 'latin1');
    out.writeUInt16BE(value.length, at);
    at += 2;
    at += out.write(value, at, 'latin1');
  }
  return at;
}

/** The frame of a request; throws TypeError for what cannot be sent (nothing is sent then). */
export function encodeMuxRequest(id: number, method: string, path: string, headers: Readonly<Record<string, string>>, body: Uint8Array | undefined): Buffer {
  const m = MUX_METHODS.indexOf(method as MuxMethod);
  if (m < 0) throw new TypeError(`the method ${method} cannot be sent`);
  if (path.length > MUX_MAX_PATH_BYTES || !path.startsWith('/') || !PRINTABLE.test(path) || /\s/.test(path)) throw new TypeError('the request path cannot be sent');
  const h = headersSize(headers);
  const bodyBytes = body?.length ?? 0;
  const length = 4 + 1 + 2 + path.length + h.bytes + bodyBytes;
  const out = Buffer.allocUnsafe(4 + length);
  out.writeUInt32BE(length, 0);
  out.writeUInt32BE(id >>> 0, 4);
  out[8] = m + 1;
  out.writeUInt16BE(path.length, 9);
  let at = 11 + out.write(path, 11, 'latin1');
  at = writeHeaders(out, at, headers, h.count);
  if (body !== undefined) out.set(body, at);
  return out;
}

/** The frame of an answer. Header values the server sends are checked already; a bad one throws. */
export function encodeMuxAnswer(id: number, status: number, headers: Readonly<Record<string, string>>, body: Uint8Array): Buffer {
  const h = headersSize(headers);
  const length = 4 + 2 + h.bytes + body.length;
  const out = Buffer.allocUnsafe(4 + length);
  out.writeUInt32BE(length, 0);
  out.writeUInt32BE(id >>> 0, 4);
  out.writeUInt16BE(status, 8);
  const at = writeHeaders(out, 10, headers, h.count);
  out.set(body, at);
  return out;
}

/** Reads `count` headers from `frame` at `at`; returns where they end. */
function readHeaders(frame: Buffer, at: number, into: Record<string, string>): number {
  if (at >= frame.length) throw new MuxProtocolError('the frame ends before its header count');
  const count = frame[at++]!;
  if (count > MUX_MAX_HEADERS) throw new MuxProtocolError(`${count} headers: at most ${MUX_MAX_HEADERS}`);
  for (let i = 0; i < count; i++) {
    if (at + 1 > frame.length) throw new MuxProtocolError('a header runs past the frame');
    const nameLength = frame[at++]!;
    if (nameLength === 0 || nameLength > MAX_NAME_BYTES || at + nameLength + 2 > frame.length) throw new MuxProtocolError('a header name runs past the frame or is empty');
    const name = frame.toString('latin1', at, at + nameLength);
    at += nameLength;
    const valueLength = frame.readUInt16BE(at);
    at += 2;
    if (valueLength > MAX_VALUE_BYTES || at + valueLength > frame.length) throw new MuxProtocolError('a header value runs past the frame');
    const value = frame.toString('latin1', at, at + valueLength);
    at += valueLength;
    if (!HEADER_NAME.test(name) || !PRINTABLE.test(value)) throw new MuxProtocolError('a header holds a character it may not');
    if (Object.prototype.hasOwnProperty.call(into, name)) throw new MuxProtocolError(`the header ${name} is repeated`);
    into[name] = value;
  }
  return at;
}

/** A request from the bytes of one frame (after its length). Throws MuxProtocolError. */
export function decodeMuxRequest(frame: Buffer): MuxRequest {
  if (frame.length < 4 + 1 + 2 + 1) throw new MuxProtocolError('a request frame shorter than its fixed fields');
  const id = frame.readUInt32BE(0);
  const m = frame[4]!;
  if (m < 1 || m > MUX_METHODS.length) throw new MuxProtocolError(`unknown method ${m}`);
  const pathLength = frame.readUInt16BE(5);
  if (pathLength === 0 || pathLength > MUX_MAX_PATH_BYTES || 7 + pathLength >= frame.length) throw new MuxProtocolError('the path is empty or runs past the frame');
  const path = frame.toString('latin1', 7, 7 + pathLength);
  if (path[0] !== '/' || !PRINTABLE.test(path) || /\s/.test(path)) throw new MuxProtocolError('the path must start with "/" and hold printable ASCII without spaces');
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  const at = readHeaders(frame, 7 + pathLength, headers);
  return { id, method: MUX_METHODS[m - 1]!, path, headers, body: frame.subarray(at) };
}

/** An answer from the bytes of one frame (after its length). Throws MuxProtocolError. */
export function decodeMuxAnswer(frame: Buffer): MuxAnswer {
  if (frame.length < 4 + 2 + 1) throw new MuxProtocolError('an answer frame shorter than its fixed fields');
  const id = frame.readUInt32BE(0);
  const status = frame.readUInt16BE(4);
  if (status < 100 || status > 599) throw new MuxProtocolError(`status ${status}`);
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  const at = readHeaders(frame, 6, headers);
  return { id, status, headers, body: frame.subarray(at) };
}

/**
 * Splits a byte stream into frames: push() what arrives, and each complete frame (the bytes after
 * its length) goes to `onFrame`. A frame longer than `maxFrameBytes` is refused before its bytes
 * are kept. A frame's bytes are a view of what arrived when it fits in one chunk.
 */
export class MuxFrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: (frame: Buffer) => void,
  ) {}

  /** Bytes received that do not yet make a whole frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** Throws MuxProtocolError (the stream is then unusable); onFrame's own throws pass through. */
  push(chunk: Buffer): void {
    let data = chunk;
    if (this.buffered > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered < 4) return;
      const first = this.chunks[0]!;
      const length = first.length >= 4 ? first.readUInt32BE(0) : Buffer.concat(this.chunks, 4).readUInt32BE(0);
      this.check(length);
      if (this.buffered < 4 + length) return;
      data = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [];
      this.buffered = 0;
    }
    let at = 0;
    while (data.length - at >= 4) {
      const length = data.readUInt32BE(at);
      this.check(length);
      if (data.length - at - 4 < length) break;
      const frame = data.subarray(at + 4, at + 4 + length);
      at += 4 + length;
      this.onFrame(frame);
    }
    if (at < data.length) {
      const rest = data.subarray(at);
      this.chunks = [rest];
      this.buffered = rest.length;
    }
  }

  private check(length: number): void {
    if (length > this.maxFrameBytes) throw new MuxProtocolError(`a frame of ${length} bytes: at most ${this.maxFrameBytes}`);
  }
}

/**
 * Writes frames to a socket corked until the end of the current microtask drain, so frames made
 * together (answers settled by one apply, requests of callers answered in one turn) leave in one
 * writev, ahead of the loop turn's setImmediate work.
 */
export class DrainBatchedWriter {
  private isCorked = false;

  constructor(private readonly socket: Writable) {}

  write(frame: Buffer): void {
    if (!this.isCorked) {
      this.isCorked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(frame);
  }

  private readonly uncork = (): void => {
    this.isCorked = false;
    this.socket.uncork();
  };
}
