// Copies file data from one source file into the image on a worker thread (copy-worker.ts),
// with jobs handed over in batches while the caller goes on deciding more of them.
import type { CopyMessage, CopyReply } from "./copy-worker.ts";
import type { IoOptions } from "./options.ts";

const BATCH_JOBS = 512;

export class CopyStream {
  private worker: Worker | null = null;
  private closed: Promise<void> | null = null;
  private reply: Promise<CopyReply> | null = null;
  private batch = new Float64Array(BATCH_JOBS * 3);
  private fill = 0;
  private finished: Promise<void> | null = null;

  constructor(
    private readonly srcFd: number,
    private readonly dstFd: number,
    private readonly blockSize: number,
    private readonly io: IoOptions = {},
  ) {}

  /** Starts the worker now, so its start-up overlaps the caller's work before the first job. */
  warmUp(): void {
    if (this.worker) return;
    const worker = new Worker(new URL("./copy-worker.ts", import.meta.url).href);
    this.closed = new Promise<void>((resolve) => worker.addEventListener("close", () => resolve(), { once: true }));
    this.reply = new Promise<CopyReply>((resolve) => {
      worker.onmessage = (event: MessageEvent<CopyReply>) => resolve(event.data);
      worker.onerror = (event) => resolve({ error: `copy worker failed: ${event.message}` });
    });
    worker.postMessage({ kind: "start", srcFd: this.srcFd, dstFd: this.dstFd, blockSize: this.blockSize, kernel: this.io.copyFileRange !== false } satisfies CopyMessage);
    this.worker = worker;
  }

  /** Queues `length` bytes from `src` in the source to `dst` in the image (dst block-aligned). */
  add(src: number, dst: number, length: number): void {
    if (this.finished) throw new Error("CopyStream.add after finish");
    const b = this.batch;
    b[this.fill] = src;
    b[this.fill + 1] = dst;
    b[this.fill + 2] = length;
    this.fill += 3;
    if (this.fill === b.length) this.flush();
  }

  /** Hands the queued jobs to the worker. */
  flush(): void {
    if (this.fill === 0) return;
    this.warmUp();
    const jobs = this.batch.subarray(0, this.fill);
    this.worker!.postMessage({ kind: "jobs", jobs } satisfies CopyMessage, [jobs.buffer]);
    this.batch = new Float64Array(BATCH_JOBS * 3);
    this.fill = 0;
  }

  /** Settles once every queued job is copied; rejects with the worker's error (e.g. a truncated source). */
  finish(): Promise<void> {
    this.finished ??= this.settle();
    return this.finished;
  }

  private async settle(): Promise<void> {
    this.flush();
    if (!this.worker) return;
    this.worker.postMessage({ kind: "end" } satisfies CopyMessage);
    const reply = await this.reply!;
    await this.stop();
    if (reply.error) throw new Error(reply.error);
  }

  /** Stops the worker, waiting until it can no longer touch either descriptor. Idempotent. */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    worker.terminate();
    await this.closed;
  }
}
