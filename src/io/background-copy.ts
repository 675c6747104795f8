// Copies file data from one source file into the image on a worker thread (see copy-worker.ts)
// while the caller goes on with other work.
import type { CopyReply, CopyRequest } from "./copy-worker.ts";

/** Settles when every job is copied; rejects with the worker's error (e.g. a truncated source). */
export function copyInBackground(request: CopyRequest): Promise<void> {
  if (request.jobs.length === 0) return Promise.resolve();
  const worker = new Worker(new URL("./copy-worker.ts", import.meta.url).href);
  const finished = new Promise<void>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<CopyReply>) => {
      worker.terminate();
      if (event.data.error) reject(new Error(event.data.error));
      else resolve();
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(`copy worker failed: ${event.message}`));
    };
  });
  worker.postMessage(request);
  return finished;
}
