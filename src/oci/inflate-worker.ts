// The worker side of layer-stream.ts's inflateInWorker: compressed chunks in, decompressed
// bytes out. Decompression is the longest stage of a warm pull (zstd ~0.19 s, gzip ~0.6 s for
// the Debian layer) and used to run on the same thread as the hashes and the tar parser; here
// it runs beside them.
//
// The bytes never move between threads: both sides share two rings (views of shared memory
// the reader allocates, in huge pages where Linux allows: io/shared-memory.ts) and the
// messages only say where the bytes are. Transferring a 1 MiB ArrayBuffer instead cost its
// sender 50-100 us a message in Bun (600 of them for the Debian layer, ~30 ms on this thread,
// the one that sets a zstd pull's pace), and every buffer that arrived counted as fresh memory
// towards the receiver's next collection.
//
// - Input: slots of `inSlot` bytes, filled by the reader (a file read straight into them, or
//   the chunks of a download copied in) and given back once decoded.
// - Output: one ring of bytes, written in order. Pieces of about `piece` bytes go out as
//   (start, length), `start` counting every byte ever written (ring index: start % size); a
//   piece never runs past the ring's end. The reader gives back everything before a position
//   once it is done with it; the decoder never writes over what was not given back.
//
// Protocol:
//   in:  start {compression, where, noNativeZstd, skipFrameChecksum, input, inSlot, output, piece}
//        data {slot, length} (compressed bytes in input slot `slot`) · end
//        recycle {upTo} (the reader is done with every output byte before position `upTo`)
//   out: consumed {slot} (the decoder is done with input slot `slot`: the sender may refill it)
//        out {start, length} (decompressed bytes) · done · error {message}
import { inflateChunks, type InflateCompression } from "./inflate.ts";
import { nativeZstdAvailable, ZSTD_FRAME_HEADER_MAX, ZstdBlockDecoder, ZstdError, ZstdStream, type ZstdFrameInfo } from "./zstd.ts";

declare const self: Worker;

export type ToInflateWorker =
  | {
      type: "start";
      compression: InflateCompression;
      where: string;
      noNativeZstd?: boolean;
      /** Decode gzip through node:zlib's stream even where its handle can inflate in place (tests of that path). */
      noNativeGzip?: boolean;
      skipFrameChecksum?: boolean;
      /** The slots the reader fills with compressed bytes, `inSlot` bytes each (a view of shared memory). */
      input: Uint8Array;
      inSlot: number;
      /** The ring this fills with decompressed bytes (a view of shared memory, all of it free at the start). */
      output: Uint8Array;
      /** About how many bytes go out at once. */
      piece: number;
    }
  | { type: "data"; slot: number; length: number }
  | { type: "end" }
  | { type: "recycle"; upTo: number };

export type FromInflateWorker =
  | { type: "consumed"; slot: number }
  | { type: "out"; start: number; length: number }
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
  /** The newest item waiting, dropping the rest; undefined when none is. */
  takeLast(): T | undefined {
    const v = this.items[this.items.length - 1];
    this.items.length = 0;
    return v;
  }
  next(): Promise<T> {
    const v = this.items.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise((resolve) => (this.waiter = resolve));
  }
}

/** Input slots with bytes in them, null at the end. */
const arrivals = new Inbox<{ slot: number; length: number } | null>();
/** Output positions the reader gave back up to, in order. */
const givenBack = new Inbox<number>();

function post(msg: FromInflateWorker): void {
  self.postMessage(msg);
}

self.onmessage = (e: MessageEvent<ToInflateWorker>) => {
  const msg = e.data;
  if (msg.type === "start") void run(msg);
  else if (msg.type === "data") arrivals.push(msg);
  else if (msg.type === "end") arrivals.push(null);
  else givenBack.push(msg.upTo);
};

/**
 * The compressed bytes as they arrive, read in order across the input slots. A slot goes back
 * to the reader once every byte of it was consumed and no view of it is still handed out (a
 * view from current() or take() lasts until the next call). Bytes that must be seen together
 * across slots are copied out, so that a slot never waits for later ones: the reader has only
 * a few. `idle` runs whenever the next slot has not arrived yet: a slow download still shows
 * its bytes at once.
 */
class InputQueue {
  /** Loaded slots in order; slot -1 is bytes copied out by peek(), read before the rest. */
  private readonly segs: { slot: number; bytes: Uint8Array; pos: number }[] = [];
  private ended = false;
  private staging = new Uint8Array(128 << 10);

  constructor(
    private readonly ring: Uint8Array,
    private readonly slotBytes: number,
    private readonly idle: () => void,
  ) {}

  /** The unconsumed bytes of the first slot that has any; null at the end. */
  async current(): Promise<Uint8Array | null> {
    const s = await this.first();
    return s && s.bytes.subarray(s.pos);
  }

  /** Consumes `n` bytes of what current() returned. */
  consume(n: number): void {
    this.segs[0]!.pos += n;
  }

  /** Up to `n` bytes from the read position, left unconsumed; null when none is left. */
  async peek(n: number): Promise<Uint8Array | null> {
    const s = await this.first();
    if (!s) return null;
    if (s.bytes.length - s.pos >= n) return s.bytes.subarray(s.pos, s.pos + n);
    const copy = await this.copyOut(n, new Uint8Array(n));
    this.segs.unshift({ slot: -1, bytes: copy, pos: 0 });
    return copy;
  }

  /** take(n) when the next `n` bytes lie in the first slot: a view of them, consumed; else null. */
  takeNow(n: number): Uint8Array | null {
    const s = this.segs[0];
    if (!s || s.bytes.length - s.pos < n) return null;
    s.pos += n;
    return s.bytes.subarray(s.pos - n, s.pos);
  }

  /** Exactly `n` bytes, consumed: a view of their slot when they lie in one, else a copy. */
  async take(n: number): Promise<Uint8Array> {
    const s = await this.first();
    if (s && s.bytes.length - s.pos >= n) {
      s.pos += n;
      return s.bytes.subarray(s.pos - n, s.pos);
    }
    if (this.staging.length < n) this.staging = new Uint8Array(n);
    const copy = await this.copyOut(n, this.staging);
    if (copy.length < n) throw new ZstdError("zstd: the compressed stream ends inside a frame (truncated)");
    return copy;
  }

  /** The next `n` bytes (fewer where the input ends) copied into `into`, consumed. */
  private async copyOut(n: number, into: Uint8Array): Promise<Uint8Array> {
    let got = 0;
    while (got < n) {
      const s = await this.first();
      if (!s) break;
      const k = Math.min(n - got, s.bytes.length - s.pos);
      into.set(s.bytes.subarray(s.pos, s.pos + k), got);
      s.pos += k;
      got += k;
    }
    return into.subarray(0, got);
  }

  /** The first segment with bytes left (spent ones go back), loading one if need be; null at the end. */
  private async first(): Promise<{ slot: number; bytes: Uint8Array; pos: number } | null> {
    for (;;) {
      const s = this.segs[0];
      if (s && s.pos < s.bytes.length) return s;
      if (s) {
        this.segs.shift();
        if (s.slot >= 0) post({ type: "consumed", slot: s.slot });
        continue;
      }
      if (this.ended) return null;
      if (arrivals.empty) this.idle();
      const next = await arrivals.next();
      if (next === null) this.ended = true;
      else this.segs.push({ slot: next.slot, bytes: this.ring.subarray(next.slot * this.slotBytes, next.slot * this.slotBytes + next.length), pos: 0 });
    }
  }
}

/** The decompressed bytes, written in order into the shared ring (see the top of this file). */
class OutputRing {
  readonly size: number;
  private readonly bytes: Uint8Array;
  /** Every byte ever written (or skipped at the ring's end), sent in a piece, given back. */
  private written = 0;
  private sent = 0;
  private released = 0;

  constructor(
    memory: Uint8Array,
    private readonly piece: number,
  ) {
    this.bytes = memory;
    this.size = memory.length;
  }

  /**
   * Free room of at least `min` contiguous bytes at the write position, waiting for the reader
   * to give some back if need be. Where the ring's end is nearer than `min`, writing goes on
   * from its start (the bytes in between are skipped).
   */
  async room(min: number): Promise<Uint8Array> {
    let at = this.written % this.size;
    if (at === 0 || this.size - at < min) {
      this.flush(); // a piece ends at the ring's end
      if (at !== 0) this.written += this.size - at;
      this.sent = this.written;
      at = 0;
    }
    this.released = givenBack.takeLast() ?? this.released;
    while (this.written + min - this.released > this.size) {
      this.flush();
      this.released = await givenBack.next();
    }
    return this.freeAt(at, min);
  }

  /** room(min) when it is there without skipping to the ring's start or waiting; else null. */
  roomNow(min: number): Uint8Array | null {
    const at = this.written % this.size;
    if (at === 0 || this.size - at < min || this.written + min - this.released > this.size) return null;
    return this.freeAt(at, min);
  }

  /** The free bytes from ring index `at` on: to the ring's end or the reader's, and past the current piece only as far as `min` needs. */
  private freeAt(at: number, min: number): Uint8Array {
    const free = this.released + this.size - this.written;
    return this.bytes.subarray(at, at + Math.min(this.size - at, free, Math.max(min, this.piece - (this.written - this.sent))));
  }

  /** `n` more bytes were written into room(); a piece goes out once it is big enough. */
  advance(n: number): void {
    this.written += n;
    if (this.written - this.sent >= this.piece) this.flush();
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length; ) {
      const room = await this.room(1);
      const n = Math.min(room.length, bytes.length - at);
      room.set(bytes.subarray(at, at + n));
      this.advance(n);
      at += n;
    }
  }

  /** Sends what was written since the last piece. */
  flush(): void {
    if (this.written === this.sent) return;
    post({ type: "out", start: this.sent, length: this.written - this.sent });
    this.sent = this.written;
  }
}

async function run(start: Extract<ToInflateWorker, { type: "start" }>): Promise<void> {
  const out = new OutputRing(start.output, start.piece);
  const input = new InputQueue(start.input, start.inSlot, () => out.flush());
  try {
    await decode(start, input, out);
  } catch (err) {
    post({ type: "error", message: failureMessage(err, start.where) });
    return;
  }
  out.flush();
  post({ type: "done" });
}

/** The stream through the best decoder at hand for its compression. */
async function decode(start: Extract<ToInflateWorker, { type: "start" }>, input: InputQueue, out: OutputRing): Promise<void> {
  if (start.compression === "zstd" && nativeZstdAvailable(start.noNativeZstd)) return zstdInto(input, out, start.skipFrameChecksum ?? false);
  if (start.compression === "gzip" && !start.noNativeGzip && (await gzipInPlace(input, out))) return;
  // node:zlib is done with a chunk when it asks for the next (inflate.ts): views of the slots.
  for await (const piece of inflateChunks(views(input), start.compression, start.where, start.noNativeZstd)) await out.write(piece);
}

/** A decoder's failure as one line naming the layer (node:zlib's stream errors already do). */
function failureMessage(err: unknown, where: string): string {
  if (err instanceof ZstdError) return `${where}: zstd decompression failed: ${err.message.replace(/^zstd: /, "")}`;
  // GzipError, by name: gzip.ts is loaded only for gzip layers.
  if (err instanceof Error && err.name === "GzipError") return `${where}: gzip decompression failed: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** The input slots' bytes as chunks, each valid until the next is asked for. */
async function* views(input: InputQueue): AsyncGenerator<Uint8Array> {
  for (let chunk = await input.current(); chunk !== null; chunk = await input.current()) {
    input.consume(chunk.length);
    yield chunk;
  }
}

/**
 * zstd frames decode block by block straight into the output ring (ZstdBlockDecoder), which
 * keeps their window: ~10 ms less than the streaming decoder for the Debian layer, on the
 * thread that sets a zstd pull's pace. From the first frame whose window the ring cannot keep
 * behind its blocks (`zstd --ultra -22`, `--long`), or where libzstd lacks the buffer-less
 * API, the streaming decoder, which keeps a window of its own, takes the rest of the stream.
 */
async function zstdInto(input: InputQueue, out: OutputRing, skipFrameChecksum: boolean): Promise<void> {
  const blocks = ZstdBlockDecoder.create({ skipFrameChecksum });
  try {
    while (blocks) {
      const head = await input.peek(ZSTD_FRAME_HEADER_MAX);
      if (head === null) return; // the input ended between frames
      const info = blocks.frameInfo(head);
      // (no info: the input ends inside the header, which the streaming decoder reports)
      if (!info || info.windowSize + 2 * info.blockSizeMax > out.size) break;
      await blockFrame(blocks, info, input, out);
    }
  } finally {
    blocks?.free();
  }
  await zstdStream(input, out, skipFrameChecksum);
}

/** One frame through the buffer-less decoder. */
async function blockFrame(dec: ZstdBlockDecoder, info: ZstdFrameInfo, input: InputQueue, out: OutputRing): Promise<void> {
  dec.begin();
  const room = Math.max(1, info.blockSizeMax);
  // Awaited only when a block waits for input or room: ~3,500 calls for the Debian layer.
  for (let n = dec.nextInputSize; n > 0; n = dec.nextInputSize) {
    const src = input.takeNow(n) ?? (await input.take(n));
    out.advance(dec.decode(src, out.roomNow(room) ?? (await out.room(room))));
  }
}

/**
 * A gzip stream inflated straight into the output ring by node:zlib's handle (gzip.ts).
 * Returns false, having read nothing, where that handle cannot be driven so.
 */
async function gzipInPlace(input: InputQueue, out: OutputRing): Promise<boolean> {
  // Loaded here, not at the top: the layer worker starts ~6 ms sooner for zstd, which needs none of it.
  const { GunzipInPlace } = await import("./gzip.ts");
  const gz = GunzipInPlace.create();
  if (!gz) return false;
  try {
    for (let chunk = await input.current(); chunk !== null; chunk = await input.current()) {
      for (let inPos = 0; ; ) {
        const room = out.roomNow(1) ?? (await out.room(1));
        gz.step(chunk, inPos, chunk.length, room, 0);
        inPos = gz.inPos;
        out.advance(gz.outPos);
        // Room left over with the chunk taken: zlib owes nothing more until the next one.
        if (inPos >= chunk.length && gz.outPos < room.length) break;
      }
      input.consume(chunk.length);
    }
    for (let more = true; more; ) {
      const room = await out.room(1);
      more = gz.finish(room, 0);
      out.advance(gz.outPos);
    }
  } finally {
    gz.close();
  }
  return true;
}

/** The rest of the stream through libzstd's streaming decoder. */
async function zstdStream(input: InputQueue, out: OutputRing, skipFrameChecksum: boolean): Promise<void> {
  const zs = new ZstdStream({ skipFrameChecksum });
  try {
    for (let chunk = await input.current(); chunk !== null; chunk = await input.current()) {
      for (let inPos = 0; ; ) {
        const room = await out.room(1);
        zs.step(chunk, inPos, chunk.length, room, 0);
        inPos = zs.inPos;
        out.advance(zs.outPos);
        if (inPos >= chunk.length && zs.outPos < room.length) break;
      }
      input.consume(chunk.length);
    }
    for (;;) {
      const room = await out.room(1);
      if (!zs.drain(room, 0)) break;
      out.advance(zs.outPos);
    }
    zs.checkEnded();
  } finally {
    zs.free();
  }
}
