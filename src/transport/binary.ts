// Primitive wire encodings shared by the codec and the control frames: unsigned LEB128 varints
// for terms, indexes and lengths (safe integers, at most 8 bytes for 2^53 - 1), short UTF-8
// strings behind a one-byte length, and a bounds-checked reader that turns any malformed input
// into a CodecError instead of a RangeError deep inside Buffer.

export class CodecError extends Error {
  readonly code = 'CODEC_ERROR';
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}

/** Node ids and cluster ids are short; one length byte keeps every envelope compact. */
export const MAX_SHORT_STRING_BYTES = 255;
/** 8 groups of 7 bits hold 56 bits, enough for any safe integer. */
const MAX_VARINT_BYTES = 8;

export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  let rest = Math.floor(n / 0x10000000);
  while (rest > 0) {
    size++;
    rest = Math.floor(rest / 0x80);
  }
  return size;
}

export function checkUint(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new CodecError(`${what} must be a non-negative safe integer, got ${n}`);
}

/** Writes `n` at `offset`; returns the offset after it. Division, not bit ops, above 2^31. */
export function writeVarint(buf: Uint8Array, offset: number, n: number): number {
  while (n >= 0x80) {
    buf[offset++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[offset++] = n;
  return offset;
}

const stringCache = new Map<string, Buffer>();
const STRING_CACHE_LIMIT = 1024;

/** Encoded bytes of a short string; node ids repeat in every message, so they are cached. */
export function shortStringBytes(s: string, what: string): Buffer {
  let bytes = stringCache.get(s);
  if (bytes === undefined) {
    bytes = Buffer.from(s, 'utf8');
    if (bytes.length > MAX_SHORT_STRING_BYTES) {
      throw new CodecError(`${what} is ${bytes.length} bytes in UTF-8; the limit is ${MAX_SHORT_STRING_BYTES}`);
    }
    if (stringCache.size >= STRING_CACHE_LIMIT) stringCache.clear();
    stringCache.set(s, bytes);
  }
  return bytes;
}

/** A growable scratch area for small frames; `finish()` copies out exactly what was written. */
export class Writer {
  private buf: Buffer = Buffer.allocUnsafe(256);
  offset = 0;

  reset(): void {
    this.offset = 0;
  }

  private reserve(n: number): void {
    if (this.offset + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.offset + n));
    this.buf.copy(next, 0, 0, this.offset);
    this.buf = next;
  }

  u8(n: number): void {
    this.reserve(1);
    this.buf[this.offset++] = n;
  }

  u32(n: number): void {
    this.reserve(4);
    this.buf.writeUInt32BE(n, this.offset);
    this.offset += 4;
  }

  varint(n: number, what: string): void {
    checkUint(n, what);
    this.reserve(MAX_VARINT_BYTES);
    this.offset = writeVarint(this.buf, this.offset, n);
  }

  shortString(s: string, what: string): void {
    const bytes = shortStringBytes(s, what);
    this.reserve(1 + bytes.length);
    this.buf[this.offset++] = bytes.length;
    bytes.copy(this.buf, this.offset);
    this.offset += bytes.length;
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.length);
    this.buf.set(data, this.offset);
    this.offset += data.length;
  }

  /** Overwrites a u32 written earlier (the frame length, known only at the end). */
  patchU32(at: number, n: number): void {
    this.buf.writeUInt32BE(n, at);
  }

  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.offset);
    this.buf.copy(out, 0, 0, this.offset);
    return out;
  }
}

/** Reads one frame; every read is bounds-checked against `end`. */
export class Reader {
  offset: number;
  constructor(
    readonly buf: Buffer,
    offset = 0,
    readonly end = buf.length,
  ) {
    this.offset = offset;
  }

  private need(n: number, what: string): void {
    if (this.offset + n > this.end) throw new CodecError(`truncated frame reading ${what}`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.offset++]!;
  }

  u32(what: string): number {
    this.need(4, what);
    const n = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return n;
  }

  varint(what: string): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      this.need(1, what);
      const b = this.buf[this.offset++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) throw new CodecError(`${what} exceeds 2^53 - 1`);
        return result;
      }
      scale *= 0x80;
    }
    throw new CodecError(`${what}: varint longer than ${MAX_VARINT_BYTES} bytes`);
  }

  shortString(what: string): string {
    const len = this.u8(what);
    this.need(len, what);
    const s = this.buf.toString('utf8', this.offset, this.offset + len);
    this.offset += len;
    return s;
  }

  /** A view into the frame, not a copy: entry payloads stay where the socket put them. */
  view(len: number, what: string): Uint8Array {
    this.need(len, what);
    const v = new Uint8Array(this.buf.buffer, this.buf.byteOffset + this.offset, len);
    this.offset += len;
    return v;
  }

  expectEnd(what: string): void {
    if (this.offset !== this.end) throw new CodecError(`${this.end - this.offset} trailing bytes after ${what}`);
  }
}
