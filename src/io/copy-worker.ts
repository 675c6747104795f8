// Worker thread: performs a list of in-kernel copies so the main thread can build metadata
// meanwhile. File descriptors are per process, so the ones the main thread opened work here.
import { copyRange } from "./copy-range.ts";

declare const self: Worker;

export interface CopyRequest {
  srcFd: number;
  dstFd: number;
  /** Flat [srcOffset, dstOffset, length, ...]. */
  jobs: Float64Array;
}

export interface CopyReply {
  /** Number of jobs fully copied, in order; fewer than all when in-kernel copying stopped working. */
  done: number;
  error?: string;
}

self.onmessage = (event: MessageEvent<CopyRequest>) => {
  const { srcFd, dstFd, jobs } = event.data;
  let done = 0;
  try {
    for (let i = 0; i < jobs.length; i += 3) {
      if (!copyRange(srcFd, jobs[i]!, dstFd, jobs[i + 1]!, jobs[i + 2]!)) break;
      done++;
    }
    self.postMessage({ done } satisfies CopyReply);
  } catch (err) {
    self.postMessage({ done, error: (err as Error).message } satisfies CopyReply);
  }
};
