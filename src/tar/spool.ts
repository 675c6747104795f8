// The spool of standard input: the stream written at the same offsets into an (already
// unlinked) file beside the output, so that file data can be read back by offset later, with
// all-zero 4 KiB blocks left as holes (a 100 GiB sparse member costs no disk). The writes go
// through a StagedBlockWriter: off this thread and, where allowed, O_DIRECT, so spooling a
// rootfs neither fills the page cache nor stalls the parser on dirty-page throttling.
import { ftruncateSync } from "node:fs";
import { writeAll } from "../io/block-io.ts";
import { StagedBlockWriter } from "../io/staged-writer.ts";
import { isZeroRange, ZERO_BLOCK_SIZE as BS } from "../io/zeros.ts";

export class Spool {
  private readonly writer: StagedBlockWriter;
  private length = 0;
  /** Bytes handed to the writer (non-zero blocks only). */
  bytesWritten = 0;

  constructor(private readonly fd: number) {
    this.writer = new StagedBlockWriter(fd, BS);
  }

  /** Stream bytes `buf[0, len)` at stream offset `position` (a multiple of 4096). */
  write(buf: Uint8Array, len: number, position: number): void {
    this.length = position + len;
    if (isZeroRange(buf, 0, len)) return;
    let runStart = -1;
    for (let p = 0; p < len; p += BS) {
      const zero = isZeroRange(buf, p, Math.min(p + BS, len));
      if (!zero && runStart < 0) runStart = p;
      if (zero && runStart >= 0) {
        this.writer.put((position + runStart) / BS, buf, runStart, p);
        this.bytesWritten += p - runStart;
        runStart = -1;
      }
    }
    if (runStart >= 0) {
      this.writer.put((position + runStart) / BS, buf, runStart, len);
      this.bytesWritten += len - runStart;
    }
  }

  /**
   * Writes `bytes` at stream offset `position` after the spool was closed: the file data a sink
   * held in place of the spool, given back (SpoolPolicy.restore).
   */
  writeBack(bytes: Uint8Array, position: number): void {
    writeAll(this.fd, bytes, position);
  }

  /** Waits for every write, then sets the spool's length to the stream's (the last block was padded). */
  async close(): Promise<void> {
    await this.writer.finish();
    ftruncateSync(this.fd, this.length);
  }

  /** Stops writing at once (after a failure). */
  stop(): Promise<void> {
    return this.writer.stop();
  }
}
