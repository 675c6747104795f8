// Block-aligned writes into the image from the main thread, done by a worker: the caller copies
// bytes into slots of shared memory (put), each full slot is handed to the worker
// (staged-write-worker.ts), which writes it, O_DIRECT where the filesystem allows, and frees it.
// When every slot is in flight the caller waits for one (Atomics.wait), so memory stays at
// SLOT_COUNT x SLOT_BYTES however much data passes.
import { ptr } from "bun:ffi";
import { closeSync, constants, openSync } from "node:fs";
import type { BlockTarget } from "./block-io.ts";
import type { IoOptions } from "./options.ts";
import { hugePageShared } from "./shared-memory.ts";
import { SLOT_FILLED, SLOT_FREE, type StagedWriteMessage, type StagedWriteReply } from "./staged-write-protocol.ts";

const SLOT_BYTES = 4 << 20;
const SLOT_COUNT = 8;
/** A slot write taking this long means the worker is gone (or the disk is): fail instead of hanging. */
const WORKER_TIMEOUT_MS = 120_000;

export interface StagedWriteStats {
  /** Slot writes that went to the disk directly (O_DIRECT) / through the page cache. */
  direct: number;
  buffered: number;
  /** Times the written data was made durable on the way (see staged-write-worker.ts). */
  flushes: number;
}

/** memcpy by ranges, without a subarray view per call (works on any Uint8Array). */
const copyBytes = Buffer.prototype.copy;

/** A second descriptor of the same file with O_DIRECT, or null where that cannot be had. */
function openDirect(fd: number, probe: Uint8Array): number | null {
  if (process.platform !== "linux") return null;
  try {
    // Direct I/O needs the memory aligned to the device's block size; shared memory is page-aligned, but check.
    if (Number(ptr(probe)) % 4096 !== 0) return null;
    return openSync(`/proc/self/fd/${fd}`, constants.O_RDWR | constants.O_DIRECT);
  } catch {
    return null;
  }
}

export class StagedBlockWriter {
  private slots: Uint8Array[] = [];
  private control: Int32Array | null = null;
  private worker: Worker | null = null;
  private closed: Promise<void> | null = null;
  private reply: Promise<StagedWriteReply> | null = null;
  private directFd: number | null = null;
  private slot = 0;
  /** Image block where the current slot's bytes go, or -1 when it is empty. */
  private spanBlock = -1;
  /** Bytes in the current slot; a multiple of the block size between puts. */
  private fill = 0;
  private finished: Promise<StagedWriteStats> | null = null;
  /** Milliseconds the caller spent waiting for a free slot (the disk being slower than the input). */
  waitedMs = 0;

  /**
   * `transient`: the file is scratch, read back soon and then dropped (a layer's spool): its
   * writes go through the page cache and are neither pushed to the disk (writeback) nor made
   * durable (fdatasync), so that reading it back finds it in memory and, deleted soon enough,
   * it never costs a disk write. Otherwise writes are O_DIRECT where allowed and flushed on the
   * way, as an image's must be.
   */
  constructor(
    private readonly fd: number,
    private readonly blockSize: number,
    private readonly io: IoOptions = {},
    private readonly transient = false,
  ) {}

  private start(): void {
    // One block of shared memory in huge pages: direct writes then pin a few 2 MiB pages
    // instead of a thousand 4 KiB ones per slot (the writing thread measured ~25% faster), and
    // filling the slots the first time faults 16 pages, not 8,192 (see shared-memory.ts).
    const area = hugePageShared(SLOT_COUNT * SLOT_BYTES);
    this.slots = Array.from({ length: SLOT_COUNT }, (_, i) => area.subarray(i * SLOT_BYTES, (i + 1) * SLOT_BYTES));
    const control = new SharedArrayBuffer(4 * SLOT_COUNT);
    this.control = new Int32Array(control);
    this.directFd = this.io.directIo === false || this.transient ? null : openDirect(this.fd, this.slots[0]!);
    const worker = new Worker(new URL("./staged-write-worker.ts", import.meta.url).href);
    this.closed = new Promise<void>((resolve) => worker.addEventListener("close", () => resolve(), { once: true }));
    this.reply = new Promise<StagedWriteReply>((resolve) => {
      worker.onmessage = (event: MessageEvent<StagedWriteReply>) => resolve(event.data);
      worker.onerror = (event) => resolve({ error: `the write worker failed: ${event.message}`, direct: 0, buffered: 0, flushes: 0 });
    });
    worker.postMessage({ kind: "start", memory: area, slotBytes: SLOT_BYTES, slotCount: SLOT_COUNT, control, bufferedFd: this.fd, directFd: this.directFd, blockSize: this.blockSize, transient: this.transient } satisfies StagedWriteMessage);
    this.worker = worker;
  }

  /** Writes `data[from, to)` at image block `block`, zero-padding its last block. */
  put(block: number, data: Uint8Array, from: number, to: number): void {
    if (this.finished) throw new Error("StagedBlockWriter.put after finish");
    if (!this.worker) this.start();
    const bs = this.blockSize;
    while (from < to) {
      if (this.spanBlock >= 0 && (this.fill === SLOT_BYTES || block !== this.spanBlock + this.fill / bs)) this.submit();
      if (this.spanBlock < 0) this.spanBlock = block;
      const take = Math.min(to - from, SLOT_BYTES - this.fill);
      const slot = this.slots[this.slot]!;
      copyBytes.call(data, slot, this.fill, from, from + take);
      const padded = Math.ceil(take / bs) * bs;
      if (padded > take) slot.fill(0, this.fill + take, this.fill + padded);
      this.fill += padded;
      from += take;
      block += padded / bs;
    }
  }

  /** Whether the worker and its slots exist (the first put starts them). */
  get started(): boolean {
    return this.worker !== null;
  }

  /** This writer as a BlockTarget (puts copy into the slots; flush hands the current slot over). */
  asBlockTarget(): BlockTarget {
    return {
      put: (block, data) => this.put(block, data, 0, data.length),
      flush: () => this.flush(),
    };
  }

  /** Hands what is in the current slot to the worker now, rather than when it is full. */
  flush(): void {
    if (this.worker && !this.finished) this.submit();
  }

  /** Hands the current slot to the worker and waits, if need be, until the next one is free. */
  private submit(): void {
    if (this.fill === 0) return;
    const control = this.control!;
    Atomics.store(control, this.slot, SLOT_FILLED);
    this.worker!.postMessage({ kind: "write", slot: this.slot, block: this.spanBlock, blocks: this.fill / this.blockSize } satisfies StagedWriteMessage);
    this.slot = (this.slot + 1) % SLOT_COUNT;
    this.fill = 0;
    this.spanBlock = -1;
    if (Atomics.load(control, this.slot) === SLOT_FREE) return;
    const t0 = performance.now();
    while (Atomics.load(control, this.slot) !== SLOT_FREE) {
      Atomics.wait(control, this.slot, SLOT_FILLED, 1000);
      if (performance.now() - t0 > WORKER_TIMEOUT_MS) throw new Error(`the image write worker has not freed a ${SLOT_BYTES >> 20} MiB buffer in ${WORKER_TIMEOUT_MS / 1000} s`);
    }
    this.waitedMs += performance.now() - t0;
  }

  /** Writes what is left and waits for every write; rejects with the first write error. */
  finish(): Promise<StagedWriteStats> {
    this.finished ??= this.settle();
    return this.finished;
  }

  private async settle(): Promise<StagedWriteStats> {
    if (!this.worker) return { direct: 0, buffered: 0, flushes: 0 };
    this.submit();
    this.worker.postMessage({ kind: "end" } satisfies StagedWriteMessage);
    const reply = await this.reply!;
    // The worker has replied after its last write and is idle: end it without waiting for its
    // thread to wind down (~4 ms), which then overlaps the caller's remaining work.
    this.worker.terminate();
    this.closeDirect();
    if (reply.error !== null) throw new Error(reply.error);
    return { direct: reply.direct, buffered: reply.buffered, flushes: reply.flushes };
  }

  /** Stops the worker, waiting until it can no longer write, and closes the direct descriptor. Idempotent. */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (worker) {
      worker.terminate();
      await this.closed;
    }
    this.closeDirect();
  }

  private closeDirect(): void {
    if (this.directFd !== null) {
      closeSync(this.directFd);
      this.directFd = null;
    }
  }
}
