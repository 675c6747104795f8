// What a layer blob decompresses to, remembered once proven. A layer is proven by reading it
// end to end with both digests checked: the blob's (the bytes are the ones the manifest names)
// and the diff_id (they decompress to what the config says). Decompression is a function of
// the bytes, so once a blob digest is known to give a diff_id, a later read of the same blob
// need only prove the blob: hashing ~75 MB of compressed Debian instead of ~226 MB
// uncompressed, or nothing at all for a blob the cache verified when it stored it. The
// uncompressed hash was the largest cost of a warm zstd pull on the reading thread.
//
// The facts live in the blob cache, next to the blobs they describe, and carry the same trust:
// whoever can write there can already replace a verified blob. Losing them costs one full
// check the next time, nothing else.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { digestHex, isDigest } from "./digest.ts";
import type { Compression } from "./media-types.ts";

export interface DiffIdMemo {
  /** The diff_id that blob `blobDigest`, read as `compression`, was proven to decompress to. */
  known(compression: Compression, blobDigest: string): string | null;
  /** Records a proven fact (both digests checked in one read). Best effort: a failure to record is no error. */
  remember(compression: Compression, blobDigest: string, diffId: string): void;
}

/** The memo as one small file per blob: `<dir>/<compression>-<blob hex>`, holding the diff_id. */
export class DirDiffIdMemo implements DiffIdMemo {
  constructor(readonly dir: string) {}

  private file(compression: Compression, blobDigest: string): string {
    return path.join(this.dir, `${compression}-${digestHex(blobDigest)}`);
  }

  known(compression: Compression, blobDigest: string): string | null {
    if (!isDigest(blobDigest)) return null;
    try {
      const text = readFileSync(this.file(compression, blobDigest), "utf8").trim();
      return isDigest(text) ? text : null;
    } catch {
      return null;
    }
  }

  remember(compression: Compression, blobDigest: string, diffId: string): void {
    if (!isDigest(blobDigest) || !isDigest(diffId)) return;
    const file = this.file(compression, blobDigest);
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(tmp, diffId + "\n");
      // Whole or absent: a reader never sees half a digest.
      renameSync(tmp, file);
    } catch {
      // Only a speed-up: the next read checks the diff_id again.
      rmSync(tmp, { force: true });
    }
  }

  /** Drops the facts about the blobs `drop` picks (all, without it): the cache pruned those blobs. */
  forget(drop?: (blobDigest: string) => boolean): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const hex = /^[a-z]+-([0-9a-f]{64})$/.exec(name)?.[1];
      // Leftover temp files of a killed process go too.
      if (!hex || !drop || drop(`sha256:${hex}`)) rmSync(path.join(this.dir, name), { force: true });
    }
  }
}
