// Large sequential positional I/O: a read window for ascending offsets and a sink that
// coalesces writes to consecutive blocks, so many small files cost a few big syscalls.
import { readSync, writeSync } from "node:fs";

export function writeAll(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) {
    const n = writeSync(fd, data, done, data.length - done, position + done);
    if (n <= 0) throw new Error(`short write at byte ${position + done}`);
    done += n;
  }
}

/** Anything that fills a buffer from an offset (a ByteSource, or a plain descriptor via fdReader). */
export interface PositionalReader {
  readInto(into: Uint8Array, offset: number): void;
}

export function fdReader(fd: number, label: string): PositionalReader {
  return {
    readInto(into, offset) {
      let done = 0;
      while (done < into.length) {
        const n = readSync(fd, into, done, into.length - done, offset + done);
        if (n === 0) throw new Error(`${label}: ended at byte ${offset + done} (wanted ${into.length} bytes at ${offset})`);
        done += n;
      }
    },
  };
}

const WINDOW = 8 << 20;
// The windows below are never read where they were not written first: they take memory that is
// not zeroed (allocUnsafeSlow), so only the pages a run touches are faulted in. A zeroed 8 MiB
// buffer was memset whole when the allocator reused memory: 2,048 page faults, ~20 ms of a
// pull on a microVM where a fault costs ~10 us, for a work seed that writes a few blocks.

/** A sliding read window over one source, for reads at ascending offsets below `limit`. */
export class SourceWindow {
  private buf: Uint8Array = Buffer.allocUnsafeSlow(WINDOW);
  private start = 0;
  private end = 0;
  constructor(
    private source: PositionalReader,
    private limit: number,
  ) {}

  view(offset: number, length: number): Uint8Array {
    if (offset >= this.start && offset + length <= this.end) {
      return this.buf.subarray(offset - this.start, offset - this.start + length);
    }
    if (length > this.buf.length) {
      const direct = new Uint8Array(length);
      this.source.readInto(direct, offset);
      return direct;
    }
    const n = Math.min(this.buf.length, this.limit - offset);
    this.source.readInto(this.buf.subarray(0, n), offset);
    this.start = offset;
    this.end = offset + n;
    return this.buf.subarray(0, length);
  }
}

/** Where whole blocks are written: `data` at `block`, its last block zero-padded. */
export interface BlockTarget {
  put(block: number, data: Uint8Array): void;
  /** Starts writing whatever is held back; callers still wait for the target's own end. */
  flush(): void;
}

/** Coalesces writes to consecutive blocks into large positional writes. */
export class BlockSink implements BlockTarget {
  private buf: Uint8Array = Buffer.allocUnsafeSlow(WINDOW);
  private startBlock = -1;
  private used = 0; // bytes, always whole blocks
  constructor(
    private fd: number,
    private blockSize: number,
  ) {}

  /** Writes `data` at `block`, zero-padding its last block. */
  put(block: number, data: Uint8Array): void {
    const bs = this.blockSize;
    const padded = Math.ceil(data.length / bs) * bs;
    if (this.startBlock < 0 || block !== this.startBlock + this.used / bs || this.used + padded > this.buf.length) {
      this.flush();
      if (padded > this.buf.length) {
        writeAll(this.fd, data, block * bs);
        return;
      }
      this.startBlock = block;
    }
    this.buf.set(data, this.used);
    if (padded > data.length) this.buf.fill(0, this.used + data.length, this.used + padded);
    this.used += padded;
  }

  flush(): void {
    if (this.used > 0) writeAll(this.fd, this.buf.subarray(0, this.used), this.startBlock * this.blockSize);
    this.startBlock = -1;
    this.used = 0;
  }
}
