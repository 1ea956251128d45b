// The receiving half of a snapshot stream (§7): collects the chunks of one InstallSnapshot in
// order, checks length and CRC32, and only then yields the Message. The core never sees a
// partial or corrupt snapshot: an interrupted or damaged transfer is dropped whole.
//
// Memory follows the bytes that actually arrived, NEVER the size the sender announced: a
// stranger that announces 1 GiB and sends ten bytes costs the minimum buffer, not 1 GiB. The
// buffer doubles as chunks arrive (capped at the announced size), so the bytes are copied about
// twice in all and the buffer is never more than twice what was received.
import zlib from 'node:zlib';
import { CodecError } from './binary.js';
import type { InstallSnapshot } from '../raft/types.js';

/** The first buffer: small enough that idle strangers cost little, big enough for small snapshots. */
const MIN_BUFFER_BYTES = 64 * 1024;

export class SnapshotAssembly {
  private data: Buffer;
  private received = 0;
  private crc = 0;

  /** `header` is the InstallSnapshot with empty data; `totalBytes` was checked by the caller. */
  constructor(
    private readonly header: InstallSnapshot,
    readonly totalBytes: number,
  ) {
    this.data = Buffer.allocUnsafeSlow(Math.min(totalBytes, MIN_BUFFER_BYTES));
  }

  get receivedBytes(): number {
    return this.received;
  }

  /** Memory this transfer holds now. */
  get allocatedBytes(): number {
    return this.data.length;
  }

  add(chunk: Uint8Array): void {
    const end = this.received + chunk.length;
    if (end > this.totalBytes) {
      throw new CodecError(`snapshot chunk overruns the announced ${this.totalBytes} bytes`);
    }
    if (end > this.data.length) {
      const grown = Buffer.allocUnsafeSlow(Math.min(this.totalBytes, Math.max(end, this.data.length * 2)));
      this.data.copy(grown, 0, 0, this.received);
      this.data = grown;
    }
    this.data.set(chunk, this.received);
    this.received = end;
    this.crc = zlib.crc32(chunk, this.crc);
  }

  /** The complete message, or a CodecError naming what did not match. */
  finish(expectedCrc: number): InstallSnapshot {
    if (this.received !== this.totalBytes) {
      throw new CodecError(`snapshot ended after ${this.received} of ${this.totalBytes} bytes`);
    }
    if (this.crc >>> 0 !== expectedCrc >>> 0) {
      throw new CodecError(`snapshot CRC32 mismatch: got ${this.crc >>> 0}, expected ${expectedCrc >>> 0}`);
    }
    const data = new Uint8Array(this.data.buffer, this.data.byteOffset, this.totalBytes);
    return { ...this.header, snapshot: { meta: this.header.snapshot.meta, data } };
  }
}
