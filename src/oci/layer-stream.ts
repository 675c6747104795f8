// Layer readers: compressed blob bytes in, uncompressed tar bytes out, with the blob digest
// and the config's diff_id checked while the bytes flow. A mismatch is an error raised at
// the end of the stream, before the consumer sees end-of-data, so a bad layer can never be
// mistaken for a good one.
import { fstatSync, read } from "node:fs";
import fs from "node:fs/promises";
import { DigestWriter } from "./digest.ts";
import type { DiffIdMemo } from "./diffid-memo.ts";
import { OciDigestMismatchError, OciError } from "./errors.ts";
import { inflateChunks } from "./inflate.ts";
import type { FromInflateWorker, ToInflateWorker } from "./inflate-worker.ts";
import type { Compression } from "./media-types.ts";

export interface LayerStreamOptions {
  compression: Compression;
  /** The blob's digest: checked against the compressed bytes unless `blobVerified`. */
  digest?: string;
  /** The bytes are already known to hash to `digest` (the blob cache checked them when it stored them). */
  blobVerified?: boolean;
  /** Checked against the uncompressed bytes, unless `diffIds` already proved it for this blob. */
  diffId?: string;
  /** Blob -> diff_id facts proven earlier; a read that proves both digests adds one. */
  diffIds?: DiffIdMemo;
  /** For messages: which layer of which image. */
  where: string;
  /** Decompress zstd with node:zlib even where libzstd could be used (tests, comparisons). */
  noNativeZstd?: boolean;
  /** Decompress on this thread instead of a worker (tests, comparisons). */
  inflateInline?: boolean;
}

/**
 * Passes chunks through while hashing; throws at the end if the digest differs, before the
 * consumer sees the end. `onMatch` runs once the whole stream matched.
 */
async function* verified(src: AsyncIterable<Uint8Array>, expected: string, what: string, where: string, onMatch?: () => void): AsyncGenerator<Uint8Array> {
  const h = new DigestWriter();
  for await (const chunk of src) {
    h.update(chunk);
    yield chunk;
  }
  const got = h.digest();
  if (got !== expected) {
    throw new OciDigestMismatchError(`${where}: ${what} mismatch: expected ${expected}, the ${h.bytes} bytes read hash to ${got}`, { digest: expected });
  }
  onMatch?.();
}

/**
 * Uncompressed, verified tar bytes of one layer, as an async iterable. A yielded chunk stays
 * valid until 3 more have been read (buffers are reused): consume each before pulling on.
 * Compressed chunks are handed over (to a worker thread): the caller must not reuse them.
 *
 * What is hashed, all on this thread (the decoder's thread sets a zstd pull's pace):
 * - the blob digest, over the compressed bytes, unless the blob is already verified;
 * - the diff_id, over the uncompressed bytes, unless `diffIds` knows that this blob gives it.
 *   A read that checks both (or the diff_id of a verified blob) records the fact.
 */
export function layerChunks(compressed: AsyncIterable<Uint8Array>, opts: LayerStreamOptions): AsyncIterable<Uint8Array> {
  const { compression, digest, diffId, where } = opts;
  const checkBlob = digest !== undefined && !opts.blobVerified;
  let s: AsyncIterable<Uint8Array> = compressed;
  if (checkBlob) s = verified(s, digest, "blob digest", where);
  if (compression === "none") {
    // One stream of bytes: its digest is both (checked once when they agree).
    const provenAs = checkBlob || opts.blobVerified ? digest : undefined;
    return diffId && diffId !== provenAs ? verified(s, diffId, "diff_id (uncompressed digest)", where) : s;
  }
  const memo = opts.diffIds;
  const checkDiffId = diffId !== undefined && !(digest !== undefined && memo?.known(compression, digest) === diffId);
  const reuse = compressed instanceof FileChunks ? compressed : undefined;
  // A sha256 over these very bytes makes zstd's own frame checksums redundant.
  const hashed = checkBlob || checkDiffId;
  s = opts.inflateInline ? inflateChunks(s, compression, where, opts.noNativeZstd) : inflateInWorker(s, compression, opts, reuse, hashed);
  if (!checkDiffId) return s;
  // Recorded only for a blob proven here or before: both digests then hold for these bytes.
  const record = digest !== undefined && memo ? () => memo.remember(compression, digest, diffId) : undefined;
  return verified(s, diffId, "diff_id (uncompressed digest)", where, record);
}

const WORKER_URL = new URL("./inflate-worker.ts", import.meta.url).href;
/** A booted worker that no layer has taken yet (prestartLayerWorker), and whether it failed to boot. */
let spare: { worker: Worker; failed: boolean } | null = null;

/**
 * Boots a layer worker now for the next layer this process opens: the ~8 ms a worker takes to
 * start then pass while the pull resolves its source, not before its first byte. An idle spare
 * keeps no process alive; the daemon keeps it for its next pull.
 */
export function prestartLayerWorker(): void {
  if (spare) return;
  const s = { worker: new Worker(WORKER_URL), failed: false };
  // A boot error with nobody listening yet would be lost, and the layer would wait forever.
  s.worker.onerror = () => void (s.failed = true);
  s.worker.unref();
  spare = s;
}

function layerWorker(): Worker {
  const s = spare;
  spare = null;
  if (!s || s.failed) {
    s?.worker.terminate();
    return new Worker(WORKER_URL);
  }
  s.worker.ref();
  return s.worker;
}

/** Input slots (compressed chunks a worker may hold before it says it has read them): for zstd enough that reading never holds the decoder up. */
const inSlots = (compression: "gzip" | "zstd") => (compression === "zstd" ? 8 : 4);
/**
 * Output slots one worker may fill ahead: the reader's lag (3) plus room to run ahead while the
 * reader is slow for a while (a stretch of small files). With 8 the zstd worker waited ~30 ms of
 * a Debian pull for a slot; with 16, 10-20 ms. gzip, three times slower to decode, never gets
 * ahead: 8 keep two layers at a time from costing 8 MiB more memory each.
 */
const outSlots = (compression: "gzip" | "zstd") => (compression === "zstd" ? 16 : 8);
const IN_SLOT = 1 << 20;
const OUT_SLOT = 1 << 20;
/** A yielded chunk's slot is given back to the worker once this many more have been yielded. */
const READER_LAG = 3;

/** A ring of `count` slots of `bytes` each in shared memory, and a view of each. */
function ring(count: number, bytes: number): { memory: SharedArrayBuffer; slots: Uint8Array[] } {
  const memory = new SharedArrayBuffer(count * bytes);
  return { memory, slots: Array.from({ length: count }, (_, i) => new Uint8Array(memory, i * bytes, bytes)) };
}

/**
 * Decompression on a worker thread (inflate-worker.ts), so that it runs beside the hashes, the
 * tar parser and the writer instead of before them. The bytes pass through two rings of shared
 * memory (see inflate-worker.ts): each compressed chunk is copied into a free input slot (and
 * a FileChunks buffer goes straight back to its reader), each decompressed piece is yielded as a
 * view of its output slot.
 */
async function* inflateInWorker(src: AsyncIterable<Uint8Array>, compression: "gzip" | "zstd", opts: LayerStreamOptions, reuse: FileChunks | undefined, skipFrameChecksum: boolean): AsyncGenerator<Uint8Array> {
  const worker = layerWorker();
  const input = ring(inSlots(compression), IN_SLOT);
  const output = ring(outSlots(compression), OUT_SLOT);
  const freeIn = input.slots.map((_, i) => i).reverse();
  // What the worker says, and a failure of the compressed source, in arrival order.
  const inbox: (FromInflateWorker | { type: "source-error"; error: unknown })[] = [];
  const wake = { fn: null as (() => void) | null };
  const notify = () => {
    const w = wake.fn;
    wake.fn = null;
    w?.();
  };
  const feedWake = { fn: null as (() => void) | null };
  let stopped = false;
  worker.onmessage = (e: MessageEvent<FromInflateWorker>) => {
    if (e.data.type === "consumed") {
      freeIn.push(e.data.slot);
      const w = feedWake.fn;
      feedWake.fn = null;
      w?.();
      return;
    }
    inbox.push(e.data);
    notify();
  };
  worker.onerror = (e: ErrorEvent) => {
    inbox.push({ type: "error", message: `${opts.where}: decompression worker failed: ${e.message}` });
    notify();
  };
  const send = (msg: ToInflateWorker) => worker.postMessage(msg);
  send({ type: "start", compression, where: opts.where, noNativeZstd: opts.noNativeZstd, skipFrameChecksum, input: input.memory, inSlot: IN_SLOT, output: output.memory, outSlot: OUT_SLOT });
  const feeder = (async () => {
    try {
      for await (const chunk of src) {
        for (let at = 0; at < chunk.length; ) {
          while (freeIn.length === 0 && !stopped) await new Promise<void>((resolve) => (feedWake.fn = resolve));
          if (stopped) return;
          const slot = freeIn.pop()!;
          const n = Math.min(IN_SLOT, chunk.length - at);
          input.slots[slot]!.set(at === 0 && n === chunk.length ? chunk : chunk.subarray(at, at + n));
          send({ type: "data", slot, length: n });
          at += n;
        }
        reuse?.recycle(chunk.buffer as ArrayBuffer);
      }
      if (!stopped) send({ type: "end" });
    } catch (error) {
      inbox.push({ type: "source-error", error });
      notify();
    }
  })();
  const lent: number[] = [];
  try {
    for (;;) {
      while (inbox.length === 0) await new Promise<void>((resolve) => (wake.fn = resolve));
      const msg = inbox.shift()!;
      if (msg.type === "source-error") throw msg.error;
      if (msg.type === "done") return;
      if (msg.type === "error") throw new OciError(msg.message);
      if (msg.type !== "out") continue;
      lent.push(msg.slot);
      if (lent.length > READER_LAG) send({ type: "recycle", slot: lent.shift()! });
      yield output.slots[msg.slot]!.subarray(0, msg.length);
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
 * Reads a file (or bytes [start, end) of it) as 1 MiB chunks, each in a buffer of its own
 * (decompressors may hold on to their input), or in one given back with recycle(): the layer
 * reader gives each chunk back once it has copied it into its worker's shared memory, which
 * spares faulting in a fresh 1 MiB for every MiB of the blob. Plain positional reads: Bun's file stream cost ~200 ms of this
 * thread for a 75 MB blob, in its stream machinery rather than in reading. `file` is a path, or
 * an open descriptor (a spool, which has no name) that is left open.
 */
export function fileChunks(file: string | number, start = 0, end?: number): FileChunks {
  return new FileChunks(file, start, end);
}

export class FileChunks implements AsyncIterable<Uint8Array> {
  private readonly spare: ArrayBuffer[] = [];

  constructor(
    private readonly file: string | number,
    private readonly start: number,
    private readonly end: number | undefined,
  ) {}

  /** A chunk's buffer that nobody uses any more. */
  recycle(buf: ArrayBuffer): void {
    if (buf.byteLength === FILE_CHUNK && this.spare.length < 16) this.spare.push(buf);
  }

  private buffer(size: number): Buffer {
    const spare = size === FILE_CHUNK ? this.spare.pop() : undefined;
    return spare ? Buffer.from(spare) : Buffer.allocUnsafeSlow(size);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    const { file } = this;
    const owned = typeof file === "string" ? await fs.open(file, "r") : null;
    const label = typeof file === "string" ? file : `descriptor ${file}`;
    const readInto = owned
      ? async (buf: Buffer, pos: number) => (await owned.read(buf, 0, buf.length, pos)).bytesRead
      : (buf: Buffer, pos: number) => readAt(file as number, buf, pos);
    try {
      const stop = this.end ?? (owned ? (await owned.stat()).size : fstatSync(file as number).size);
      for (let pos = this.start; pos < stop; ) {
        const buf = this.buffer(Math.min(FILE_CHUNK, stop - pos));
        const bytesRead = await readInto(buf, pos);
        if (bytesRead === 0) throw new OciError(`${label}: file ends at byte ${pos}, expected ${stop}`);
        pos += bytesRead;
        yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
      }
    } finally {
      await owned?.close();
    }
  }
}

/** One positional read on the thread pool (node:fs's callback form, which takes a bare descriptor). */
function readAt(fd: number, buf: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, buf.length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

const FILE_CHUNK = 1 << 20;
