// Worker thread behind StagedBlockWriter (staged-writer.ts): writes each filled slot of shared
// memory to the image at its block, then marks the slot free for the main thread to refill.
// Writes go through a second, O_DIRECT descriptor when the writer opened one: straight from
// this memory to the disk, with no page cache to fill and write back later, which measured
// about a third of the CPU of buffered copies. Where the kernel refuses a direct write, this
// and every later write go through the ordinary descriptor, with writeback started every
// WRITEBACK_BYTES so the final fsync finds little left.
//
// Every FLUSH_BYTES written, the worker also makes them durable (fdatasync). A direct write
// leaves the data in the disk's volatile cache and the new extents in the journal; the image's
// one fsync before publishing then paid for all of it at once, after the last byte: 85-130 ms
// for a Debian image on a virtio disk whose host flushes its own cache (measured: 200 MiB
// written directly, then one fsync, 80-117 ms; flushed every 32-48 MiB on the way, the same
// total, but the final fsync 0-7 ms). Here the flushes overlap decompression instead; the
// slots absorb the pauses.
import { fdatasyncSync } from "node:fs";
import { writeAll } from "./block-io.ts";
import { startWriteback } from "./copy-range.ts";
import { SLOT_FREE, type StagedWriteMessage, type StagedWriteReply } from "./staged-write-protocol.ts";

declare const self: Worker;

const WRITEBACK_BYTES = 8 << 20;
const FLUSH_BYTES = 32 << 20;

let slots: Uint8Array[] = [];
let control: Int32Array | null = null;
let bufferedFd = -1;
let directFd: number | null = null;
let blockSize = 4096;
/** A scratch file: written through the page cache and left there (no writeback, no flushes). */
let transient = false;
let error: string | null = null;
let direct = 0;
let buffered = 0;
let writebackFrom = -1;
let writebackTo = 0;
let unflushed = 0;
let flushes = 0;

function write(slot: number, block: number, blocks: number): void {
  const data = slots[slot]!.subarray(0, blocks * blockSize);
  const position = block * blockSize;
  unflushed += data.length;
  if (directFd !== null) {
    try {
      writeAll(directFd, data, position);
      direct++;
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EINVAL" && code !== "EOPNOTSUPP") throw err;
      directFd = null; // the filesystem takes no direct writes after all: buffered from now on
    }
  }
  writeAll(bufferedFd, data, position);
  buffered++;
  if (transient) return;
  if (writebackFrom < 0 || position < writebackFrom) writebackFrom = position;
  writebackTo = Math.max(writebackTo, position + data.length);
  if (writebackTo - writebackFrom >= WRITEBACK_BYTES) {
    startWriteback(bufferedFd, writebackFrom, writebackTo - writebackFrom);
    writebackFrom = writebackTo;
  }
}

self.onmessage = (event: MessageEvent<StagedWriteMessage>) => {
  const m = event.data;
  if (m.kind === "start") {
    slots = Array.from({ length: m.slotCount }, (_, i) => m.memory.subarray(i * m.slotBytes, (i + 1) * m.slotBytes));
    control = new Int32Array(m.control);
    bufferedFd = m.bufferedFd;
    directFd = m.directFd;
    blockSize = m.blockSize;
    transient = m.transient;
    return;
  }
  if (m.kind === "write") {
    if (error === null) {
      try {
        write(m.slot, m.block, m.blocks);
      } catch (err) {
        error = `writing ${m.blocks} blocks at block ${m.block}: ${(err as Error).message}`;
      }
    }
    // Free the slot even after an error, so the main thread never waits forever; it learns of
    // the error at the end.
    Atomics.store(control!, m.slot, SLOT_FREE);
    Atomics.notify(control!, m.slot);
    // After freeing the slot: the main thread refills it while the disk flushes.
    if (error === null && !transient && unflushed >= FLUSH_BYTES) {
      unflushed = 0;
      try {
        fdatasyncSync(bufferedFd);
        flushes++;
      } catch (err) {
        error = `flushing the image to the disk: ${(err as Error).message}`;
      }
    }
    return;
  }
  self.postMessage({ error, direct, buffered, flushes } satisfies StagedWriteReply);
};
