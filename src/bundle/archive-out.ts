// A .tar.zst written under a temporary name beside `out` and renamed into place once complete
// (fsynced), hashed as it is written: what image bundles (write.ts) and kernel bundles
// (kernel-write.ts) share. A failure removes the temporary file; `out` never holds half a bundle.
import fs from "node:fs";
import path from "node:path";
import { END_OF_ARCHIVE } from "./tar-out.ts";
import { ZstdCompressor } from "./zstd-compress.ts";

export interface ArchiveWritten {
  /** sha256 (hex) of the compressed file: what a catalog entry lists. */
  sha256: string;
  bytes: number;
}

/** Calls `body` with the compressor's write; appends the end-of-archive blocks, then publishes. */
export function writeZstdArchive(out: string, opts: { level?: number; workers?: number }, body: (write: (bytes: Uint8Array) => void) => void): ArchiveWritten {
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, "wx", 0o644);
  const hash = new Bun.CryptoHasher("sha256");
  let bytes = 0;
  const z = new ZstdCompressor({ level: opts.level ?? 19, workers: opts.workers ?? 0 }, (piece) => {
    for (let off = 0; off < piece.length; ) off += fs.writeSync(fd, piece, off, piece.length - off);
    hash.update(piece);
    bytes += piece.length;
  });
  try {
    body((b) => z.write(b));
    z.write(END_OF_ARCHIVE);
    z.end();
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, out);
  } catch (err) {
    z.free();
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return { sha256: hash.digest("hex"), bytes };
}
