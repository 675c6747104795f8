// Messages and shared control words between StagedBlockWriter (staged-writer.ts) and its worker
// (staged-write-worker.ts). Kept apart from the worker's module: importing that one on the main
// thread would install its message handler there, which keeps the process from exiting.

export type StagedWriteMessage =
  /** Slot i is `memory[i * slotBytes, (i + 1) * slotBytes)` (a view of shared memory). */
  /** `transient`: no writeback, no flushes (StagedBlockWriter's scratch files). */
  | { kind: "start"; memory: Uint8Array; slotBytes: number; slotCount: number; control: SharedArrayBuffer; bufferedFd: number; directFd: number | null; blockSize: number; transient: boolean }
  | { kind: "write"; slot: number; block: number; blocks: number }
  | { kind: "end" };

export interface StagedWriteReply {
  error: string | null;
  /** Writes that went through the O_DIRECT descriptor / the buffered one. */
  direct: number;
  buffered: number;
  /** fdatasync calls made on the way (one per FLUSH_BYTES written). */
  flushes: number;
}

/** Control words: one per slot (1 = filled, waiting to be written; 0 = free). */
export const SLOT_FREE = 0;
export const SLOT_FILLED = 1;
