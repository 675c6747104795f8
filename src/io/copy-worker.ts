// Worker thread: copies file data from a source file into the image while the main thread
// goes on (reading the tar, building metadata), through the kernel (copy_file_range: measured
// faster than reading and coalescing writes in JS, even with one call per small file). Where
// the kernel refuses, the rest is read and written through a coalescing sink. Jobs arrive in
// batches as the main thread decides them; every WRITEBACK_BYTES copied, writeback of what was
// copied is started, so the disk works during the rest of the run rather than at the fsync.
// File descriptors are per process, so the ones the main thread opened work here.
import { BlockSink, fdReader } from "./block-io.ts";
import { copyRange, startWriteback } from "./copy-range.ts";

declare const self: Worker;

export type CopyMessage =
  /** `kernel` false: never copy_file_range (IoOptions.copyFileRange). */
  | { kind: "start"; srcFd: number; dstFd: number; blockSize: number; kernel: boolean }
  /** Flat [srcOffset, dstOffset, length, ...]; dstOffset block-aligned. */
  | { kind: "jobs"; jobs: Float64Array }
  | { kind: "end" };

export interface CopyReply {
  error?: string;
}

const WRITEBACK_BYTES = 8 << 20;

let state: {
  srcFd: number;
  dstFd: number;
  blockSize: number;
  kernel: boolean;
  sink: BlockSink;
  buffer: Uint8Array;
  /** Destination bytes [writebackFrom, writebackTo) copied but not yet handed to writeback. */
  writebackFrom: number;
  writebackTo: number;
} | null = null;
let failure: string | null = null;

function copyJobs(jobs: Float64Array): void {
  const s = state!;
  const source = fdReader(s.srcFd, "file data source");
  for (let i = 0; i < jobs.length; i += 3) {
    const src = jobs[i]!;
    const dst = jobs[i + 1]!;
    const length = jobs[i + 2]!;
    if (!(s.kernel && copyRange(s.srcFd, src, s.dstFd, dst, length))) {
      s.kernel = false;
      for (let done = 0; done < length; done += s.buffer.length) {
        const n = Math.min(s.buffer.length, length - done);
        const chunk = s.buffer.subarray(0, n);
        source.readInto(chunk, src + done);
        s.sink.put((dst + done) / s.blockSize, chunk);
      }
    }
    if (s.writebackTo === 0 || dst < s.writebackFrom) s.writebackFrom = dst;
    s.writebackTo = Math.max(s.writebackTo, dst + length);
    if (s.writebackTo - s.writebackFrom >= WRITEBACK_BYTES) {
      s.sink.flush();
      startWriteback(s.dstFd, s.writebackFrom, s.writebackTo - s.writebackFrom);
      s.writebackFrom = s.writebackTo;
    }
  }
}

self.onmessage = (event: MessageEvent<CopyMessage>) => {
  const m = event.data;
  if (m.kind === "start") {
    state = {
      srcFd: m.srcFd,
      dstFd: m.dstFd,
      blockSize: m.blockSize,
      kernel: m.kernel,
      sink: new BlockSink(m.dstFd, m.blockSize),
      buffer: new Uint8Array(1 << 20),
      writebackFrom: 0,
      writebackTo: 0,
    };
    return;
  }
  if (m.kind === "jobs") {
    if (failure !== null) return;
    try {
      copyJobs(m.jobs);
    } catch (err) {
      failure = (err as Error).message;
    }
    return;
  }
  try {
    state?.sink.flush();
  } catch (err) {
    failure ??= (err as Error).message;
  }
  self.postMessage((failure === null ? {} : { error: failure }) satisfies CopyReply);
};
