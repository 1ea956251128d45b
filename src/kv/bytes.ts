// Byte-level building blocks of the command, result and snapshot encodings: unsigned LEB128
// varints up to 2^53, big-endian float64, length-prefixed UTF-8 strings and byte strings.
// Hand-written UTF-8 for short strings, because keys are short and TextEncoder's per-call cost
// dominates at that size.
import { KvError } from './errors.js';
import { utf8Length } from './limits.js';

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** Bytes of a length-prefixed UTF-8 string. */
export function stringSize(s: string): number {
  const n = utf8Length(s);
  return varintSize(n) + n;
}

export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

export class ByteWriter {
  protected buf: Uint8Array;
  protected view: DataView;
  /** Where the next byte goes in the buffer. */
  pos = 0;

  constructor(capacity = 64) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  /** Where the next byte goes among all written: pos, unless a subclass passed bytes on (SpillingByteWriter). */
  get offset(): number {
    return this.pos;
  }

  protected ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    const next = new Uint8Array(Math.max(need, this.buf.length * 2));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** Non-negative safe integers only; the caller validated them. */
  varint(n: number): void {
    // Any varint here fits in 8 bytes; near the end ask for what this one needs, so that a
    // writer sized exactly (a snapshot) does not grow, copying everything, for its last bytes.
    if (this.pos + 8 > this.buf.length) this.ensure(varintSize(n));
    const buf = this.buf;
    // Bitwise ops truncate to 32 bits, so only the low part of the number may use them.
    while (n >= 0x80) {
      buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    buf[this.pos++] = n;
  }

  f64(x: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, x);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.raw(b);
  }

  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Length-prefixed UTF-8 (a lone surrogate becomes U+FFFD, as TextEncoder writes it). */
  string(s: string): void {
    const n = utf8Length(s);
    this.varint(n);
    this.ensure(n);
    if (s.length > 64) {
      encoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + n));
      this.pos += n;
      return;
    }
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) buf[p++] = c;
      else if (c < 0x800) {
        buf[p++] = 0xc0 | (c >> 6);
        buf[p++] = 0x80 | (c & 0x3f);
      } else {
        if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
          c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
          buf[p++] = 0xf0 | (c >> 18);
          buf[p++] = 0x80 | ((c >> 12) & 0x3f);
        } else {
          if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
          buf[p++] = 0xe0 | (c >> 12);
        }
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      }
    }
    this.pos = p;
  }

  /** Length-prefixed bytes held as a one-byte string (latin1ToBytes's input): as bytes() writes them. */
  latin1(s: string): void {
    const n = s.length;
    this.varint(n);
    this.ensure(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** The written bytes (a view over the internal buffer when it is exactly full). */
  finish(): Uint8Array {
    return this.pos === this.buf.length ? this.buf : this.buf.slice(0, this.pos);
  }
}

/** Where a SpillingByteWriter passes full buffers (a SnapshotWriter, src/raft/types.ts, has this shape). */
export interface ByteSink {
  /** Takes `buf[0, length)`, and `buf` with it. */
  write(buf: Uint8Array, length: number): void;
  /** A buffer the sink is done with, to fill again; null if none. */
  spare(): Uint8Array | null;
}

/**
 * A ByteWriter that holds at most about `chunkBytes` (one item larger than that gets a buffer of
 * its size): when a write does not fit, what is buffered goes to `sink` and the writer goes on in
 * a spare buffer. So a snapshot of hundreds of MB is written through one or a few buffers of 1
 * MiB, not into one of its size. `offset` counts every byte written.
 */
export class SpillingByteWriter extends ByteWriter {
  /** Bytes passed to the sink before the buffer's first. */
  private spilled = 0;

  constructor(
    private readonly sink: ByteSink,
    private readonly chunkBytes: number,
  ) {
    super(chunkBytes);
  }

  override get offset(): number {
    return this.spilled + this.pos;
  }

  protected override ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    this.spill();
    if (extra > this.buf.length) this.use(new Uint8Array(extra));
  }

  /** Passes what is buffered to the sink; the next byte goes into a spare (or new) buffer. */
  spill(): void {
    if (this.pos === 0) return;
    this.sink.write(this.buf, this.pos);
    this.spilled += this.pos;
    this.pos = 0;
    const spare = this.sink.spare();
    this.use(spare !== null && spare.length >= this.chunkBytes ? spare : new Uint8Array(this.chunkBytes));
  }

  private use(buf: Uint8Array): void {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  override finish(): Uint8Array {
    throw new Error('a SpillingByteWriter passes its bytes to its sink: spill(), not finish()');
  }
}

/** What a Node Buffer has beyond a Uint8Array, as bytesToLatin1 uses it. */
interface Latin1Slicing {
  latin1Slice(start: number, end: number): string;
}

/** Above this, String.fromCharCode.apply is given the bytes in pieces (its arguments go on the stack). */
const LATIN1_PIECE = 8192;

/**
 * Bytes as a string of one character per byte (U+0000–U+00FF), which V8 stores one byte per
 * character: a compact, immutable copy with no ArrayBuffer behind it (an ArrayBuffer per value
 * costs ~170 bytes more, and a GC-tracked backing store each). latin1ToBytes() turns it back.
 */
export function bytesToLatin1(b: Uint8Array): string {
  // A Node Buffer (what the WAL, the transport and a snapshot file hand over, and their
  // subarrays) copies itself into a one-byte string natively, ~9× faster than fromCharCode (a
  // tenth of a restore's CPU at 1M keys). Found by shape, so this module imports nothing from
  // Node and runs unchanged in the browser and the simulator; both paths give the same string.
  const latin1Slice = (b as Partial<Latin1Slicing>).latin1Slice;
  if (latin1Slice !== undefined) return latin1Slice.call(b, 0, b.length);
  if (b.length <= LATIN1_PIECE) return String.fromCharCode.apply(null, b as unknown as number[]);
  let s = '';
  for (let i = 0; i < b.length; i += LATIN1_PIECE) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + LATIN1_PIECE) as unknown as number[]);
  }
  return s;
}

/** The bytes bytesToLatin1() was given, in a new array. */
export function latin1ToBytes(s: string): Uint8Array {
  const n = s.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
  return out;
}

const F64_SCRATCH = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64_SCRATCH.buffer);
const IS_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** The string whose UTF-8 bytes are `buf[start, start + n)`. Throws KvError BAD_COMMAND if they are not valid UTF-8. */
export function utf8At(buf: Uint8Array, start: number, n: number): string {
  const end = start + n;
  if (n <= 32) {
    let s = '';
    let i = start;
    for (; i < end; i++) {
      const c = buf[i]!;
      if (c >= 0x80) break;
      s += String.fromCharCode(c);
    }
    if (i === end) return s;
  }
  try {
    return strictDecoder.decode(buf.subarray(start, end));
  } catch {
    throw new KvError('BAD_COMMAND', `invalid UTF-8 at offset ${start}`);
  }
}

export class ByteReader {
  pos: number;

  // No DataView per reader: a reader is made per command applied (decodeCommand), and a
  // restart's replay makes 100,000 of them; f64() assembles its 8 bytes itself.
  constructor(readonly buf: Uint8Array, pos = 0) {
    this.pos = pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new KvError('BAD_COMMAND', `truncated: needed ${n} bytes at offset ${this.pos}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new KvError('BAD_COMMAND', `bad boolean ${b} at offset ${this.pos - 1}`);
    return b === 1;
  }

  varint(): number {
    const buf = this.buf;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= buf.length) throw new KvError('BAD_COMMAND', 'truncated varint');
      const b = buf[this.pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (!Number.isSafeInteger(result)) break;
        return result;
      }
      scale *= 128;
    }
    throw new KvError('BAD_COMMAND', 'varint beyond 2^53');
  }

  f64(): number {
    this.need(8);
    const buf = this.buf;
    const at = this.pos;
    // Big-endian on the wire, into the platform's order in a scratch array.
    if (IS_LITTLE_ENDIAN) for (let i = 0; i < 8; i++) F64_BYTES[i] = buf[at + 7 - i]!;
    else for (let i = 0; i < 8; i++) F64_BYTES[i] = buf[at + i]!;
    this.pos += 8;
    return F64_SCRATCH[0]!;
  }

  /** A view into the buffer (no copy); copy before keeping it beyond the buffer's life. */
  bytes(): Uint8Array {
    const n = this.varint();
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  string(): string {
    const n = this.varint();
    this.need(n);
    const start = this.pos;
    this.pos = start + n;
    return utf8At(this.buf, start, n);
  }

  end(): void {
    if (this.pos !== this.buf.length) throw new KvError('BAD_COMMAND', `${this.buf.length - this.pos} trailing bytes`);
  }
}
