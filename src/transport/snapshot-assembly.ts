// The receiving half of a snapshot stream (§7): collects the chunks of one InstallSnapshot in
// order, checks length and CRC32, and only then yields the Message. The core never sees a
// partial or corrupt snapshot: an interrupted or damaged transfer is dropped whole.
import zlib from 'node:zlib';
import { CodecError } from './binary.js';
import type { InstallSnapshot } from '../raft/types.js';

export class SnapshotAssembly {
  private readonly data: Buffer;
  private received = 0;
  private crc = 0;

  /** `header` is the InstallSnapshot with empty data; `totalBytes` was checked by the caller. */
  constructor(
    private readonly header: InstallSnapshot,
    readonly totalBytes: number,
  ) {
    // Allocated once at its final size: growing by concatenation would copy the snapshot
    // again and briefly hold it twice.
    this.data = Buffer.allocUnsafeSlow(totalBytes);
  }

  get receivedBytes(): number {
    return this.received;
  }

  add(chunk: Uint8Array): void {
    if (this.received + chunk.length > this.totalBytes) {
      throw new CodecError(`snapshot chunk overruns the announced ${this.totalBytes} bytes`);
    }
    this.data.set(chunk, this.received);
    this.received += chunk.length;
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
