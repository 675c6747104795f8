// File data: each surviving file's bytes copied from its source to the blocks the plan gave
// it, in source offset order, through the kernel where it can (copy_file_range) and through a
// read window and coalescing sink where it cannot. Started before the inodes are written and
// finished after the superblocks (write.ts), so the copying overlaps the metadata work. Data the
// writer already copied while the input was read (streamed-data.ts) is skipped.
import type { ByteSource } from "../tree/index.ts";
import * as C from "./constants.ts";
import type { Ext4Plan, PlannedInode } from "./plan.ts";
import { type BlockTarget, SourceWindow, writeAll } from "../io/block-io.ts";
import { copyRange } from "../io/copy-range.ts";
import { CopyStream } from "../io/copy-stream.ts";
import type { IoOptions } from "../io/options.ts";

const BS = C.BLOCK_SIZE;
const CHUNK_BLOCKS = 256;
/** Extents at least this long are copied on this thread, by finish() (see startFileData). */
const LARGE_EXTENT_BYTES = 4 << 20;

export interface FileDataCopy {
  /** Copies the large extents on this thread, then waits for the workers. */
  finish(): Promise<void>;
  /** Stops the workers at once (on failure). */
  stop(): Promise<void>;
}

/**
 * Starts copying the file data, except that of `skipSource` (already copied while the input
 * was read). For sources that are regular files, small extents (many files: the Debian case)
 * are copied in the kernel on a worker thread while the writer goes on with the inodes; large
 * extents are copied on this thread by finish(), once the metadata is written, because bulk
 * copies measured a third slower from a Bun worker (8 GiB: 22 s vs 16 s). The rest (in-memory
 * bytes, sources without a file) is written now through the sink.
 */
export function startFileData(plan: Ext4Plan, sources: ByteSource[], sink: BlockTarget, outFd: number, skipSource: number, io: IoOptions): FileDataCopy {
  const skipped = (p: PlannedInode) => p.node.data !== undefined && !p.node.bytes && p.node.data.source === skipSource;
  const limits = new Map<number, number>();
  for (const p of plan.dataOrder) {
    const d = p.node.data;
    if (d && !p.node.bytes && !skipped(p)) limits.set(d.source, Math.max(limits.get(d.source) ?? 0, d.offset + p.node.size));
  }
  const windows = new Map<number, SourceWindow>();
  const copiers = new Map<number, CopyStream>();
  const largeJobs = new Map<number, number[]>();
  for (const [index, limit] of limits) {
    const source = sources[index];
    if (!source) throw new Error(`file data refers to source ${index}, but only ${sources.length} sources were given`);
    const fd = source.regularFileFd?.() ?? null;
    if (fd !== null) {
      copiers.set(index, new CopyStream(fd, outFd, BS, io));
      largeJobs.set(index, []);
    } else {
      windows.set(index, new SourceWindow(source, limit));
    }
  }
  for (const p of plan.dataOrder) {
    if (skipped(p)) continue;
    const node = p.node;
    const ex = p.extents;
    const copier = node.data && !node.bytes ? copiers.get(node.data.source) : undefined;
    for (let i = 0; i < ex.length; i += 3) {
      const logical = ex[i]!;
      const physical = ex[i + 1]!;
      const extentLength = ex[i + 2]!;
      if (copier) {
        const fileOffset = logical * BS;
        const length = Math.min(extentLength * BS, node.size - fileOffset);
        if (length >= LARGE_EXTENT_BYTES) largeJobs.get(node.data!.source)!.push(node.data!.offset + fileOffset, physical * BS, length);
        else copier.add(node.data!.offset + fileOffset, physical * BS, length);
        continue;
      }
      for (let b = 0; b < extentLength; b += CHUNK_BLOCKS) {
        const blocks = Math.min(CHUNK_BLOCKS, extentLength - b);
        const fileOffset = (logical + b) * BS;
        const length = Math.min(blocks * BS, node.size - fileOffset);
        const bytes = node.bytes
          ? node.bytes.subarray(fileOffset, fileOffset + length)
          : windows.get(node.data!.source)!.view(node.data!.offset + fileOffset, length);
        sink.put(physical + b, bytes);
      }
    }
  }
  sink.flush();
  for (const copier of copiers.values()) copier.flush();
  return {
    async finish() {
      for (const [index, jobs] of largeJobs) copyLargeExtents(sources[index]!, outFd, jobs, io);
      await Promise.all([...copiers.values()].map((c) => c.finish()));
    },
    async stop() {
      await Promise.all([...copiers.values()].map((c) => c.stop()));
    },
  };
}

/** Copies [srcOffset, dstOffset, length, ...] in the kernel, or with 8 MiB reads and writes where refused (or told not to). */
function copyLargeExtents(source: ByteSource, outFd: number, jobs: number[], io: IoOptions): void {
  const srcFd = source.regularFileFd!()!;
  const kernel = io.copyFileRange !== false;
  let buf: Uint8Array | null = null;
  for (let i = 0; i < jobs.length; i += 3) {
    const [src, dst, length] = [jobs[i]!, jobs[i + 1]!, jobs[i + 2]!];
    if (kernel && copyRange(srcFd, src, outFd, dst, length)) continue;
    buf ??= new Uint8Array(8 << 20);
    for (let done = 0; done < length; done += buf.length) {
      const n = Math.min(buf.length, length - done);
      source.readInto(buf.subarray(0, n), src + done);
      writeAll(outFd, buf.subarray(0, n), dst + done);
    }
  }
}
