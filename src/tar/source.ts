// ByteSource over a file descriptor: positional reads, so many readers can share one fd.
import { closeSync, fstatSync, readSync } from "node:fs";
import type { ByteSource } from "../tree/types.ts";

export class FdByteSource implements ByteSource {
  private fd: number | null;
  private readonly ownsFd: boolean;
  readonly label: string;

  /** `ownsFd` false leaves the descriptor open on close() (standard input). */
  constructor(fd: number, label: string, ownsFd = true) {
    this.fd = fd;
    this.label = label;
    this.ownsFd = ownsFd;
  }

  readInto(into: Uint8Array, offset: number): void {
    if (this.fd === null) throw new Error(`${this.label}: read after close`);
    let done = 0;
    while (done < into.length) {
      const n = readSync(this.fd, into, done, into.length - done, offset + done);
      if (n === 0) throw new Error(`${this.label}: short read at byte ${offset + done} (wanted ${into.length} bytes at ${offset})`);
      done += n;
    }
  }

  regularFileFd(): number | null {
    if (this.fd === null) return null;
    return fstatSync(this.fd).isFile() ? this.fd : null;
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    if (this.ownsFd) closeSync(fd);
  }
}
