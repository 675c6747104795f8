// ByteSource over a file descriptor: positional reads, so many readers can share one fd.
import { close, closeSync, fstatSync, readSync } from "node:fs";
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

  /**
   * close(), on the thread pool: closing the last descriptor of a large unlinked file (a
   * layer's spool) frees its blocks then and there, which took 78-82 ms of a 5-layer pull's
   * main thread for its five spools. Settles once the descriptor is closed; never rejects (a
   * failed close of a file nobody will read again changes nothing).
   */
  closeInBackground(): Promise<void> {
    if (this.fd === null) return Promise.resolve();
    const fd = this.fd;
    this.fd = null;
    if (!this.ownsFd) return Promise.resolve();
    return new Promise((resolve) => close(fd, () => resolve()));
  }
}
