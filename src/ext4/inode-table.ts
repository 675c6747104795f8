// The inodes: every inode's record in its group's inode table (inode.ts encodes one), with
// what the record points to and only the plan knows how to fill: directory blocks (htree.ts),
// slow symlink blocks, extent tree blocks (extents.ts), the reserved inodes and the journal
// (journal.ts), and the shared xattr blocks (xattrs.ts). One phase of the writer (write.ts).
import type { FsNode } from "../tree/index.ts";
import { nameToBytes } from "../tree/index.ts";
import * as C from "./constants.ts";
import { modeWithAccessAcl } from "./acl.ts";
import { crc32c } from "./crc32c.ts";
import type { DirChild, DirScratch } from "./dirents.ts";
import { buildExtentTree, extentCount, extentTreeBlockCount, type ExtentList } from "./extents.ts";
import type { GroupUsage } from "./groups.ts";
import { buildDirectory } from "./htree.ts";
import { encodeInode, inodeChecksumSeed, type InodeFields } from "./inode.ts";
import { encodeJournalSuperblock } from "./journal.ts";
import { LOST_FOUND_BLOCKS, pathOf, type Ext4Plan, type PlannedInode } from "./plan.ts";
import { sealXattrBlock } from "./xattrs.ts";
import type { BlockTarget } from "../io/block-io.ts";

const BS = C.BLOCK_SIZE;

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
 * Every inode in number order: its content (directory blocks, slow symlink), its extent tree
 * blocks and its record in the inode table, one group's table at a time; then the shared xattr
 * blocks. Returns each group's inode usage for the bitmaps and descriptors.
 */
export function writeInodes(plan: Ext4Plan, sink: BlockTarget): GroupUsage[] {
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
