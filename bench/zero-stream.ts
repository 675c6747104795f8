// Writes to stdout a tar holding one huge, almost all-zero file, generated on the fly (never
// stored): PAX size header + ustar header, zero data with a few non-zero 4 KiB blocks, trailer.
//   bun bench/zero-stream.ts <sizeBytes> <nonZeroBlocks>
// 64 KiB writes: the size a Linux pipe takes in one go, which keeps the generator at several GB/s.
import { writeSync } from "node:fs";
import { entryHeader, TRAILER } from "./tar-writer.ts";

export const ZERO_FILE_NAME = "big-sparse.img";

/** Offsets (4 KiB aligned) of the non-zero blocks: spread evenly, first one at 0. */
export function nonZeroOffsets(size: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(Math.floor((size / count) * i / 4096) * 4096);
  return out;
}

function writeAll(buf: Uint8Array): void {
  let o = 0;
  while (o < buf.length) o += writeSync(1, buf, o, buf.length - o);
}

export function writeZeroStream(size: number, count: number): void {
  if (size % 4096 !== 0) throw new Error(`zero-stream size must be a multiple of 4096, got ${size}`);
  writeAll(entryHeader({ name: ZERO_FILE_NAME, type: "file", mode: 0o644, uid: 1000, gid: 1000, size }));
  const chunk = new Uint8Array(65536);
  const marks = nonZeroOffsets(size, count);
  let next = 0;
  for (let pos = 0; pos < size; pos += chunk.length) {
    const end = Math.min(pos + chunk.length, size);
    let dirty = false;
    while (next < marks.length && marks[next]! < end) {
      const at = marks[next]! - pos;
      for (let i = 0; i < 4096; i++) chunk[at + i] = (i * 31 + next + 1) & 0xff || 0x5a;
      dirty = true;
      next++;
    }
    writeAll(end - pos === chunk.length ? chunk : chunk.subarray(0, end - pos));
    if (dirty) chunk.fill(0);
  }
  writeAll(TRAILER);
}

if (import.meta.main) {
  const size = Number(process.argv[2]);
  const count = Number(process.argv[3] ?? 16);
  if (!Number.isSafeInteger(size) || size <= 0) throw new Error(`usage: zero-stream.ts <sizeBytes> <nonZeroBlocks>`);
  try {
    writeZeroStream(size, count);
  } catch (err) {
    // The reader went away (banger failed or finished early): its exit status tells the story.
    if ((err as NodeJS.ErrnoException).code === "EPIPE") process.exit(141);
    throw err;
  }
}
