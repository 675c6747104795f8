// The spool: a stream that can be read only once (standard input, a layer as it is
// downloaded) written at the same offsets into a file, so that its bytes can be read back by
// offset later. The one spool of banger: `make-ext4 -` (src/tar/rootfs.ts), the layers of an
// image pull (src/daemon/build-image.ts) and the `-` / `rootfs:-` image source
// (src/oci/sources/rootfs.ts) all use it.
//
// - The file is unlinked as soon as it is created and lives on only through its descriptor, so
//   nothing is left on disk after an error, an interrupt or even a killed process.
// - All-zero 4 KiB blocks are left as holes: a 100 GiB sparse member costs no disk.
// - The writes go through a StagedBlockWriter: off this thread and, where allowed, O_DIRECT, so
//   spooling a rootfs neither fills the page cache nor stalls the reader on dirty-page throttling
//   (except for a spool read back whole right away: SpoolOptions.readSoon; and a layer's, read
//   back within its pull: SpoolOptions.transient, through the page cache and never flushed:
//   cold 5-layer pulls 3.19 -> 2.97 s, median of 5 interleaved).
// - Whoever reads the stream may leave chunks out (spoolStream's spoolChunk: a SpoolPolicy
//   whose sink holds the file bytes) and write bytes back later (writeBack).
import { closeSync, ftruncateSync, openSync, readSync, unlinkSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { writeAll } from "./block-io.ts";
import type { IoOptions } from "./options.ts";
import { StagedBlockWriter } from "./staged-writer.ts";
import { isZeroRange, ZERO_BLOCK_SIZE as BS } from "./zeros.ts";

/** Read size; a multiple of 4096 so spool blocks stay aligned with stream blocks. */
export const SPOOL_CHUNK_SIZE = 4 << 20;

/**
 * A spool file's name beside `near` (e.g. the output image): `.<basename>.<tag>-<pid>-<random>`
 * in its directory, so whoever lists the directory while the file still has its name (a moment)
 * sees what it belongs to.
 */
export function spoolPathNear(near: string, tag: string): string {
  const abs = resolve(near);
  const random = Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString("hex");
  return join(dirname(abs), `.${basename(abs)}.${tag}-${process.pid}-${random}`);
}

export interface SpoolOptions {
  /**
   * The whole spool is read back right after it is written (the `-` image source, hashed and
   * then unpacked): plain writes on this thread, through the page cache, so that reading it
   * back finds it there. The staged O_DIRECT writes measured the Debian rootfs piped to `image
   * pull -` 1.05 -> 1.6 s (read back from the disk), and their slots take 34 MiB of memory.
   * Spools read back only in part, if at all, keep them.
   */
  readSoon?: boolean;
  /**
   * Written off this thread, but through the page cache and left there (StagedBlockWriter's
   * `transient`): for a spool read back within the same run and then dropped, a layer's.
   */
  transient?: boolean;
  io?: IoOptions;
}

export class Spool {
  /** Null when read back soon: plain writes on this thread then. */
  private readonly writer: StagedBlockWriter | null;
  private length = 0;
  /** Bytes handed to the writer (non-zero blocks only). */
  bytesWritten = 0;

  /**
   * `fd`: a writable, readable regular file. It stays open after close() (it is how the spool is
   * read back): whoever reads it closes it (an FdByteSource, a layer reader).
   */
  constructor(
    readonly fd: number,
    opts: SpoolOptions = {},
  ) {
    this.writer = opts.readSoon ? null : new StagedBlockWriter(fd, BS, opts.io, opts.transient);
  }

  /** A spool in a new file at `path`, unlinked at once (see the top of this file). */
  static create(path: string, opts: SpoolOptions = {}): Spool {
    let fd: number;
    try {
      fd = openSync(path, "wx+", 0o600);
    } catch (e) {
      throw new Error(`cannot create spool file ${path}: ${(e as Error).message}`);
    }
    try {
      unlinkSync(path);
    } catch (e) {
      closeSync(fd);
      throw new Error(`cannot unlink spool file ${path}: ${(e as Error).message}`);
    }
    return new Spool(fd, opts);
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
        this.put(position + runStart, buf, runStart, p);
        this.bytesWritten += p - runStart;
        runStart = -1;
      }
    }
    if (runStart >= 0) {
      this.put(position + runStart, buf, runStart, len);
      this.bytesWritten += len - runStart;
    }
  }

  private put(position: number, buf: Uint8Array, from: number, to: number): void {
    if (this.writer) this.writer.put(position / BS, buf, from, to);
    else writeAll(this.fd, buf.subarray(from, to), position);
  }

  /**
   * Writes `bytes` at stream offset `position` after the spool was closed: file data that was
   * left out of the spool while a sink held it, given back (SpoolPolicy.restore).
   */
  writeBack(bytes: Uint8Array, position: number): void {
    writeAll(this.fd, bytes, position);
  }

  /** Whether writing started the writer thread and its shared slots (a sink that held every byte never does). */
  get usedSlots(): boolean {
    return this.writer?.started ?? false;
  }

  /** Waits for every write, then sets the spool's length to the stream's (the last block was padded). */
  async close(): Promise<void> {
    await this.writer?.finish();
    ftruncateSync(this.fd, this.length);
  }

  /** Stops writing at once (after a failure). */
  async stop(): Promise<void> {
    await this.writer?.stop();
  }
}

/**
 * What a spool reads: a pipe or socket descriptor (read with blocking reads straight into one
 * large buffer: no stream chunks to await or copy), or a stream of chunks.
 */
export type SpoolInput = { fd: number } | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;


/** Reading the input failed (not observing it, not writing the spool). `cause` is what the read threw. */
export class SpoolInputError extends Error {
  override name = "SpoolInputError";

  constructor(
    what: string,
    readonly offset: number,
    override readonly cause: unknown,
  ) {
    super(`reading ${what} failed at byte ${offset}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export interface SpoolStreamOptions {
  /**
   * Sees each chunk (a view it must not keep) before it is spooled; returns false once it wants
   * no more. From the next chunk on the rest of the input is read (so that a writer on the other
   * end never sees a broken pipe) but neither observed nor spooled.
   */
  observe?(chunk: Uint8Array): boolean;
  /**
   * Asked after each chunk was observed: false leaves it out of the spool (a SpoolPolicy whose
   * sink holds the file bytes: `() => policy.spoolsChunks`). Default: every chunk is spooled.
   */
  spoolChunk?(): boolean;
  /** What the input is, for messages (default "standard input"). */
  what?: string;
  /** The largest piece observed and spooled at once; a multiple of 4096 (default 4 MiB). */
  chunkSize?: number;
}

/**
 * Reads `input` to its end into `spool` at the same offsets, in pieces of at most `chunkSize`
 * that start on a 4096-byte boundary (the caller closes the spool, which sets its length to
 * the stream's). Returns the input's length.
 * Throws SpoolInputError when reading fails, and whatever observe() throws.
 */
export async function spoolStream(input: SpoolInput, spool: Spool, opts: SpoolStreamOptions = {}): Promise<number> {
  const chunkSize = opts.chunkSize ?? SPOOL_CHUNK_SIZE;
  const what = opts.what ?? "standard input";
  const buf = Buffer.allocUnsafe(chunkSize);
  let observing = true;
  let base = 0;
  /** Bytes data[0, fill) (buf, or a whole chunk of the input) are the input at `base`. */
  const take = (fill: number, data: Uint8Array = buf): void => {
    if (fill === 0) return;
    if (observing) {
      const chunk = data.subarray(0, fill);
      if (opts.observe && !opts.observe(chunk)) observing = false;
      // Observed first: a sink that stops holding the data within this chunk leaves it to the
      // spool from this chunk on.
      if (opts.spoolChunk?.() ?? true) spool.write(data, fill, base);
    }
    base += fill;
  };

  if ("fd" in input) {
    for (;;) {
      let fill = 0;
      while (fill < chunkSize) {
        let n: number;
        try {
          n = readSync(input.fd, buf, fill, chunkSize - fill, null);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "EAGAIN") {
            Bun.sleepSync(1); // a non-blocking pipe with nothing to read yet
            continue;
          }
          throw new SpoolInputError(what, base + fill, e);
        }
        if (n === 0) break;
        fill += n;
      }
      take(fill);
      if (fill < chunkSize) return base;
    }
  }

  const next = chunkReader(input);
  let fill = 0;
  try {
    for (;;) {
      let result: { done?: boolean; value?: Uint8Array };
      try {
        result = await next.read();
      } catch (e) {
        throw new SpoolInputError(what, base + fill, e);
      }
      if (result.done) break;
      const chunk = result.value!;
      let i = 0;
      // A large piece (a layer's decompressed 1 MiB pieces) passes through uncopied, wherever
      // its bounds fall: buf is topped up to a block boundary and handed over first, then the
      // piece's whole blocks go as they are. Copying each into buf cost ~38 ms of this thread
      // for the Debian layer, and once one piece came short (a decoder's partial flush) every
      // later one was off the block grid and copied.
      if (chunk.length >= chunkSize / 2) {
        if (fill > 0) {
          i = (BS - (fill % BS)) % BS; // the piece is longer than a block
          buf.set(chunk.subarray(0, i), fill);
          take(fill + i);
          fill = 0;
        }
        while (chunk.length - i >= BS) {
          const n = Math.min(chunkSize, chunk.length - i - ((chunk.length - i) % BS));
          take(n, chunk.subarray(i, i + n));
          i += n;
        }
      }
      // Small pieces (and a large one's last partial block) are gathered into buf.
      while (i < chunk.length) {
        const n = Math.min(chunkSize - fill, chunk.length - i);
        buf.set(chunk.subarray(i, i + n), fill);
        fill += n;
        i += n;
        if (fill === chunkSize) {
          take(fill);
          fill = 0;
        }
      }
    }
    take(fill);
  } finally {
    next.release();
  }
  return base;
}

/** One way to pull chunks from a web stream (its reader, released after) or an async iterable. */
function chunkReader(input: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): { read(): Promise<{ done?: boolean; value?: Uint8Array }>; release(): void } {
  if (input instanceof ReadableStream) {
    const reader = input.getReader();
    return { read: () => reader.read(), release: () => reader.releaseLock() };
  }
  const it = input[Symbol.asyncIterator]();
  return { read: () => it.next(), release: () => {} };
}
