// The worker side of layer-stream.ts's inflateInWorker: compressed chunks in, decompressed
// bytes out in whole 1 MiB buffers. Decompression is the longest stage
// of a warm pull (zstd 0.21 s, gzip ~0.6 s for the Debian layer) and used to run on the same
// thread as the diff_id hash and the tar parser; here it runs beside them.
//
// Protocol (messages, buffers transferred, never copied across):
//   in:  start {compression, where, noNativeZstd, skipFrameChecksum} · data {chunk} · end · recycle {buf}
//   out: consumed {buf?} (one data message fully read: the sender may send another; its
//        buffer comes back when the decoder is done with it, for the reader to reuse)
//        out {buf, length} · done · error {message}
// Output buffers come back through `recycle` once the reader is done with them, so a layer
// reuses a handful of buffers instead of faulting in a fresh page for every byte it yields.
import { inflateChunks, type InflateCompression } from "./inflate.ts";
import { nativeZstdAvailable, ZstdError, ZstdStream } from "./zstd.ts";

declare const self: Worker;

export type ToInflateWorker =
  | { type: "start"; compression: InflateCompression; where: string; noNativeZstd?: boolean; skipFrameChecksum?: boolean }
  | { type: "data"; chunk: Uint8Array }
  | { type: "end" }
  | { type: "recycle"; buf: ArrayBuffer };

export type FromInflateWorker =
  | { type: "consumed"; buf?: ArrayBuffer }
  | { type: "out"; buf: ArrayBuffer; length: number }
  | { type: "done" }
  | { type: "error"; message: string };

const OUT_SIZE = 1 << 20;
/**
 * Output buffers one worker may have out at once: the reader's lag (3) plus room to run ahead
 * while the reader is slow for a while (a stretch of small files). With 8 the zstd worker
 * waited ~30 ms of a Debian pull for buffers; with 16, 10-20 ms. gzip, three times slower to
 * decode, never gets ahead: 8 keep two layers at a time from costing 16 MiB more memory.
 */
const maxBuffers = (fastDecoder: boolean) => (fastDecoder ? 16 : 8);
let bufferLimit = maxBuffers(false);

/** Messages that arrive while the worker is busy, as an async queue. */
class Inbox<T> {
  private items: T[] = [];
  private waiter: ((v: T) => void) | null = null;
  push(v: T): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(v);
    } else this.items.push(v);
  }
  get empty(): boolean {
    return this.items.length === 0;
  }
  next(): Promise<T> {
    const v = this.items.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise((resolve) => (this.waiter = resolve));
  }
}

const input = new Inbox<Uint8Array | null>();
const recycled = new Inbox<ArrayBuffer>();
let allocated = 0;

function post(msg: FromInflateWorker, transfer: ArrayBuffer[] = []): void {
  self.postMessage(msg, transfer);
}

self.onmessage = (e: MessageEvent<ToInflateWorker>) => {
  const msg = e.data;
  if (msg.type === "start") void run(msg);
  else if (msg.type === "data") input.push(msg.chunk);
  else if (msg.type === "end") input.push(null);
  else recycled.push(msg.buf);
};

/**
 * The compressed chunks as they arrive, each acknowledged once read. `idle` runs whenever no
 * chunk is waiting: a slow download still shows its bytes at once.
 */
async function* received(idle: () => void, giveBack: boolean): AsyncGenerator<Uint8Array> {
  for (;;) {
    if (input.empty) idle();
    const chunk = await input.next();
    if (chunk === null) return;
    yield chunk;
    // Asked for the next chunk, the decoder is done with this one (when it decodes in place).
    if (giveBack) post({ type: "consumed", buf: chunk.buffer as ArrayBuffer }, [chunk.buffer as ArrayBuffer]);
    else post({ type: "consumed" });
  }
}

async function freeBuffer(): Promise<ArrayBuffer> {
  if (allocated < bufferLimit) {
    allocated++;
    return new ArrayBuffer(OUT_SIZE);
  }
  return recycled.next();
}

/** Decompressed bytes gathered into whole buffers; a partial one goes out when input runs dry. */
class Output {
  private buf: Uint8Array | null = null;
  private fill = 0;
  async write(piece: Uint8Array): Promise<void> {
    for (let at = 0; at < piece.length; ) {
      const buf = await this.space();
      const n = Math.min(piece.length - at, OUT_SIZE - this.fill);
      buf.set(piece.subarray(at, at + n), this.fill);
      this.advance(n);
      at += n;
    }
  }
  /** The buffer being filled (room from `filled` on), for a decoder that writes in place. */
  async space(): Promise<Uint8Array> {
    this.buf ??= new Uint8Array(await freeBuffer());
    return this.buf;
  }
  get filled(): number {
    return this.fill;
  }
  /** `n` more bytes were written into space(); a full buffer goes out. */
  advance(n: number): void {
    this.fill += n;
    if (this.fill === OUT_SIZE) this.flush();
  }
  flush(): void {
    if (!this.buf || this.fill === 0) return;
    const buf = this.buf.buffer as ArrayBuffer;
    post({ type: "out", buf, length: this.fill }, [buf]);
    this.buf = null;
    this.fill = 0;
  }
}

async function run(start: Extract<ToInflateWorker, { type: "start" }>): Promise<void> {
  const out = new Output();
  // libzstd reads each chunk whole before it asks for the next, so its chunks can go back for
  // reuse; node:zlib may still hold one after its write() returns.
  const native = start.compression === "zstd" && nativeZstdAvailable(start.noNativeZstd);
  bufferLimit = maxBuffers(native);
  const input = received(() => out.flush(), native);
  try {
    if (native) await zstdInto(input, out, start.where, start.skipFrameChecksum ?? false);
    // node:zlib's pieces are its own fresh buffers: gathered into the transfer buffers.
    else for await (const piece of inflateChunks(input, start.compression, start.where, start.noNativeZstd)) await out.write(piece);
  } catch (err) {
    post({ type: "error", message: err instanceof Error ? err.message : String(err) });
    return;
  }
  out.flush();
  post({ type: "done" });
}

/**
 * libzstd decodes straight into the transfer buffers: copying its output from a ring into them
 * cost this thread ~30 ms for the 226 MB Debian layer, on the stage that sets a zstd pull's pace.
 */
async function zstdInto(input: AsyncIterable<Uint8Array>, out: Output, where: string, skipFrameChecksum: boolean): Promise<void> {
  let zs: ZstdStream | null = null;
  try {
    zs = new ZstdStream({ skipFrameChecksum });
    for await (const chunk of input) {
      for (let inPos = 0; ; ) {
        const buf = await out.space();
        const from = out.filled;
        zs.step(chunk, inPos, chunk.length, buf, from);
        inPos = zs.inPos;
        const full = zs.outPos === buf.length;
        out.advance(zs.outPos - from);
        if (inPos >= chunk.length && !full) break;
      }
    }
    for (;;) {
      const buf = await out.space();
      const from = out.filled;
      if (!zs.drain(buf, from)) break;
      out.advance(zs.outPos - from);
    }
    zs.checkEnded();
  } catch (err) {
    if (err instanceof ZstdError) throw new Error(`${where}: zstd decompression failed: ${err.message.replace(/^zstd: /, "")}`);
    throw err;
  } finally {
    zs?.free();
  }
}
