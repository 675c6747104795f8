// Layer readers: compressed blob bytes in, uncompressed tar bytes out, with the blob digest
// and the config's diff_id checked while the bytes flow. A mismatch is an error raised at
// the end of the stream, before the consumer sees end-of-data, so a bad layer can never be
// mistaken for a good one.
import { closeSync, fstatSync, openSync, read, readSync } from "node:fs";
import fs from "node:fs/promises";
import { hugePageShared } from "../io/shared-memory.ts";
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
  /** Decompress gzip on the worker through node:zlib's stream even where it can inflate in place (tests, comparisons). */
  noNativeGzip?: boolean;
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
  if (compression === "none") {
    // One stream of bytes: its digest is both (checked once when they agree).
    const s = checkBlob ? verified(compressed, digest, "blob digest", where) : compressed;
    const provenAs = checkBlob || opts.blobVerified ? digest : undefined;
    return diffId && diffId !== provenAs ? verified(s, diffId, "diff_id (uncompressed digest)", where) : s;
  }
  const memo = opts.diffIds;
  const checkDiffId = diffId !== undefined && !(digest !== undefined && memo?.known(compression, digest) === diffId);
  // A sha256 over these very bytes makes zstd's own frame checksums redundant.
  const hashed = checkBlob || checkDiffId;
  let s: AsyncIterable<Uint8Array>;
  if (opts.inflateInline) s = inflateChunks(checkBlob ? verified(compressed, digest, "blob digest", where) : compressed, compression, where, opts.noNativeZstd);
  else if (compressed instanceof FileChunks) s = inflateInWorker({ file: compressed.range, blobDigest: checkBlob ? digest : undefined }, compression, opts, hashed);
  else s = inflateInWorker({ chunks: checkBlob ? verified(compressed, digest, "blob digest", where) : compressed }, compression, opts, hashed);
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

/**
 * Input slots (compressed chunks a worker may hold before it gives them back): for zstd enough
 * that reading never holds the decoder up. gzip, inflated in place (gzip.ts) now about as fast
 * as zstd decodes, gets half of zstd's slots and ring. Interleaved runs, one-layer Debian pull:
 * with zstd's sizes 0.62-0.66 s against 0.68-0.73 with 2 slots and 4 MiB (the sizes for
 * node:zlib's slower stream), and 0.61-0.64 against 0.65-0.67 with these; 5 layers: these
 * 1.23-1.26 s at a 192-197 MiB peak, zstd's sizes 1.25-1.34 s at 211-237 MiB.
 */
const inSlots = (compression: "gzip" | "zstd") => (compression === "zstd" ? 8 : 4);
const IN_SLOT = 1 << 20;
/**
 * The output ring: the reader's lag (3 pieces) plus room for the decoder to run ahead while the
 * reader is slow for a while (a stretch of small files). With 8 MiB the zstd worker waited
 * ~30 ms of a Debian pull for room; with 16, 10-20 ms. zstd's block decoder keeps a frame's
 * window in it too (frames with larger windows are decoded by the streaming decoder: see
 * inflate-worker.ts).
 */
const outRing = (compression: "gzip" | "zstd") => (compression === "zstd" ? 16 : 8) << 20;
/** About how many bytes a yielded piece holds. */
const PIECE = 1 << 20;
/** A yielded piece's bytes are given back to the worker once this many more have been yielded. */
const READER_LAG = 3;

/** A ring of `count` slots of `bytes` each in shared memory (huge pages), and a view of each. */
function ring(count: number, bytes: number): { memory: Uint8Array; slots: Uint8Array[] } {
  const memory = hugePageShared(count * bytes);
  return { memory, slots: Array.from({ length: count }, (_, i) => memory.subarray(i * bytes, (i + 1) * bytes)) };
}

/**
 * What a layer worker decompresses: chunks this thread copies into its input slots, or a file
 * (a blob in a layout or the cache, a docker-archive member) read here straight into them,
 * whose blob digest, if given, is checked over the very bytes read.
 */
type WorkerInput = { chunks: AsyncIterable<Uint8Array> } | { file: FileRange; blobDigest: string | undefined };

/**
 * Decompression on a worker thread (inflate-worker.ts), so that it runs beside the hashes, the
 * tar parser and the writer instead of before them. The bytes pass through shared memory (see
 * inflate-worker.ts): compressed chunks through input slots, each decompressed piece yielded as
 * a view of the output ring.
 */
async function* inflateInWorker(src: WorkerInput, compression: "gzip" | "zstd", opts: LayerStreamOptions, skipFrameChecksum: boolean): AsyncGenerator<Uint8Array> {
  const { where } = opts;
  const input = ring(inSlots(compression), IN_SLOT);
  const output = hugePageShared(outRing(compression));
  const file = "file" in src ? openRange(src.file) : null;
  // The file's bytes are hashed as they are read into the slots.
  const blob = file && "file" in src && src.blobDigest !== undefined ? { file, hash: new DigestWriter(), expected: src.blobDigest, where } : null;
  const worker = layerWorker();
  // What the worker says, and a failure of the compressed source, in arrival order.
  const inbox: (FromInflateWorker | { type: "source-error"; error: unknown })[] = [];
  const wake = { fn: null as (() => void) | null };
  const notify = () => {
    const w = wake.fn;
    wake.fn = null;
    w?.();
  };
  const send = (msg: ToInflateWorker) => worker.postMessage(msg);
  const fail = (error: unknown) => {
    inbox.push({ type: "source-error", error });
    notify();
  };
  const feeder: SlotFeeder = "chunks" in src ? new ChunkSlotFeeder(src.chunks, input.slots, send, fail) : new FileSlotFeeder(file!, blob?.hash ?? null, input.slots, send, fail);
  worker.onmessage = (e: MessageEvent<FromInflateWorker>) => {
    if (e.data.type === "consumed") feeder.freed(e.data.slot);
    else {
      inbox.push(e.data);
      notify();
    }
  };
  worker.onerror = (e: ErrorEvent) => {
    inbox.push({ type: "error", message: `${where}: decompression worker failed: ${e.message}` });
    notify();
  };
  send({ type: "start", compression, where, noNativeZstd: opts.noNativeZstd, noNativeGzip: opts.noNativeGzip, skipFrameChecksum, input: input.memory, inSlot: IN_SLOT, output, piece: PIECE });
  feeder.start();
  /** Where each piece still lent to the reader ends. */
  const lent: number[] = [];
  try {
    for (;;) {
      while (inbox.length === 0) await new Promise<void>((resolve) => (wake.fn = resolve));
      const msg = inbox.shift()!;
      if (msg.type === "source-error") throw msg.error;
      // Bytes that fail to decode may be a blob that is not what its digest says: that is the
      // error then (the rest of the file hashed here, from where reading stopped).
      if (msg.type === "error") throw (blob && blobMismatch(blob)) || new OciError(msg.message);
      if (msg.type === "done") break;
      if (msg.type !== "out") continue;
      lent.push(msg.start + msg.length);
      if (lent.length > READER_LAG) send({ type: "recycle", upTo: lent.shift()! });
      const at = msg.start % output.length;
      yield output.subarray(at, at + msg.length);
    }
    const mismatch = blob && blobMismatch(blob);
    if (mismatch) throw mismatch;
  } finally {
    feeder.stop();
    worker.terminate();
    if (file?.owned) closeSync(file.fd);
  }
}

/** Fills the worker's input slots, in the stream's order, and says so for each. */
interface SlotFeeder {
  start(): void;
  /** The worker gave `slot` back. */
  freed(slot: number): void;
  stop(): void;
}

/**
 * A file's bytes, read on this thread with plain reads straight into each free slot (and
 * hashed on the way where the blob digest is checked). Fed through async reads, the decoder
 * waited 20-40 ms of a Debian pull for input; reading the file itself, the worker spent ~20 ms
 * of the thread that sets the pace on it; read here, warm-daemon pulls went from 0.36 to
 * 0.34-0.35 s (two runs of 11 interleaved rounds).
 */
class FileSlotFeeder implements SlotFeeder {
  private pos: number;
  private done = false;

  constructor(
    private readonly file: OpenRange,
    private readonly hash: DigestWriter | null,
    private readonly slots: Uint8Array[],
    private readonly send: (msg: ToInflateWorker) => void,
    private readonly fail: (error: unknown) => void,
  ) {
    this.pos = file.start;
  }

  start(): void {
    for (let slot = 0; slot < this.slots.length && !this.done; slot++) this.fill(slot);
  }

  freed(slot: number): void {
    this.fill(slot);
  }

  stop(): void {
    this.done = true;
  }

  private fill(slot: number): void {
    const { file } = this;
    if (this.done) return;
    if (this.pos >= file.end) {
      this.done = true;
      this.send({ type: "end" });
      return;
    }
    const view = this.slots[slot]!;
    let n: number;
    try {
      n = readSync(file.fd, view, 0, Math.min(view.length, file.end - this.pos), this.pos);
      if (n === 0) throw fileEnds(file.label, this.pos, file.end);
    } catch (err) {
      this.done = true;
      this.fail(err);
      return;
    }
    this.pos += n;
    this.hash?.update(view.subarray(0, n));
    this.send({ type: "data", slot, length: n });
  }
}

/** Copies chunks of an async source (a download) into the slots the worker has given back. */
class ChunkSlotFeeder implements SlotFeeder {
  private readonly free: number[];
  private wake: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly src: AsyncIterable<Uint8Array>,
    private readonly slots: Uint8Array[],
    private readonly send: (msg: ToInflateWorker) => void,
    private readonly fail: (error: unknown) => void,
  ) {
    this.free = slots.map((_, i) => i).reverse();
  }

  start(): void {
    // A source still waiting (a download that stalls) when the layer stops ends on its own later.
    this.run().catch(this.fail);
  }

  freed(slot: number): void {
    this.free.push(slot);
    this.wakeUp();
  }

  stop(): void {
    this.stopped = true;
    this.wakeUp();
  }

  private async run(): Promise<void> {
    for await (const chunk of this.src) {
      for (let at = 0; at < chunk.length; ) {
        while (this.free.length === 0 && !this.stopped) await new Promise<void>((resolve) => (this.wake = resolve));
        if (this.stopped) return;
        const slot = this.free.pop()!;
        const n = Math.min(this.slots[slot]!.length, chunk.length - at);
        this.slots[slot]!.set(at === 0 && n === chunk.length ? chunk : chunk.subarray(at, at + n));
        this.send({ type: "data", slot, length: n });
        at += n;
      }
    }
    if (!this.stopped) this.send({ type: "end" });
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

/** A file's byte range, opened. */
interface OpenRange {
  fd: number;
  /** Opened here (from a path): closed when the layer is done. */
  owned: boolean;
  start: number;
  end: number;
  /** For messages: the file's path, or what the descriptor is. */
  label: string;
}

/**
 * The blob digest error, if the file's range does not hash to `expected`; null when it does.
 * `hash` has the bytes from the range's start on: what is left of the range is read here.
 */
function blobMismatch({ file, hash, expected, where }: { file: OpenRange; hash: DigestWriter; expected: string; where: string }): OciDigestMismatchError | null {
  const buf = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(1, file.end - file.start - hash.bytes)));
  for (let pos = file.start + hash.bytes; pos < file.end; ) {
    const n = readSync(file.fd, buf, 0, Math.min(buf.length, file.end - pos), pos);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
    pos += n;
  }
  const got = hash.digest();
  return got === expected ? null : new OciDigestMismatchError(`${where}: blob digest mismatch: expected ${expected}, the ${hash.bytes} bytes read hash to ${got}`, { digest: expected });
}

/** A file's byte range to read, the file opened (a path) or taken as it is (a descriptor). */
function openRange(range: FileRange): OpenRange {
  const owned = typeof range.file === "string";
  const fd = typeof range.file === "string" ? openSync(range.file, "r") : range.file;
  try {
    const end = range.end ?? fstatSync(fd).size;
    return { fd, owned, start: range.start, end, label: typeof range.file === "string" ? range.file : `descriptor ${range.file}` };
  } catch (err) {
    if (owned) closeSync(fd);
    throw err;
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

/** A file's bytes [start, end). */
export interface FileRange {
  /** A path, or an open descriptor (left open). */
  file: string | number;
  start: number;
  /** Default: the file's end. */
  end: number | undefined;
}

/** A file shorter than the bytes it should have. */
function fileEnds(label: string, pos: number, end: number): OciError {
  return new OciError(`${label}: file ends at byte ${pos}, expected ${end}`);
}

/**
 * Reads a file (or bytes [start, end) of it) as 1 MiB chunks, each in a buffer of its own
 * (decompressors may hold on to their input). Plain positional reads: Bun's file stream cost
 * ~200 ms of this thread for a 75 MB blob, in its stream machinery rather than in reading. A
 * compressed layer is read straight into its worker's input slots instead (see `range`).
 * `file` is a path, or an open descriptor (a spool, which has no name) that is left open.
 */
export function fileChunks(file: string | number, start = 0, end?: number): FileChunks {
  return new FileChunks(file, start, end);
}

export class FileChunks implements AsyncIterable<Uint8Array> {
  constructor(
    private readonly file: string | number,
    private readonly start: number,
    private readonly end: number | undefined,
  ) {}

  /** The file and the bytes of it these chunks are, for a reader of its own (a layer worker). */
  get range(): FileRange {
    return { file: this.file, start: this.start, end: this.end };
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
        const buf = Buffer.allocUnsafeSlow(Math.min(FILE_CHUNK, stop - pos));
        const bytesRead = await readInto(buf, pos);
        if (bytesRead === 0) throw fileEnds(label, pos, stop);
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
