// The worker side of layer-stream.ts's inflateInWorker: compressed chunks in, decompressed
// bytes out in 1 MiB slots. Decompression is the longest stage of a warm pull (zstd 0.21 s,
// gzip ~0.6 s for the Debian layer) and used to run on the same thread as the diff_id hash and
// the tar parser; here it runs beside them.
//
// The bytes never move: both sides share two rings of slots (SharedArrayBuffers the reader
// allocates), and the messages only name slots. Transferring a 1 MiB ArrayBuffer instead cost
// its sender 50-100 us a message in Bun (600 of them for the Debian layer, ~30 ms on this
// thread, the one that sets a zstd pull's pace), and every buffer that arrived counted as
// fresh memory towards the receiver's next collection.
//
// Protocol:
//   in:  start {compression, where, noNativeZstd, skipFrameChecksum, input, inSlot, output, outSlot}
//        data {slot, length} (compressed bytes in input slot `slot`) · end
//        recycle {slot} (the reader is done with output slot `slot`)
//   out: consumed {slot} (the decoder is done with input slot `slot`: the sender may refill it)
//        out {slot, length} (decompressed bytes in output slot `slot`) · done · error {message}
import { inflateChunks, type InflateCompression } from "./inflate.ts";
import { nativeZstdAvailable, ZstdError, ZstdStream } from "./zstd.ts";

declare const self: Worker;

export type ToInflateWorker =
  | {
      type: "start";
      compression: InflateCompression;
      where: string;
      noNativeZstd?: boolean;
      skipFrameChecksum?: boolean;
      /** The ring the reader fills with compressed bytes, `inSlot` bytes a slot. */
      input: SharedArrayBuffer;
      inSlot: number;
      /** The ring this fills with decompressed bytes, `outSlot` bytes a slot (all of them free at the start). */
      output: SharedArrayBuffer;
      outSlot: number;
    }
  | { type: "data"; slot: number; length: number }
  | { type: "end" }
  | { type: "recycle"; slot: number };

export type FromInflateWorker =
  | { type: "consumed"; slot: number }
  | { type: "out"; slot: number; length: number }
  | { type: "done" }
  | { type: "error"; message: string };

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

/** Input slots with bytes in them (a slot and its length), null at the end. */
const input = new Inbox<{ slot: number; length: number } | null>();
/** Output slots free to fill. */
const free = new Inbox<number>();

function post(msg: FromInflateWorker): void {
  self.postMessage(msg);
}

self.onmessage = (e: MessageEvent<ToInflateWorker>) => {
  const msg = e.data;
  if (msg.type === "start") void run(msg);
  else if (msg.type === "data") input.push(msg);
  else if (msg.type === "end") input.push(null);
  else free.push(msg.slot);
};

/**
 * The compressed chunks as they arrive (views of their input slots). `idle` runs whenever no
 * chunk is waiting: a slow download still shows its bytes at once. A chunk's slot goes back
 * when the decoder asks for the next one: a decoder that may keep a chunk past that point
 * (node:zlib) gets its own copy (`copy`) and the slot goes back at once.
 */
async function* received(ring: SharedArrayBuffer, slotBytes: number, idle: () => void, copy: boolean): AsyncGenerator<Uint8Array> {
  for (;;) {
    if (input.empty) idle();
    const next = await input.next();
    if (next === null) return;
    const view = new Uint8Array(ring, next.slot * slotBytes, next.length);
    if (copy) {
      const own = view.slice();
      post({ type: "consumed", slot: next.slot });
      yield own;
    } else {
      yield view;
      post({ type: "consumed", slot: next.slot });
    }
  }
}

/** Decompressed bytes gathered into whole output slots; a partial one goes out when input runs dry. */
class Output {
  private slot = -1;
  private view: Uint8Array | null = null;
  private fill = 0;

  constructor(
    private readonly ring: SharedArrayBuffer,
    private readonly slotBytes: number,
  ) {
    for (let i = 0; i < ring.byteLength / slotBytes; i++) free.push(i);
  }

  async write(piece: Uint8Array): Promise<void> {
    for (let at = 0; at < piece.length; ) {
      const buf = await this.space();
      const n = Math.min(piece.length - at, buf.length - this.fill);
      buf.set(piece.subarray(at, at + n), this.fill);
      this.advance(n);
      at += n;
    }
  }
  /** The slot being filled (room from `filled` on), for a decoder that writes in place. */
  async space(): Promise<Uint8Array> {
    if (!this.view) {
      this.slot = await free.next();
      this.view = new Uint8Array(this.ring, this.slot * this.slotBytes, this.slotBytes);
    }
    return this.view;
  }
  get filled(): number {
    return this.fill;
  }
  /** `n` more bytes were written into space(); a full slot goes out. */
  advance(n: number): void {
    this.fill += n;
    if (this.fill === this.slotBytes) this.flush();
  }
  flush(): void {
    if (!this.view || this.fill === 0) return;
    post({ type: "out", slot: this.slot, length: this.fill });
    this.view = null;
    this.fill = 0;
  }
}

async function run(start: Extract<ToInflateWorker, { type: "start" }>): Promise<void> {
  const out = new Output(start.output, start.outSlot);
  // libzstd reads each chunk whole before it asks for the next; node:zlib may still hold one
  // after its write() returns.
  const native = start.compression === "zstd" && nativeZstdAvailable(start.noNativeZstd);
  const chunks = received(start.input, start.inSlot, () => out.flush(), !native);
  try {
    if (native) await zstdInto(chunks, out, start.where, start.skipFrameChecksum ?? false);
    // node:zlib's pieces are its own fresh buffers: gathered into the output slots.
    else for await (const piece of inflateChunks(chunks, start.compression, start.where, start.noNativeZstd)) await out.write(piece);
  } catch (err) {
    post({ type: "error", message: err instanceof Error ? err.message : String(err) });
    return;
  }
  out.flush();
  post({ type: "done" });
}

/**
 * libzstd decodes straight into the output slots: copying its output from a ring of its own
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
