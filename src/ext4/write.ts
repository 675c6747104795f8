// Executes a layout plan into an image file. The phases, in order:
//   1. file data, streamed from each source in offset order into big positional writes;
//   2. directories, slow symlinks, xattr blocks, extent tree blocks, the journal superblock;
//   3. inode tables;
//   4. bitmaps, then group descriptors (and their backups);
//   5. the superblock (and its backups) last, since it sums up everything before it.
// The image is built under a temporary name beside `out` and renamed into place only when
// complete; on any failure the temporary file is removed.
import { closeSync, ftruncateSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { displayName, type ByteSource, type FsNode } from "../tree/index.ts";
import * as C from "./constants.ts";
import { buildDirectory } from "./htree.ts";
import { buildExtentTree, extentTreeBlockCount, type Extent } from "./extents.ts";
import { backupGroups } from "./geometry.ts";
import { buildGroupTables } from "./groups.ts";
import { encodeInode, inodeChecksumSeed, type InodeFields } from "./inode.ts";
import { encodeJournalSuperblock } from "./journal.ts";
import { LOST_FOUND_BLOCKS, planExt4, type Ext4Options, type Ext4Plan, type PlannedInode } from "./plan.ts";
import { encodeSuperblock } from "./superblock.ts";
import { sealXattrBlock } from "./xattrs.ts";
import { crc32c } from "./crc32c.ts";
import { copyRange } from "../io/copy-range.ts";

export interface WriteImageOptions extends Ext4Options {
  out: string;
}

export interface WriteStats {
  sizeBytes: number;
  blocksUsed: number;
  inodesUsed: number;
  uuid: string;
}

const BS = C.BLOCK_SIZE;
const OUT_BUFFER = 8 << 20;
const SOURCE_WINDOW = 8 << 20;

/** Coalesces writes to consecutive blocks into large positional writes. */
class BlockSink {
  private buf = new Uint8Array(OUT_BUFFER);
  private startBlock = -1;
  private used = 0; // bytes, always whole blocks
  constructor(private fd: number) {}

  /** Writes `data` at `block`, zero-padding its last block. */
  put(block: number, data: Uint8Array): void {
    const padded = Math.ceil(data.length / BS) * BS;
    if (this.startBlock < 0 || block !== this.startBlock + this.used / BS || this.used + padded > this.buf.length) {
      this.flush();
      if (padded > this.buf.length) {
        writeAll(this.fd, data, block * BS);
        return;
      }
      this.startBlock = block;
    }
    this.buf.set(data, this.used);
    if (padded > data.length) this.buf.fill(0, this.used + data.length, this.used + padded);
    this.used += padded;
  }

  flush(): void {
    if (this.used > 0) writeAll(this.fd, this.buf.subarray(0, this.used), this.startBlock * BS);
    this.startBlock = -1;
    this.used = 0;
  }
}

function writeAll(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) {
    const n = writeSync(fd, data, done, data.length - done, position + done);
    if (n <= 0) throw new Error(`short write at byte ${position + done}`);
    done += n;
  }
}

/** A sliding read window over one source, for reads at ascending offsets. */
class SourceWindow {
  private buf = new Uint8Array(SOURCE_WINDOW);
  private start = 0;
  private end = 0;
  constructor(
    private source: ByteSource,
    private limit: number,
  ) {}

  view(offset: number, length: number): Uint8Array {
    if (offset >= this.start && offset + length <= this.end) {
      return this.buf.subarray(offset - this.start, offset - this.start + length);
    }
    if (length > this.buf.length) {
      const direct = new Uint8Array(length);
      this.source.readInto(direct, offset);
      return direct;
    }
    const n = Math.min(this.buf.length, this.limit - offset);
    this.source.readInto(this.buf.subarray(0, n), offset);
    this.start = offset;
    this.end = offset + n;
    return this.buf.subarray(0, length);
  }
}

const CHUNK_BLOCKS = 256;

function copyFileData(plan: Ext4Plan, sources: ByteSource[], sink: BlockSink, outFd: number): void {
  const limits = new Map<number, number>();
  for (const p of plan.dataOrder) {
    const d = p.node.data;
    if (d) limits.set(d.source, Math.max(limits.get(d.source) ?? 0, d.offset + p.node.size));
  }
  const windows = new Map<number, SourceWindow>();
  for (const [index, limit] of limits) {
    const source = sources[index];
    if (!source) throw new Error(`file data refers to source ${index}, but only ${sources.length} sources were given`);
    windows.set(index, new SourceWindow(source, limit));
  }
  // Sources backed by a regular file are copied inside the kernel while that works.
  const kernelCopy = new Map<number, number>();
  for (const index of limits.keys()) {
    const fd = sources[index]!.regularFileFd?.() ?? null;
    if (fd !== null) kernelCopy.set(index, fd);
  }
  for (const p of plan.dataOrder) {
    const node = p.node;
    const data = node.data;
    const srcFd = data && !node.bytes ? kernelCopy.get(data.source) : undefined;
    if (srcFd !== undefined) {
      let copied = true;
      for (const e of p.extents) {
        const fileOffset = e.logical * BS;
        const length = Math.min(e.length * BS, node.size - fileOffset);
        if (!copyRange(srcFd, data!.offset + fileOffset, outFd, e.physical * BS, length)) {
          copied = false;
          break;
        }
      }
      if (copied) continue;
      kernelCopy.delete(data!.source);
    }
    for (const e of p.extents) {
      for (let b = 0; b < e.length; b += CHUNK_BLOCKS) {
        const blocks = Math.min(CHUNK_BLOCKS, e.length - b);
        const fileOffset = (e.logical + b) * BS;
        const length = Math.min(blocks * BS, node.size - fileOffset);
        const bytes = node.bytes
          ? node.bytes.subarray(fileOffset, fileOffset + length)
          : windows.get(node.data!.source)!.view(node.data!.offset + fileOffset, length);
        sink.put(e.physical + b, bytes);
      }
    }
  }
  sink.flush();
}

function writeByExtents(sink: BlockSink, extents: Extent[], content: Uint8Array): void {
  for (const e of extents) sink.put(e.physical, content.subarray(e.logical * BS, (e.logical + e.length) * BS));
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

function deviceIBlock(major: number, minor: number): Uint8Array {
  const iBlock = new Uint8Array(60);
  const v = new DataView(iBlock.buffer);
  if (major < 256 && minor < 256) {
    v.setUint32(0, (major << 8) | minor, true);
  } else {
    v.setUint32(4, ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0, true);
  }
  return iBlock;
}

/** Phase 2: content of directories and symlinks, xattr and extent blocks; returns each inode's i_block and index flag. */
function writeMetadataBlocks(plan: Ext4Plan, sink: BlockSink): Map<number, { iBlock: Uint8Array; indexed: boolean }> {
  const seed = plan.fsCsumSeed;
  const csum = seed !== null;
  const hashSeed = new Uint32Array(4);
  const hv = new DataView(plan.hashSeed.buffer, plan.hashSeed.byteOffset, 16);
  for (let i = 0; i < 4; i++) hashSeed[i] = hv.getUint32(i * 4, true);
  const roots = new Map<number, { iBlock: Uint8Array; indexed: boolean }>();

  for (const p of plan.inodes) {
    const node = p.node;
    const inodeSeed = csum ? inodeChecksumSeed(seed, p.ino, 0) : 0;
    let indexed = false;
    if (node.kind === "dir") {
      let content: Uint8Array;
      if (p.ino === C.LOST_FOUND_INO && p.children!.length === 0) {
        content = new Uint8Array(LOST_FOUND_BLOCKS * BS);
        const first = buildDirectory(p.ino, p.parentIno, [], { metadataCsum: csum, hashVersion: C.HASH_HALF_MD4, hashSeed, unsignedHash: true, inodeCsumSeed: inodeSeed });
        content.set(first.bytes, 0);
        for (let b = 1; b < LOST_FOUND_BLOCKS; b++) content.set(emptyDirBlock(csum, inodeSeed), b * BS);
      } else {
        const built = buildDirectory(p.ino, p.parentIno, p.children!, {
          metadataCsum: csum,
          hashVersion: C.HASH_HALF_MD4,
          hashSeed,
          unsignedHash: true,
          inodeCsumSeed: inodeSeed,
        });
        if (built.blockCount !== p.dataBlocks) {
          throw new Error(`directory inode ${p.ino}: planned ${p.dataBlocks} blocks but built ${built.blockCount}`);
        }
        content = built.bytes;
        indexed = built.indexed;
      }
      writeByExtents(sink, p.extents, content);
    } else if (node.kind === "symlink" && p.dataBlocks > 0) {
      writeByExtents(sink, p.extents, Buffer.from(node.target!, "latin1"));
    }

    let iBlock: Uint8Array;
    if (node.kind === "file" || node.kind === "dir" || (node.kind === "symlink" && p.dataBlocks > 0)) {
      const tree = buildExtentTree(p.extents, p.treeStart, csum ? inodeSeed : null);
      if (p.treeBlocks > 0) sink.put(p.treeStart, tree.blocks);
      iBlock = tree.iBlock;
    } else if (node.kind === "symlink") {
      iBlock = new Uint8Array(60);
      iBlock.set(Buffer.from(node.target!, "latin1"));
    } else if (node.kind === "chardev" || node.kind === "blockdev") {
      iBlock = deviceIBlock(node.major ?? 0, node.minor ?? 0);
    } else {
      iBlock = new Uint8Array(60);
    }
    roots.set(p.ino, { iBlock, indexed });
  }

  for (const xb of plan.xattrBlocks) {
    sealXattrBlock(xb.block, xb.blockNr, xb.refcount, seed);
    sink.put(xb.blockNr, xb.block);
  }

  if (plan.journalBlocks > 0) {
    const journalSeed = csum ? inodeChecksumSeed(seed, C.JOURNAL_INO, 0) : null;
    const tree = buildExtentTree(plan.journalExtents, plan.journalTreeStart, journalSeed);
    if (tree.blocks.length > 0) sink.put(plan.journalTreeStart, tree.blocks);
    sink.put(plan.journalExtents[0]!.physical, encodeJournalSuperblock(plan.journalBlocks, plan.uuid));
    roots.set(C.JOURNAL_INO, { iBlock: tree.iBlock, indexed: false });
  }
  sink.flush();
  return roots;
}

function inodeFieldsFor(p: PlannedInode, root: { iBlock: Uint8Array; indexed: boolean }): InodeFields {
  const node = p.node;
  let size = 0;
  if (node.kind === "file") size = node.size;
  else if (node.kind === "dir") size = p.dataBlocks * BS;
  else if (node.kind === "symlink") size = node.target!.length;
  const usesExtents = node.kind === "file" || node.kind === "dir" || (node.kind === "symlink" && p.dataBlocks > 0);
  let flags = usesExtents ? C.INODE_FLAG_EXTENTS : 0;
  if (root.indexed) flags |= C.INODE_FLAG_INDEX;
  const blocks = p.dataBlocks + p.treeBlocks + (p.xattrBlock ? 1 : 0);
  const linksCount = node.kind === "dir" && p.linksCount > 65000 ? 1 : p.linksCount;
  return {
    mode: TYPE_BITS[node.kind] | (node.mode & 0o7777),
    uid: node.uid >>> 0,
    gid: node.gid >>> 0,
    size,
    linksCount,
    blocks512: blocks * (BS / 512),
    flags,
    iBlock: root.iBlock,
    generation: 0,
    fileAcl: p.xattrBlock,
    atime: node.atime,
    ctime: node.ctime,
    mtime: node.mtime,
    crtime: node.mtime,
    xattrArea: p.xattrs?.inInode ?? null,
  };
}

/** Phase 3: inode tables, group by group; returns each group's used-inode and directory counts. */
function writeInodeTables(plan: Ext4Plan, roots: Map<number, { iBlock: Uint8Array; indexed: boolean }>, fd: number) {
  const g = plan.geometry;
  const usage = Array.from({ length: g.groupCount }, () => ({ usedInodes: 0, usedDirs: 0 }));
  // Reserved inodes 1..10 are in use; only the journal among them has content.
  usage[0]!.usedInodes = C.FIRST_INO - 1;
  const byGroup = new Map<number, PlannedInode[]>();
  for (const p of plan.inodes) {
    const grp = Math.floor((p.ino - 1) / g.inodesPerGroup);
    let list = byGroup.get(grp);
    if (!list) byGroup.set(grp, (list = []));
    list.push(p);
  }
  const seed = plan.fsCsumSeed;
  for (let grp = 0; grp < g.groupCount; grp++) {
    const list = byGroup.get(grp) ?? [];
    const lastIndex = Math.max(grp === 0 ? C.FIRST_INO - 2 : -1, ...list.map((p) => (p.ino - 1) % g.inodesPerGroup));
    if (lastIndex < 0) continue;
    const table = new Uint8Array(Math.ceil(((lastIndex + 1) * C.INODE_SIZE) / BS) * BS);
    if (grp === 0) {
      if (plan.journalBlocks > 0) {
        const root = roots.get(C.JOURNAL_INO)!;
        const epoch = { sec: plan.timestamp, nsec: 0 };
        encodeInode(table, (C.JOURNAL_INO - 1) * C.INODE_SIZE, C.JOURNAL_INO, {
          mode: C.S_IFREG | 0o600,
          uid: 0,
          gid: 0,
          size: plan.journalBlocks * BS,
          linksCount: 1,
          blocks512: (plan.journalBlocks + extentTreeBlockCount(plan.journalExtents.length)) * (BS / 512),
          flags: C.INODE_FLAG_EXTENTS,
          iBlock: root.iBlock,
          generation: 0,
          fileAcl: 0,
          atime: epoch,
          ctime: epoch,
          mtime: epoch,
          crtime: epoch,
          xattrArea: null,
        }, seed);
      }
      // The other reserved inodes (1, 3-7, 9, 10) are zero but still carry valid checksums.
      if (seed !== null) {
        for (let ino = 1; ino < C.FIRST_INO; ino++) {
          if (ino === C.ROOT_INO || (ino === C.JOURNAL_INO && plan.journalBlocks > 0)) continue;
          encodeInode(table, (ino - 1) * C.INODE_SIZE, ino, emptyReservedInode(), seed);
        }
      }
    }
    for (const p of list) {
      const index = (p.ino - 1) % g.inodesPerGroup;
      encodeInode(table, index * C.INODE_SIZE, p.ino, inodeFieldsFor(p, roots.get(p.ino)!), seed);
      if (p.node.kind === "dir") usage[grp]!.usedDirs++;
    }
    usage[grp]!.usedInodes = lastIndex + 1;
    writeAll(fd, table, plan.groupLayouts[grp]!.inodeTable * BS);
  }
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

function tempPathFor(out: string): string {
  const rand = Math.random().toString(36).slice(2, 10);
  return join(dirname(out), `.${basename(out)}.tmp-${process.pid}-${rand}`);
}

export async function writeExt4Image(root: FsNode, sources: ByteSource[], options: WriteImageOptions): Promise<WriteStats> {
  const plan = planExt4(root, options);
  const g = plan.geometry;
  const tmp = tempPathFor(options.out);
  let fd: number;
  try {
    fd = openSync(tmp, "wx", 0o644);
  } catch (err) {
    throw new Error(`cannot create the image next to ${options.out}: ${(err as Error).message}`);
  }
  try {
    // BANGER_TIMING=1 prints wall and CPU milliseconds per phase (for profiling, see bench/).
    let cpu0 = process.cpuUsage();
    const timing = process.env.BANGER_TIMING
      ? (label: string, t0: number) => {
          const cpu = process.cpuUsage(cpu0);
          cpu0 = process.cpuUsage();
          console.error(`${label}: ${(performance.now() - t0).toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms cpu`);
        }
      : null;
    let t0 = performance.now();
    ftruncateSync(fd, g.blocksCount * BS);
    const sink = new BlockSink(fd);
    copyFileData(plan, sources, sink, fd);
    timing?.("file data", t0);
    t0 = performance.now();
    const roots = writeMetadataBlocks(plan, sink);
    timing?.("metadata blocks", t0);
    t0 = performance.now();
    const usage = writeInodeTables(plan, roots, fd);
    timing?.("inode tables", t0);
    t0 = performance.now();

    const reservedRanges = plan.allocator.reserved;
    const tables = buildGroupTables(g, plan.groupLayouts, usage, [reservedRanges, plan.allocator.allocated], plan.fsCsumSeed);
    writeAll(fd, tables.blockBitmaps, plan.groupLayouts[0]!.blockBitmap * BS);
    writeAll(fd, tables.inodeBitmaps, plan.groupLayouts[0]!.inodeBitmap * BS);
    const backups = backupGroups(g.groupCount);
    for (const grp of backups) writeAll(fd, tables.descriptors, (grp * C.BLOCKS_PER_GROUP + 1) * BS);

    const journalRoot = roots.get(C.JOURNAL_INO);
    const fields = {
      geometry: g,
      freeBlocksCount: tables.freeBlocks,
      freeInodesCount: tables.freeInodes,
      uuid: plan.uuid,
      hashSeed: plan.hashSeed,
      volumeName: Buffer.from(options.label ?? "", "utf8"),
      metadataCsum: plan.fsCsumSeed !== null,
      journalBlocks: plan.journalBlocks,
      journalIBlock: journalRoot?.iBlock ?? null,
      journalSize: plan.journalBlocks * BS,
      timestamp: plan.timestamp,
    };
    for (const grp of backups) {
      const position = grp === 0 ? C.SUPERBLOCK_OFFSET : grp * C.BLOCKS_PER_GROUP * BS;
      writeAll(fd, encodeSuperblock(fields, grp), position);
    }
    timing?.("bitmaps, descriptors, superblocks", t0);
    t0 = performance.now();
    closeSync(fd);
    renameSync(tmp, options.out);
    timing?.("close and rename", t0);
    return {
      sizeBytes: g.blocksCount * BS,
      blocksUsed: g.blocksCount - tables.freeBlocks,
      inodesUsed: plan.inodesUsed,
      uuid: Buffer.from(plan.uuid).toString("hex").replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-"),
    };
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    if (err instanceof Error && !err.message.includes(displayName(options.out))) {
      err.message = `writing ${options.out}: ${err.message}`;
    }
    throw err;
  }
}
