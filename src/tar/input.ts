// Feeding a TarParser one sequential pass in large chunks over a file. (A stream is parsed
// while it is spooled: src/io/spool.ts, with the parser as its observer.)

import { fstatSync, readSync } from "node:fs";
import type { IoOptions } from "../io/options.ts";
import { forEachMappedWindow } from "./mapped-read.ts";
import type { TarParser } from "./reader.ts";

/** Read size where the file cannot be mapped. */
export const CHUNK_SIZE = 4 << 20;

/**
 * Passes the tar in `fd` from offset 0 to its end (or its end marker) through `parser`, then
 * calls parser.end(): through mapped windows where possible (mapped-read.ts) and not turned off
 * (`io.mmap`), else with reads.
 */
export function parseTarFd(fd: number, parser: TarParser, io: IoOptions = {}, chunkSize = CHUNK_SIZE): void {
  const size = fstatSync(fd).size;
  const mapped = size > 0 && io.mmap !== false ? forEachMappedWindow(fd, size, (window) => {
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
