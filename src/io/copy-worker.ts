// Worker thread: copies file data from a source file into the image while the main thread
// builds metadata, through the kernel (copy_file_range: measured faster than reading and
// coalescing writes in JS, even with one call per small file). Where the kernel refuses, the
// rest goes through a read window and a coalescing sink. File descriptors are per process,
// so the ones the main thread opened work here.
import { BlockSink, fdReader, SourceWindow } from "./block-io.ts";
import { copyRange } from "./copy-range.ts";

declare const self: Worker;

export interface CopyRequest {
  srcFd: number;
  dstFd: number;
  blockSize: number;
  /** Bytes of the source that may be read (its end). */
  limit: number;
  /** Flat [srcOffset, dstOffset, length, ...], ascending on both sides; dstOffset block-aligned. */
  jobs: Float64Array;
}

export interface CopyReply {
  error?: string;
}

const CHUNK = 1 << 20;

function copyAll(req: CopyRequest): void {
  const { srcFd, dstFd, blockSize, jobs } = req;
  const window = new SourceWindow(fdReader(srcFd, "file data source"), req.limit);
  const sink = new BlockSink(dstFd, blockSize);
  let kernel = true;
  for (let i = 0; i < jobs.length; i += 3) {
    const src = jobs[i]!;
    const dst = jobs[i + 1]!;
    const length = jobs[i + 2]!;
    if (kernel && copyRange(srcFd, src, dstFd, dst, length)) continue;
    kernel = false;
    for (let done = 0; done < length; done += CHUNK) {
      const n = Math.min(CHUNK, length - done);
      sink.put((dst + done) / blockSize, window.view(src + done, n));
    }
  }
  sink.flush();
}

self.onmessage = (event: MessageEvent<CopyRequest>) => {
  try {
    copyAll(event.data);
    self.postMessage({} satisfies CopyReply);
  } catch (err) {
    self.postMessage({ error: (err as Error).message } satisfies CopyReply);
  }
};
