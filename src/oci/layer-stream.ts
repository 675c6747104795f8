// Layer readers: compressed blob bytes in, uncompressed tar bytes out, with the blob digest
// and the config's diff_id checked while the bytes flow. A mismatch is an error raised at
// the end of the stream, before the consumer sees end-of-data, so a bad layer can never be
// mistaken for a good one.
import { fstatSync, read } from "node:fs";
import fs from "node:fs/promises";
import { DigestWriter } from "./digest.ts";
import { OciDigestMismatchError, OciError } from "./errors.ts";
import { inflateChunks } from "./inflate.ts";
import type { FromInflateWorker, ToInflateWorker } from "./inflate-worker.ts";
import type { Compression } from "./media-types.ts";

export interface LayerStreamOptions {
  compression: Compression;
  /** Checked against the compressed bytes (skip when the cache already verified them). */
  digest?: string;
  /** Checked against the uncompressed bytes. */
  diffId?: string;
  /** For messages: which layer of which image. */
  where: string;
  /** Decompress zstd with node:zlib even where libzstd could be used (tests, comparisons). */
  noNativeZstd?: boolean;
  /** Decompress on this thread instead of a worker (tests, comparisons). */
  inflateInline?: boolean;
}

/** Passes chunks through while hashing; throws at the end if the digest differs. */
async function* verified(src: AsyncIterable<Uint8Array>, expected: string, what: string, where: string): AsyncGenerator<Uint8Array> {
  const h = new DigestWriter();
  for await (const chunk of src) {
    h.update(chunk);
    yield chunk;
  }
  const got = h.digest();
  if (got !== expected) {
    throw new OciDigestMismatchError(`${where}: ${what} mismatch: expected ${expected}, the ${h.bytes} bytes read hash to ${got}`, { digest: expected });
  }
}

/**
 * Uncompressed, verified tar bytes of one layer, as an async iterable. A yielded chunk stays
 * valid until 3 more have been read (buffers are reused): consume each before pulling on.
 * Compressed chunks are handed over (to a worker thread): the caller must not reuse them.
 */
export function layerChunks(compressed: AsyncIterable<Uint8Array>, opts: LayerStreamOptions): AsyncIterable<Uint8Array> {
  let s: AsyncIterable<Uint8Array> = compressed;
  if (opts.compression === "none") {
    if (opts.digest) s = verified(s, opts.digest, "blob digest", opts.where);
  } else if (opts.inflateInline) {
    if (opts.digest) s = verified(s, opts.digest, "blob digest", opts.where);
    s = inflateChunks(s, opts.compression, opts.where, opts.noNativeZstd);
  } else {
    s = inflateInWorker(s, opts.compression, opts);
  }
  // The diff_id is hashed here, on the reading thread, not in the worker: for zstd the worker's
  // decompression (0.21 s for Debian) and this thread's hash plus parse (0.13 + 0.13 s) balance.
  if (opts.diffId) s = verified(s, opts.diffId, "diff_id (uncompressed digest)", opts.where);
  return s;
}

/** Compressed chunks a worker may hold before it says it has read them. */
const MAX_IN_FLIGHT = 4;
/** A yielded chunk is given back to the worker once this many more have been yielded. */
const READER_LAG = 3;

/**
 * Decompression (and the blob digest) on a worker thread (inflate-worker.ts), so that it runs
 * beside the diff_id hash, the tar parser and the writer instead of before them.
 */
async function* inflateInWorker(src: AsyncIterable<Uint8Array>, compression: "gzip" | "zstd", opts: LayerStreamOptions): AsyncGenerator<Uint8Array> {
  const worker = new Worker(new URL("./inflate-worker.ts", import.meta.url).href);
  // What the worker says, and a failure of the compressed source, in arrival order.
  const inbox: (FromInflateWorker | { type: "source-error"; error: unknown })[] = [];
  const wake = { fn: null as (() => void) | null };
  const notify = () => {
    const w = wake.fn;
    wake.fn = null;
    w?.();
  };
  let inFlight = 0;
  const feedWake = { fn: null as (() => void) | null };
  let stopped = false;
  worker.onmessage = (e: MessageEvent<FromInflateWorker>) => {
    if (e.data.type === "consumed") {
      inFlight--;
      const w = feedWake.fn;
      feedWake.fn = null;
      w?.();
      return;
    }
    inbox.push(e.data);
    notify();
  };
  worker.onerror = (e: ErrorEvent) => {
    inbox.push({ type: "error", kind: "inflate", message: `${opts.where}: decompression worker failed: ${e.message}` });
    notify();
  };
  const send = (msg: ToInflateWorker, transfer: ArrayBuffer[] = []) => worker.postMessage(msg, transfer);
  send({ type: "start", compression, digest: opts.digest, where: opts.where, noNativeZstd: opts.noNativeZstd });
  const feeder = (async () => {
    try {
      for await (const chunk of src) {
        while (inFlight >= MAX_IN_FLIGHT && !stopped) await new Promise<void>((resolve) => (feedWake.fn = resolve));
        if (stopped) return;
        // A chunk that owns its whole buffer moves to the worker; a view into a larger one is copied.
        const own = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer ? chunk : chunk.slice();
        inFlight++;
        send({ type: "data", chunk: own }, [own.buffer as ArrayBuffer]);
      }
      if (!stopped) send({ type: "end" });
    } catch (error) {
      inbox.push({ type: "source-error", error });
      notify();
    }
  })();
  const lent: ArrayBuffer[] = [];
  try {
    for (;;) {
      while (inbox.length === 0) await new Promise<void>((resolve) => (wake.fn = resolve));
      const msg = inbox.shift()!;
      if (msg.type === "source-error") throw msg.error;
      if (msg.type === "done") return;
      if (msg.type === "error") {
        if (msg.kind === "digest") throw new OciDigestMismatchError(msg.message, { digest: msg.digest ?? "" });
        throw new OciError(msg.message);
      }
      if (msg.type !== "out") continue;
      lent.push(msg.buf);
      if (lent.length > READER_LAG) {
        const buf = lent.shift()!;
        send({ type: "recycle", buf }, [buf]);
      }
      yield new Uint8Array(msg.buf, 0, msg.length);
    }
  } finally {
    stopped = true;
    feedWake.fn?.();
    worker.terminate();
    // A feeder still waiting on its source (a download that stalls) ends on its own later.
    void feeder.catch(() => {});
  }
}

/** Wraps an async iterable as a pull-based web stream (a ReadableStream is also async-iterable). */
export function toReadableStream(it: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  let iter: AsyncIterator<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        iter ??= it[Symbol.asyncIterator]();
        const r = await iter.next();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      async cancel() {
        await iter?.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * Reads a file (or bytes [start, end) of it) as 1 MiB chunks, each a fresh buffer (decompressors
 * may hold on to their input). Plain positional reads: Bun's file stream cost ~200 ms of this
 * thread for a 75 MB blob, in its stream machinery rather than in reading. `file` is a path, or
 * an open descriptor (a spool, which has no name) that is left open.
 */
export async function* fileChunks(file: string | number, start = 0, end?: number): AsyncGenerator<Uint8Array> {
  const owned = typeof file === "string" ? await fs.open(file, "r") : null;
  const label = typeof file === "string" ? file : `descriptor ${file}`;
  const readInto = owned
    ? async (buf: Buffer, pos: number) => (await owned.read(buf, 0, buf.length, pos)).bytesRead
    : (buf: Buffer, pos: number) => readAt(file as number, buf, pos);
  try {
    const stop = end ?? (owned ? (await owned.stat()).size : fstatSync(file as number).size);
    for (let pos = start; pos < stop; ) {
      const buf = Buffer.allocUnsafe(Math.min(FILE_CHUNK, stop - pos));
      const bytesRead = await readInto(buf, pos);
      if (bytesRead === 0) throw new OciError(`${label}: file ends at byte ${pos}, expected ${stop}`);
      pos += bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await owned?.close();
  }
}

/** One positional read on the thread pool (node:fs's callback form, which takes a bare descriptor). */
function readAt(fd: number, buf: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, buf.length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

const FILE_CHUNK = 1 << 20;
