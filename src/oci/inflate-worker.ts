// The worker side of layer-stream.ts's inflateInWorker: compressed chunks in, the blob digest
// checked, decompressed bytes out in whole 1 MiB buffers. Decompression is the longest stage
// of a warm pull (zstd 0.21 s, gzip ~0.6 s for the Debian layer) and used to run on the same
// thread as the diff_id hash and the tar parser; here it runs beside them.
//
// Protocol (messages, buffers transferred, never copied across):
//   in:  start {compression, digest?, where, noNativeZstd} · data {chunk} · end · recycle {buf}
//   out: consumed (one data message fully read: the sender may send another)
//        out {buf, length} · done · error {kind: "digest" | "inflate", message, digest?}
// Output buffers come back through `recycle` once the reader is done with them, so a layer
// reuses a handful of buffers instead of faulting in a fresh page for every byte it yields.
import { DigestWriter } from "./digest.ts";
import { inflateChunks, type InflateCompression } from "./inflate.ts";

declare const self: Worker;

export type ToInflateWorker =
  | { type: "start"; compression: InflateCompression; digest?: string; where: string; noNativeZstd?: boolean }
  | { type: "data"; chunk: Uint8Array }
  | { type: "end" }
  | { type: "recycle"; buf: ArrayBuffer };

export type FromInflateWorker =
  | { type: "consumed" }
  | { type: "out"; buf: ArrayBuffer; length: number }
  | { type: "done" }
  | { type: "error"; kind: "digest" | "inflate"; message: string; digest?: string };

const OUT_SIZE = 1 << 20;
/** Output buffers one worker may have out at once: the reader's lag (3) plus room to run ahead. */
const MAX_BUFFERS = 8;

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
 * The compressed chunks as they arrive, hashed on the way, each acknowledged once read.
 * `idle` runs whenever no chunk is waiting: a slow download still shows its bytes at once.
 */
async function* received(digest: DigestWriter | null, idle: () => void): AsyncGenerator<Uint8Array> {
  for (;;) {
    if (input.empty) idle();
    const chunk = await input.next();
    if (chunk === null) return;
    digest?.update(chunk);
    yield chunk;
    post({ type: "consumed" });
  }
}

async function freeBuffer(): Promise<ArrayBuffer> {
  if (allocated < MAX_BUFFERS) {
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
      this.buf ??= new Uint8Array(await freeBuffer());
      const n = Math.min(piece.length - at, OUT_SIZE - this.fill);
      this.buf.set(piece.subarray(at, at + n), this.fill);
      this.fill += n;
      at += n;
      if (this.fill === OUT_SIZE) this.flush();
    }
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
  const digest = start.digest ? new DigestWriter() : null;
  const out = new Output();
  try {
    // Pieces are copied out at once: libzstd's pieces live in a ring that the next call reuses.
    for await (const piece of inflateChunks(received(digest, () => out.flush()), start.compression, start.where, start.noNativeZstd)) await out.write(piece);
  } catch (err) {
    post({ type: "error", kind: "inflate", message: err instanceof Error ? err.message : String(err) });
    return;
  }
  out.flush();
  if (digest && start.digest) {
    const got = digest.digest();
    if (got !== start.digest) {
      post({ type: "error", kind: "digest", digest: start.digest, message: `${start.where}: blob digest mismatch: expected ${start.digest}, the ${digest.bytes} bytes read hash to ${got}` });
      return;
    }
  }
  post({ type: "done" });
}
