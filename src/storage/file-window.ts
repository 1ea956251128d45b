// A window onto a range of a file, read with positional reads on demand: what lets the key-value
// store keep its base tier (the records of its newest snapshot, src/kv/base-table.ts) in the
// snapshot file instead of in memory (docs/storage.md, "The store's base in its snapshot file").
// A lookup reads one block of 8 neighbouring records (the base's fence finds it); a walk reads
// ahead in larger pieces. The bytes stay in the kernel's page cache, which the kernel can reclaim and which is
// not the process's anonymous memory.
//
// Reads are synchronous (readSync): the store reads on the event loop, between its slices, and
// a read served from the page cache costs a few microseconds (3.5 µs for 4 KiB, 5.6 µs for 16
// KiB on this VM). A read the page cache cannot serve blocks the loop for the disk's time.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { StorageCorruptionError } from './errors.js';

/** What one read brings in at least: a lookup's block (base-table.ts, WINDOW_FENCE_STRIDE records) fits. */
const MIN_READ_BYTES = 4 << 10;
/** A read that begins less than this past the window's end reads on as a walk. */
const WALK_GAP_BYTES = 64 << 10;
/** What a read brings in at least once reads go forward through the file (a walk, a snapshot's copy). */
const SEQUENTIAL_READ_BYTES = 1 << 20;

/** A RecordWindow (src/kv/base-table.ts) by its shape: storage does not import kv. */
export class FileWindow {
  buf: Uint8Array = new Uint8Array(MIN_READ_BYTES);
  /** The range [from, to) of the window's bytes (offsets into the range the window shows) held in buf. */
  private from = 0;
  private to = 0;
  private fd: number | null;
  /** Reads made: for tests and benchmarks. */
  reads = 0;

  /**
   * Shows the `length` bytes of `path` from `start`. The file must hold them (checked now); the
   * window keeps the file open until close(). `opened`: the name the file has now, if it is
   * renamed to `path` later (a snapshot still being written); errors name `path`.
   */
  constructor(
    readonly path: string,
    private readonly start: number,
    readonly length: number,
    opened = path,
  ) {
    if (!Number.isSafeInteger(start) || start < 0 || !Number.isSafeInteger(length) || length < 0) throw new RangeError(`bad window [${start}, +${length})`);
    const fd = openSync(opened, 'r');
    try {
      const size = fstatSync(fd).size;
      if (start + length > size) throw new StorageCorruptionError(path, size, `the file ends here, before the ${start + length} bytes it should hold`);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.fd = fd;
  }

  load(start: number, end: number): number {
    if (start >= this.from && end <= this.to) return start - this.from;
    if (!(start >= 0 && start <= end && end <= this.length)) throw new RangeError(`[${start}, ${end}) is outside the window of ${this.length} bytes over ${this.path}`);
    const fd = this.fd;
    if (fd === null) throw new Error(`the window over ${this.path} is closed`);
    // A read a little past the window's end (or across it) is a walk, such as a fence's or a
    // snapshot's through every record: read ahead further.
    const ahead = this.to > 0 && start >= this.from && start - this.to < WALK_GAP_BYTES ? SEQUENTIAL_READ_BYTES : MIN_READ_BYTES;
    const n = Math.min(Math.max(end - start, ahead), this.length - start);
    if (n > this.buf.length) this.buf = new Uint8Array(Math.max(n, Math.min(this.buf.length * 2, SEQUENTIAL_READ_BYTES)));
    // Nothing of the old window is valid while the read is partial.
    this.from = 0;
    this.to = 0;
    let got = 0;
    while (got < n) {
      const r = readSync(fd, this.buf, got, n - got, this.start + start + got);
      this.reads++;
      if (r === 0) throw new StorageCorruptionError(this.path, this.start + start + got, `the file ends here, ${n - got} bytes short of a read`);
      got += r;
    }
    this.from = start;
    this.to = start + n;
    return 0;
  }

  get isClosed(): boolean {
    return this.fd === null;
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    // Nothing is shown any more, not even what was read.
    this.from = 0;
    this.to = 0;
    closeSync(fd);
  }
}
