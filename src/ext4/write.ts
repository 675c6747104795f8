// Executes a layout plan into an image file. The phases, in order:
//   0. (Ext4ImageWriter.fileDataSink, before the plan) file data written while the input is
//      read, kept only if the plan places it as predicted (streamed-data.ts);
//   1. the rest of the file data, copied from each source in offset order: small extents in the
//      kernel on a worker thread overlapping phase 2, large extents in the kernel after it;
//   2. inodes in number order: directory and symlink blocks, extent tree blocks, the inode
//      table records (one group's table at a time), then shared xattr blocks and the journal;
//   3. bitmaps, then group descriptors (and their backups);
//   4. the superblock (and its backups) last, since it sums up everything before it.
// The image is built in a file without a name (O_TMPFILE; a named temp file where that is
// unavailable), fsynced, and put in place of `out` atomically only when complete: a failure,
// or even a killed process, leaves nothing behind.
import { ftruncateSync } from "node:fs";
import { predictionGeometry, StreamedFileData } from "./streamed-data.ts";
import { displayName, nameToBytes, type ByteSource, type FileDataSink, type FsNode, type SpoolPolicy } from "../tree/index.ts";
import * as C from "./constants.ts";
import { modeWithAccessAcl } from "./acl.ts";
import { buildDirectory } from "./htree.ts";
import { buildExtentTree, extentCount, extentTreeBlockCount, type ExtentList } from "./extents.ts";
import { backupGroups } from "./geometry.ts";
import { buildGroupTables, type GroupUsage } from "./groups.ts";
import { encodeInode, inodeChecksumSeed, type InodeFields } from "./inode.ts";
import { encodeJournalSuperblock } from "./journal.ts";
import { checkImageSize, Ext4PlanError, LOST_FOUND_BLOCKS, pathOf, planExt4, type Ext4Options, type Ext4Plan, type PlannedInode } from "./plan.ts";
import type { DirChild, DirScratch } from "./dirents.ts";
import { encodeSuperblock } from "./superblock.ts";
import { sealXattrBlock } from "./xattrs.ts";
import { crc32c } from "./crc32c.ts";
import { CopyStream } from "../io/copy-stream.ts";
import type { IoOptions } from "../io/options.ts";
import { copyRange } from "../io/copy-range.ts";
import { createTempOutput, type TempOutput } from "../io/temp-output.ts";
import { BlockSink, type BlockTarget, SourceWindow, writeAll } from "../io/block-io.ts";

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
const CHUNK_BLOCKS = 256;
/** Extents at least this long are copied on this thread after phase 2 (see startFileData). */
const LARGE_EXTENT_BYTES = 4 << 20;


interface FileDataCopy {
  /** Copies the large extents on this thread, then waits for the workers. */
  finish(): Promise<void>;
  /** Stops the workers at once (on failure). */
  stop(): Promise<void>;
}

/**
 * Phase 1: file data, except that of `skipSource` (already copied while the input was read).
 * For sources that are regular files, small extents (many files: the Debian case) are copied
 * in the kernel on a worker thread while phase 2 runs; large extents are copied on this thread
 * once phase 2 is done, because bulk copies measured a third slower from a Bun worker (8 GiB:
 * 22 s vs 16 s). The rest (in-memory bytes, sources without a file) is written now through the sink.
 */
function startFileData(plan: Ext4Plan, sources: ByteSource[], sink: BlockTarget, outFd: number, skipSource: number, io: IoOptions): FileDataCopy {
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

function writeByExtents(sink: BlockTarget, extents: ExtentList, content: Uint8Array): void {
  for (let i = 0; i < extents.length; i += 3) {
    const logical = extents[i]!;
    sink.put(extents[i + 1]!, content.subarray(logical * BS, (logical + extents[i + 2]!) * BS));
  }
}

function emptyDirBlock(metadataCsum: boolean, inodeSeed: number): Uint8Array {
  const block = new Uint8Array(BS);
  const v = new DataView(block.buffer);
  v.setUint16(4, metadataCsum ? BS - 12 : BS, true);
  if (metadataCsum) {
    v.setUint16(BS - 12 + 4, 12, true);
    v.setUint8(BS - 12 + 7, C.FT_DIR_CSUM);
    v.setUint32(BS - 4, crc32c(inodeSeed, block, 0, BS - 12), true);
  }
  return block;
}

const TYPE_BITS: Record<FsNode["kind"], number> = {
  file: C.S_IFREG,
  dir: C.S_IFDIR,
  symlink: C.S_IFLNK,
  chardev: C.S_IFCHR,
  blockdev: C.S_IFBLK,
  fifo: C.S_IFIFO,
  socket: C.S_IFSOCK,
};

function writeDeviceNumbers(iBlock: Uint8Array, major: number, minor: number): void {
  const v = new DataView(iBlock.buffer, iBlock.byteOffset, 60);
  if (major < 256 && minor < 256) {
    v.setUint32(0, (major << 8) | minor, true);
  } else {
    v.setUint32(4, ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0, true);
  }
}

/** A directory's blocks: htree or linear, with checksums; lost+found gets mke2fs's empty spare blocks. */
function directoryContent(plan: Ext4Plan, p: PlannedInode, inodeSeed: number, hashSeed: Uint32Array, dirScratch: DirScratch): { bytes: Uint8Array; indexed: boolean } {
  const csum = plan.fsCsumSeed !== null;
  const e = p.entries!;
  const children: DirChild[] = e.names.map((name, i) => ({ name: nameToBytes(name), ino: e.inos[i]!, fileType: e.types[i]! }));
  // The planner checked every name (validName) and Map keys are unique: no need to again per block.
  const opts = { metadataCsum: csum, hashVersion: C.HASH_HALF_MD4, hashSeed, unsignedHash: true, inodeCsumSeed: inodeSeed, childrenChecked: true, scratch: dirScratch };
  const built = buildDirectory(p.ino, p.parent.ino, children, opts);
  if (p.ino === C.LOST_FOUND_INO && children.length === 0) {
    const bytes = new Uint8Array(LOST_FOUND_BLOCKS * BS);
    bytes.set(built.bytes, 0);
    for (let b = 1; b < LOST_FOUND_BLOCKS; b++) bytes.set(emptyDirBlock(csum, inodeSeed), b * BS);
    return { bytes, indexed: false };
  }
  if (built.blockCount !== p.dataBlocks) {
    throw new Error(`directory ${pathOf(p)}: planned ${p.dataBlocks} blocks but built ${built.blockCount}`);
  }
  return { bytes: built.bytes, indexed: built.indexed };
}

function usesExtents(p: PlannedInode): boolean {
  const kind = p.node.kind;
  return kind === "file" || kind === "dir" || (kind === "symlink" && p.dataBlocks > 0);
}

/** Writes an inode's content blocks and extent tree and fills its i_block; returns whether it is an indexed directory. */
function writeInodeContent(plan: Ext4Plan, p: PlannedInode, sink: BlockTarget, iBlock: Uint8Array, hashSeed: Uint32Array, dirScratch: DirScratch): boolean {
  const node = p.node;
  const seed = plan.fsCsumSeed;
  const inodeSeed = seed !== null ? inodeChecksumSeed(seed, p.ino, 0) : 0;
  let indexed = false;
  if (node.kind === "dir") {
    const content = directoryContent(plan, p, inodeSeed, hashSeed, dirScratch);
    writeByExtents(sink, p.extents, content.bytes);
    indexed = content.indexed;
  } else if (node.kind === "symlink" && p.dataBlocks > 0) {
    writeByExtents(sink, p.extents, Buffer.from(node.target!, "latin1"));
  }
  if (usesExtents(p)) {
    const tree = buildExtentTree(p.extents, p.treeStart, seed !== null ? inodeSeed : null, iBlock);
    if (p.treeBlocks > 0) sink.put(p.treeStart, tree.blocks);
  } else if (node.kind === "symlink") {
    iBlock.set(Buffer.from(node.target!, "latin1"));
  } else if (node.kind === "chardev" || node.kind === "blockdev") {
    writeDeviceNumbers(iBlock, node.major ?? 0, node.minor ?? 0);
  }
  return indexed;
}

/**
 * The permission bits the kernel would show: a symlink's are always 0777 (no source can make
 * them anything else), and an access ACL's USER_OBJ/MASK/OTHER are the owner/group/other bits.
 */
function permissionsOf(node: FsNode): number {
  if (node.kind === "symlink") return 0o777;
  const acl = node.xattrs.size > 0 ? node.xattrs.get("system.posix_acl_access") : undefined;
  return acl === undefined ? node.mode & 0o7777 : modeWithAccessAcl(node.mode & 0o7777, acl);
}

function inodeFieldsFor(p: PlannedInode, iBlock: Uint8Array, indexed: boolean): InodeFields {
  const node = p.node;
  let size = 0;
  if (node.kind === "file") size = node.size;
  else if (node.kind === "dir") size = p.dataBlocks * BS;
  else if (node.kind === "symlink") size = node.target!.length;
  let flags = usesExtents(p) ? C.INODE_FLAG_EXTENTS : 0;
  if (indexed) flags |= C.INODE_FLAG_INDEX;
  const blocks = p.dataBlocks + p.treeBlocks + (p.xattrBlock ? 1 : 0);
  // dir_nlink: a directory with more than 65000 links records 1 ("many").
  const linksCount = node.kind === "dir" && p.linksCount > 65000 ? 1 : p.linksCount;
  return {
    mode: TYPE_BITS[node.kind] | permissionsOf(node),
    uid: node.uid >>> 0,
    gid: node.gid >>> 0,
    size,
    linksCount,
    blocks512: blocks * (BS / 512),
    flags,
    iBlock,
    generation: 0,
    fileAcl: p.xattrBlock,
    atime: node.atime,
    ctime: node.ctime,
    mtime: node.mtime,
    crtime: node.mtime,
    xattrArea: p.xattrs?.inInode ?? null,
  };
}

/** Reserved inodes 1..10 of group 0: the journal (8) and, under metadata_csum, zeroed inodes with valid checksums. */
function encodeReservedInodes(plan: Ext4Plan, sink: BlockTarget, table: Uint8Array): void {
  const seed = plan.fsCsumSeed;
  if (plan.journalBlocks > 0) {
    const journalSeed = seed !== null ? inodeChecksumSeed(seed, C.JOURNAL_INO, 0) : null;
    const iBlock = new Uint8Array(60);
    const tree = buildExtentTree(plan.journalExtents, plan.journalTreeStart, journalSeed, iBlock);
    if (tree.blocks.length > 0) sink.put(plan.journalTreeStart, tree.blocks);
    sink.put(plan.journalExtents[1]!, encodeJournalSuperblock(plan.journalBlocks, plan.uuid));
    const t = { sec: plan.timestamp, nsec: 0 };
    encodeInode(table, (C.JOURNAL_INO - 1) * C.INODE_SIZE, C.JOURNAL_INO, {
      ...emptyReservedInode(),
      mode: C.S_IFREG | 0o600,
      size: plan.journalBlocks * BS,
      linksCount: 1,
      blocks512: (plan.journalBlocks + extentTreeBlockCount(extentCount(plan.journalExtents))) * (BS / 512),
      flags: C.INODE_FLAG_EXTENTS,
      iBlock,
      atime: t,
      ctime: t,
      mtime: t,
      crtime: t,
    }, seed);
  }
  if (seed === null) return;
  for (let ino = 1; ino < C.FIRST_INO; ino++) {
    if (ino === C.ROOT_INO || (ino === C.JOURNAL_INO && plan.journalBlocks > 0)) continue;
    encodeInode(table, (ino - 1) * C.INODE_SIZE, ino, emptyReservedInode(), seed);
  }
}

/**
 * Phase 2: every inode in number order: its content (directory blocks, slow symlink), its
 * extent tree blocks and its record in the inode table, one group's table at a time; then
 * the shared xattr blocks. Returns each group's inode usage for the bitmaps and descriptors.
 */
function writeInodes(plan: Ext4Plan, sink: BlockTarget): GroupUsage[] {
  const g = plan.geometry;
  const seed = plan.fsCsumSeed;
  const hashSeed = new Uint32Array(4);
  const hv = new DataView(plan.hashSeed.buffer, plan.hashSeed.byteOffset, 16);
  for (let i = 0; i < 4; i++) hashSeed[i] = hv.getUint32(i * 4, true);

  const usage: GroupUsage[] = Array.from({ length: g.groupCount }, () => ({ usedInodes: 0, usedDirs: 0 }));
  const table = new Uint8Array(g.inodesPerGroup * C.INODE_SIZE);
  const iBlock = new Uint8Array(60);
  // Directories are built here one at a time; writeByExtents copies each out before the next.
  const dirScratch: DirScratch = { buf: new Uint8Array(16 * BS) };
  let group = 0;
  let used = C.FIRST_INO - 1; // inodes of the current group up to the last one in use
  const flushTable = () => {
    if (used === 0) return;
    const bytes = Math.ceil((used * C.INODE_SIZE) / BS) * BS;
    sink.put(plan.groupLayouts[group]!.inodeTable, table.subarray(0, bytes));
    table.fill(0, 0, bytes);
    usage[group]!.usedInodes = used;
  };
  encodeReservedInodes(plan, sink, table);
  for (const p of plan.inodes) {
    const grp = Math.floor((p.ino - 1) / g.inodesPerGroup);
    if (grp !== group) {
      flushTable();
      group = grp;
      used = 0;
    }
    iBlock.fill(0);
    const indexed = writeInodeContent(plan, p, sink, iBlock, hashSeed, dirScratch);
    const index = (p.ino - 1) % g.inodesPerGroup;
    encodeInode(table, index * C.INODE_SIZE, p.ino, inodeFieldsFor(p, iBlock, indexed), seed);
    used = Math.max(used, index + 1);
    if (p.node.kind === "dir") usage[grp]!.usedDirs++;
  }
  flushTable();

  for (const xb of plan.xattrBlocks) {
    sealXattrBlock(xb.block, xb.blockNr, xb.refcount, seed);
    sink.put(xb.blockNr, xb.block);
  }
  sink.flush();
  return usage;
}

function emptyReservedInode(): InodeFields {
  const zero = { sec: 0, nsec: 0 };
  return {
    mode: 0,
    uid: 0,
    gid: 0,
    size: 0,
    linksCount: 0,
    blocks512: 0,
    flags: 0,
    iBlock: new Uint8Array(60),
    generation: 0,
    fileAcl: 0,
    atime: zero,
    ctime: zero,
    mtime: zero,
    crtime: zero,
    xattrArea: null,
  };
}

export interface ImageWriterOptions extends WriteImageOptions {
  /** Roughly how many bytes of file data the input holds (its size), to predict the image's geometry. */
  likelyDataBytes?: number;
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

  private async write(root: FsNode, sources: ByteSource[], identity?: Uint8Array): Promise<WriteStats> {
    // Wall and CPU milliseconds per phase, for profiling (see bench/).
    let cpu0 = process.cpuUsage();
    const report = this.options.timing;
    const timing = report
      ? (label: string, t0: number) => {
          const cpu = process.cpuUsage(cpu0);
          cpu0 = process.cpuUsage();
          report(`${label}: ${(performance.now() - t0).toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms cpu`);
        }
      : null;
    let t0 = performance.now();
    // The input has ended: its last, partly filled slot of file data can be written during the plan.
    this.streamed?.flush();
    const options = this.options;
    const plan = planExt4(root, { ...options, identity: identity ?? options.identity });
    const g = plan.geometry;
    const fd = this.output.fd;
    timing?.("plan", t0);
    t0 = performance.now();

    // Keep the data copied while reading only if the plan put every file where it was predicted.
    const streamed = this.streamed;
    let streamedSource = -1;
    if (streamed) {
      const index = sources.indexOf(streamed.source);
      if (index < 0) streamed.abandon("the streamed source is not among the image's sources");
      else if (streamed.matches(plan.dataOrder, index, g)) streamedSource = index;
      if (streamedSource < 0) {
        // A spool that skipped the data this stream held gets it back from the image first.
        await streamed.restoreSource();
        ftruncateSync(fd, 0); // drop what was copied, so unused blocks read as zeros
      }
      if (report) {
        const what = streamedSource >= 0 ? "kept" : `discarded (${streamed.failure})`;
        report(`file data streamed while reading: ${streamed.files} files, ${(streamed.bytes / 1048576).toFixed(1)} MiB, ${what}; ${streamed.waitedMs.toFixed(0)} ms waiting for the disk`);
      }
    }
    const streamedReport: StreamedDataReport | null = streamed
      ? { files: streamed.files, bytes: streamed.bytes, kept: streamedSource >= 0, discardedBecause: streamedSource >= 0 ? null : streamed.failure, directWrites: 0, bufferedWrites: 0 }
      : null;

    ftruncateSync(fd, g.blocksCount * BS);
    const sink = (streamedSource >= 0 ? streamed!.metadataTarget() : null) ?? new BlockSink(fd, BS);
    this.fileCopy = startFileData(plan, sources, sink, fd, streamedSource, options.io ?? {});
    const usage = writeInodes(plan, sink);
    timing?.("inodes: content, extent trees, tables (file data copying meanwhile)", t0);
    t0 = performance.now();

    // Bitmaps, descriptors and superblocks depend on the plan alone: they join the same writes
    // before waiting for the file data.
    const reservedRanges = plan.allocator.reserved;
    const tables = buildGroupTables(g, plan.groupLayouts, usage, [reservedRanges, plan.allocator.allocated], plan.fsCsumSeed);
    sink.put(plan.groupLayouts[0]!.blockBitmap, tables.blockBitmaps);
    sink.put(plan.groupLayouts[0]!.inodeBitmap, tables.inodeBitmaps);
    const backups = backupGroups(g.groupCount);
    for (const grp of backups) sink.put(grp * C.BLOCKS_PER_GROUP + 1, tables.descriptors);

    const fields = {
      geometry: g,
      freeBlocksCount: tables.freeBlocks,
      freeInodesCount: tables.freeInodes,
      uuid: plan.uuid,
      hashSeed: plan.hashSeed,
      volumeName: Buffer.from(options.label ?? "", "utf8"),
      metadataCsum: plan.fsCsumSeed !== null,
      journalBlocks: plan.journalBlocks,
      journalIBlock: plan.journalBlocks > 0 ? buildExtentTree(plan.journalExtents, plan.journalTreeStart, null).iBlock : null,
      journalSize: plan.journalBlocks * BS,
      timestamp: plan.timestamp,
    };
    for (const grp of backups) {
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
    sink.flush();
    timing?.("bitmaps, descriptors, superblocks", t0);
    t0 = performance.now();
    await this.fileCopy.finish();
    if (streamedSource >= 0) {
      const writes = await streamed!.finish();
      streamedReport!.directWrites = writes.direct;
      streamedReport!.bufferedWrites = writes.buffered;
    }
    timing?.("rest of the file data, and the metadata writes", t0);
    t0 = performance.now();
    this.output.publish();
    timing?.("publish (fsync, link and rename)", t0);
    return {
      sizeBytes: g.blocksCount * BS,
      blocksUsed: g.blocksCount - tables.freeBlocks,
      inodesUsed: plan.inodesUsed,
      uuid: Buffer.from(plan.uuid).toString("hex").replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-"),
      streamed: streamedReport,
    };
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
