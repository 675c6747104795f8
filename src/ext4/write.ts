// Executes a layout plan into an image file. Ext4ImageWriter.write is the list of phases:
//   0. (before the plan, Ext4ImageWriter.fileDataSink) file data written while the input is
//      read, where the plan is predicted to put it (streamed-data.ts);
//   1. plan: the whole layout, from the tree alone (plan.ts);
//   2. settle the streamed data: kept if the plan put every file where predicted, else
//      discarded (and given back to a spool that left it out, see SpoolPolicy);
//   3. file data, started: the rest copied from each source in offset order, small extents in
//      the kernel on a worker thread while the metadata is written (file-data.ts);
//   4. inodes in number order: directory and symlink blocks, extent tree blocks, the inode
//      table records (one group's table at a time), then shared xattr blocks and the journal
//      (inode-table.ts);
//   5. group tables: bitmaps, then group descriptors (and their backups) (groups.ts);
//   6. superblocks (and backups) last, since they sum up everything before them (superblock.ts);
//   7. file data, finished: large extents copied on this thread, then every write waited for
//      (the caller may release the sources from here on: ImageWriterOptions.onSourcesDone);
//   8. publish: fsync, then the name.
// The image is built in a file without a name (O_TMPFILE; a named temp file where that is
// unavailable), fsynced, and put in place of `out` atomically only when complete: a failure,
// or even a killed process, leaves nothing behind.
import { ftruncateSync } from "node:fs";
import { displayName, type ByteSource, type FileDataSink, type FsNode, type SpoolPolicy } from "../tree/index.ts";
import * as C from "./constants.ts";
import { buildExtentTree } from "./extents.ts";
import { startFileData, type FileDataCopy } from "./file-data.ts";
import { backupGroups } from "./geometry.ts";
import { buildGroupTables, type GroupTables, type GroupUsage } from "./groups.ts";
import { writeInodes } from "./inode-table.ts";
import { checkImageSize, Ext4PlanError, planExt4, type Ext4Options, type Ext4Plan } from "./plan.ts";
import { predictionGeometry, StreamedFileData } from "./streamed-data.ts";
import { encodeSuperblock } from "./superblock.ts";
import { BlockSink, type BlockTarget } from "../io/block-io.ts";
import type { IoOptions } from "../io/options.ts";
import { createTempOutput, type TempOutput } from "../io/temp-output.ts";

export interface WriteImageOptions extends Ext4Options {
  out: string;
  /** How the image is written where there is a choice (O_TMPFILE, O_DIRECT, copy_file_range). */
  io?: IoOptions;
  /** Gets one line per phase with its wall and CPU milliseconds (the CLI prints them under BANGER_TIMING). */
  timing?: (line: string) => void;
}

export interface WriteStats {
  sizeBytes: number;
  blocksUsed: number;
  inodesUsed: number;
  uuid: string;
  /** File data written while the input was read (Ext4ImageWriter.fileDataSink), if any. */
  streamed: StreamedDataReport | null;
}

export interface StreamedDataReport {
  files: number;
  bytes: number;
  /** True when the plan placed every file as predicted, so those copies were kept. */
  kept: boolean;
  /** Why the copies were discarded (and done again), when they were. */
  discardedBecause: string | null;
  /** Slot writes that went to the disk directly (O_DIRECT) and through the page cache (0 when discarded). */
  directWrites: number;
  bufferedWrites: number;
}

const BS = C.BLOCK_SIZE;

/** Phase 5: the block and inode bitmaps, then the group descriptors and their backups. */
function writeGroupTables(plan: Ext4Plan, usage: GroupUsage[], sink: BlockTarget): GroupTables {
  const g = plan.geometry;
  const tables = buildGroupTables(g, plan.groupLayouts, usage, [plan.allocator.reserved, plan.allocator.allocated], plan.fsCsumSeed);
  sink.put(plan.groupLayouts[0]!.blockBitmap, tables.blockBitmaps);
  sink.put(plan.groupLayouts[0]!.inodeBitmap, tables.inodeBitmaps);
  for (const grp of backupGroups(g.groupCount)) sink.put(grp * C.BLOCKS_PER_GROUP + 1, tables.descriptors);
  return tables;
}

/** Phase 6: the superblock, in block 0 after the 1 KiB boot sector, and its backups. */
function writeSuperblocks(plan: Ext4Plan, tables: GroupTables, label: string, sink: BlockTarget): void {
  const fields = {
    geometry: plan.geometry,
    freeBlocksCount: tables.freeBlocks,
    freeInodesCount: tables.freeInodes,
    uuid: plan.uuid,
    hashSeed: plan.hashSeed,
    volumeName: Buffer.from(label, "utf8"),
    metadataCsum: plan.fsCsumSeed !== null,
    journalBlocks: plan.journalBlocks,
    journalIBlock: plan.journalBlocks > 0 ? buildExtentTree(plan.journalExtents, plan.journalTreeStart, null).iBlock : null,
    journalSize: plan.journalBlocks * BS,
    timestamp: plan.timestamp,
  };
  for (const grp of backupGroups(plan.geometry.groupCount)) {
    const superblock = encodeSuperblock(fields, grp);
    if (grp === 0) {
      // Block 0: 1 KiB of zeros (boot sector), the superblock, then zeros.
      const first = new Uint8Array(BS);
      first.set(superblock, C.SUPERBLOCK_OFFSET);
      sink.put(0, first);
    } else {
      sink.put(grp * C.BLOCKS_PER_GROUP, superblock);
    }
  }
}

/** Wall and CPU milliseconds since the last lap, one line per phase to `report` (BANGER_TIMING); nothing without it. */
function phaseClock(report: ((line: string) => void) | undefined): { lap(label: string): void } {
  if (!report) return { lap: () => {} };
  let t0 = performance.now();
  let cpu0 = process.cpuUsage();
  return {
    lap(label) {
      const cpu = process.cpuUsage(cpu0);
      report(`${label}: ${(performance.now() - t0).toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms cpu`);
      t0 = performance.now();
      cpu0 = process.cpuUsage();
    },
  };
}

/** The outcome of phase 2: whether the file data streamed while reading is the image's. */
interface SettledStream {
  /** The stream, when its writes were kept. */
  kept: StreamedFileData | null;
  /** The source it covered when kept (its files are not copied again), else -1. */
  source: number;
  report: StreamedDataReport | null;
}

export interface ImageWriterOptions extends WriteImageOptions {
  /** Roughly how many bytes of file data the input holds (its size), to predict the image's geometry. */
  likelyDataBytes?: number;
  /**
   * Called once every file's bytes are in the image, before the publishing fsync: the writer
   * reads its sources no more, and a caller may let them go while the disk flushes.
   */
  onSourcesDone?: () => void;
}

/**
 * One image being written: the output exists (without a name) from open() on, so file data
 * can be written into it while the input is still being read (fileDataSink), before the plan.
 * finish() plans the rest, writes it and publishes the image; discard() drops everything.
 */
export class Ext4ImageWriter {
  private streamed: StreamedFileData | null = null;
  private fileCopy: FileDataCopy | null = null;

  private constructor(
    private readonly options: ImageWriterOptions,
    private readonly output: TempOutput,
  ) {}

  static open(options: ImageWriterOptions): Ext4ImageWriter {
    // Before the output exists or any geometry is sized from it (a huge --size allocated GiBs).
    checkImageSize(options.size);
    try {
      return new Ext4ImageWriter(options, createTempOutput(options.out, options.io));
    } catch (err) {
      throw new Error(`cannot create the image next to ${options.out}: ${(err as Error).message}`);
    }
  }

  /**
   * A sink for a source's parser (loadRootfsTar's fileDataSink): every regular file's data from
   * `source` is written into the image as it is read, where the plan will put it; see
   * streamed-data.ts. `spool`, when `source` is a spool being filled from a stream: the sink
   * holds the file bytes in place of the spool (SpoolPolicy). Only one source can be
   * streamed: null for any other.
   */
  fileDataSink(source: ByteSource, spool: SpoolPolicy | null = null): FileDataSink | null {
    if (this.streamed) return null;
    const likelyBytes = this.options.size ?? Math.max(MIN_LIKELY_BYTES, (this.options.likelyDataBytes ?? 0) * 1.25);
    this.streamed = new StreamedFileData(source, this.output.fd, predictionGeometry(Math.ceil(likelyBytes / BS)), spool, this.options.io);
    return this.streamed;
  }

  /** Plans, writes and publishes the image. Errors other than plan errors name the image. */
  async finish(root: FsNode, sources: ByteSource[], identity?: Uint8Array): Promise<WriteStats> {
    try {
      return await this.write(root, sources, identity);
    } catch (err) {
      const out = this.options.out;
      if (err instanceof Error && !(err instanceof Ext4PlanError) && !err.message.includes(displayName(out))) {
        err.message = `writing ${out}: ${err.message}`;
      }
      throw err;
    }
  }

  /**
   * The phases (see the top of this file), in order. Phases 3 and 7 are the two ends of the
   * file data copy, which runs while phases 4 to 6 write the metadata.
   */
  private async write(root: FsNode, sources: ByteSource[], identity?: Uint8Array): Promise<WriteStats> {
    const clock = phaseClock(this.options.timing);
    const plan = this.plan(root, identity);
    clock.lap("plan");
    const settled = await this.settleStreamedData(plan, sources);
    const sink = this.sizeImage(plan, settled);
    this.fileCopy = startFileData(plan, sources, sink, this.output.fd, settled.source, this.options.io ?? {});
    const usage = writeInodes(plan, sink);
    clock.lap("inodes: content, extent trees, tables (file data copying meanwhile)");
    // Group tables and superblocks depend on the plan alone: they join the same writes before
    // the file data is waited for.
    const tables = writeGroupTables(plan, usage, sink);
    writeSuperblocks(plan, tables, this.options.label ?? "", sink);
    sink.flush();
    clock.lap("bitmaps, descriptors, superblocks");
    await this.finishFileData(settled);
    clock.lap("rest of the file data, and the metadata writes");
    this.options.onSourcesDone?.();
    this.output.publish();
    clock.lap("publish (fsync, link and rename)");
    const g = plan.geometry;
    return {
      sizeBytes: g.blocksCount * BS,
      blocksUsed: g.blocksCount - tables.freeBlocks,
      inodesUsed: plan.inodesUsed,
      uuid: Buffer.from(plan.uuid).toString("hex").replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-"),
      streamed: settled.report,
    };
  }

  /** Phase 1. The input has ended: the last, partly filled slot of streamed data is written meanwhile. */
  private plan(root: FsNode, identity: Uint8Array | undefined): Ext4Plan {
    this.streamed?.flush();
    return planExt4(root, { ...this.options, identity: identity ?? this.options.identity });
  }

  /**
   * Phase 2: keeps the data copied while reading only if the plan put every file where it was
   * predicted; otherwise drops it, after a spool that left that data out got it back.
   */
  private async settleStreamedData(plan: Ext4Plan, sources: ByteSource[]): Promise<SettledStream> {
    const streamed = this.streamed;
    if (!streamed) return { kept: null, source: -1, report: null };
    const index = sources.indexOf(streamed.source);
    if (index < 0) streamed.abandon("the streamed source is not among the image's sources");
    const kept = index >= 0 && streamed.matches(plan.dataOrder, index, plan.geometry);
    if (!kept) {
      await streamed.restoreSource();
      ftruncateSync(this.output.fd, 0); // drop what was copied, so unused blocks read as zeros
    }
    const timing = this.options.timing;
    if (timing) {
      const what = kept ? "kept" : `discarded (${streamed.failure})`;
      timing(`file data streamed while reading: ${streamed.files} files, ${(streamed.bytes / 1048576).toFixed(1)} MiB, ${what}; ${streamed.waitedMs.toFixed(0)} ms waiting for the disk`);
    }
    const report = { files: streamed.files, bytes: streamed.bytes, kept, discardedBecause: kept ? null : streamed.failure, directWrites: 0, bufferedWrites: 0 };
    return { kept: kept ? streamed : null, source: kept ? index : -1, report };
  }

  /**
   * Gives the image file its full size, and returns where the metadata goes: through the
   * streamed data's writer when that was kept (streamed-data.ts, metadataTarget), else
   * through a coalescing sink.
   */
  private sizeImage(plan: Ext4Plan, settled: SettledStream): BlockTarget {
    ftruncateSync(this.output.fd, plan.geometry.blocksCount * BS);
    return settled.kept?.metadataTarget() ?? new BlockSink(this.output.fd, BS);
  }

  /** Phase 7: the large extents, then every copy and every streamed write waited for. */
  private async finishFileData(settled: SettledStream): Promise<void> {
    await this.fileCopy!.finish();
    if (settled.kept) {
      const writes = await settled.kept.finish();
      settled.report!.directWrites = writes.direct;
      settled.report!.bufferedWrites = writes.buffered;
    }
  }

  /** Drops the image: stops every copy (so none can touch the descriptor afterwards), then the file. */
  async discard(): Promise<void> {
    await Promise.all([this.streamed?.stop(), this.fileCopy?.stop()]);
    this.output.discard();
  }
}

/** The smallest default image (planExt4's rule), the floor of the geometry prediction. */
const MIN_LIKELY_BYTES = 1 << 30;

/** Plans and writes `root` into a new image at `options.out` (nothing streamed ahead). */
export async function writeExt4Image(root: FsNode, sources: ByteSource[], options: WriteImageOptions): Promise<WriteStats> {
  const writer = Ext4ImageWriter.open(options);
  try {
    return await writer.finish(root, sources);
  } catch (err) {
    await writer.discard();
    throw err;
  }
}
