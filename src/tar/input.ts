// Feeding a TarParser: one sequential pass in large chunks over a file, or over a stream
// (standard input) while spooling it to a sparse file at the same offsets.

import { fstatSync, readSync } from "node:fs";
import { forEachMappedWindow } from "./mapped-read.ts";
import type { Spool } from "./spool.ts";
import { TarError } from "./errors.ts";
import type { TarParser } from "./reader.ts";

/** Read size; a multiple of 4096 so spool blocks stay aligned with stream blocks. */
export const CHUNK_SIZE = 4 << 20;

/**
 * Passes the tar in `fd` from offset 0 to its end (or its end marker) through `parser`, then
 * calls parser.end(): through mapped windows where possible (mapped-read.ts), else with reads.
 */
export function parseTarFd(fd: number, parser: TarParser, chunkSize = CHUNK_SIZE): void {
  const size = fstatSync(fd).size;
  const mapped = size > 0 ? forEachMappedWindow(fd, size, (window) => {
    parser.push(window);
    return !parser.ended;
  }) : 0;
  if (!parser.ended) readFrom(fd, parser, mapped, chunkSize);
  parser.end();
}

/** Reads from `start` to the end of the file (or of the archive) in `chunkSize` reads. */
function readFrom(fd: number, parser: TarParser, start: number, chunkSize: number): void {
  const buf = Buffer.allocUnsafe(chunkSize);
  let pos = start;
  while (!parser.ended) {
    const n = readSync(fd, buf, 0, chunkSize, pos);
    if (n === 0) break;
    parser.push(buf.subarray(0, n));
    pos += n;
  }
}

/**
 * Reads a pipe or socket `fd` to its end with blocking reads straight into one large buffer
 * (no stream chunks to await or copy), parsing it and spooling it like spoolAndParse.
 * Returns the stream length.
 */
export function spoolAndParseFd(fd: number, parser: TarParser, spool: Spool, spoolNeeded: () => boolean = () => true, chunkSize = CHUNK_SIZE): number {
  const buf = Buffer.allocUnsafe(chunkSize);
  let base = 0;
  for (;;) {
    let fill = 0;
    while (fill < chunkSize) {
      let n: number;
      try {
        n = readSync(fd, buf, fill, chunkSize - fill, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") {
          Bun.sleepSync(1); // a non-blocking pipe with nothing to read yet
          continue;
        }
        throw new TarError(null, `reading standard input failed at byte ${base + fill}: ${(e as Error).message}`);
      }
      if (n === 0) break;
      fill += n;
    }
    if (fill > 0 && !parser.ended) {
      // Parsed first: a file data sink that stops holding the data within this chunk leaves it
      // to the spool from this chunk on.
      parser.push(buf.subarray(0, fill));
      if (spoolNeeded()) spool.write(buf, fill, base);
    }
    base += fill;
    if (fill < chunkSize) break;
  }
  parser.end();
  return base;
}

/**
 * Reads `stream` to its end, parsing it and writing it to `spool` at the same offsets (the
 * caller closes the spool, which sets its length to the stream's). After the end
 * marker the rest of the stream is drained (so the writer never sees a broken pipe) but not kept.
 * Returns the stream length.
 */
export async function spoolAndParse(
  stream: ReadableStream<Uint8Array>,
  parser: TarParser,
  spool: Spool,
  spoolNeeded: () => boolean = () => true,
  chunkSize = CHUNK_SIZE,
  /** What the stream is, for messages. */
  what = "standard input",
): Promise<number> {
  const buf = Buffer.allocUnsafe(chunkSize);
  let fill = 0;
  let base = 0;
  const flush = (): void => {
    if (fill === 0) return;
    if (!parser.ended) {
      parser.push(buf.subarray(0, fill));
      if (spoolNeeded()) spool.write(buf, fill, base);
    }
    base += fill;
    fill = 0;
  };
  const reader = stream.getReader();
  try {
    for (;;) {
      let result: Awaited<ReturnType<typeof reader.read>>;
      try {
        result = await reader.read();
      } catch (e) {
        // A layer's own errors (digest, decompression) already say which layer and why.
        if (what !== "standard input" && e instanceof Error) throw e;
        throw new TarError(null, `reading ${what} failed at byte ${base + fill}: ${(e as Error).message}`);
      }
      if (result.done) break;
      const chunk = result.value;
      let i = 0;
      while (i < chunk.length) {
        const take = Math.min(chunkSize - fill, chunk.length - i);
        buf.set(chunk.subarray(i, i + take), fill);
        fill += take;
        i += take;
        if (fill === chunkSize) flush();
      }
    }
    flush();
  } finally {
    reader.releaseLock();
  }
  parser.end();
  return base;
}
