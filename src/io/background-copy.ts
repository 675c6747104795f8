// Runs in-kernel copies (copy_file_range) on a worker thread while the caller goes on with
// other work. Resolves with how many jobs were copied; the caller copies the rest itself.
import type { CopyReply, CopyRequest } from "./copy-worker.ts";
import { kernelCopyAvailable } from "./copy-range.ts";

export interface BackgroundCopy {
  /** Jobs copied, in order. Rejects if the source ended early (a truncated input). */
  finished: Promise<number>;
}

export function copyInBackground(srcFd: number, dstFd: number, jobs: Float64Array): BackgroundCopy {
  if (jobs.length === 0 || !kernelCopyAvailable()) return { finished: Promise.resolve(0) };
  const worker = new Worker(new URL("./copy-worker.ts", import.meta.url).href);
  const finished = new Promise<number>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<CopyReply>) => {
      worker.terminate();
      if (event.data.error) reject(new Error(event.data.error));
      else resolve(event.data.done);
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(`copy worker failed: ${event.message}`));
    };
  });
  worker.postMessage({ srcFd, dstFd, jobs } satisfies CopyRequest);
  return { finished };
}
