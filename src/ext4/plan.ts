// The layout plan: from the tree alone, decide everything about the image — its size and
// geometry, every inode's number, every file's blocks and extents, directory contents, xattr
// placement and the journal — before a single byte is written. Pure apart from reading
// in-memory file bytes.
import { displayName, type FsNode } from "../tree/index.ts";
import { BlockAllocator, OutOfSpaceError } from "./allocator.ts";
import * as C from "./constants.ts";
import { directoryBlockCount } from "./htree.ts";
import { appendExtents, extentCount, extentTreeBlockCount, type ExtentList } from "./extents.ts";
import { computeGeometry, defaultJournalBlocks, fixedMetadataBlocks, type Geometry } from "./geometry.ts";
import { IN_INODE_XATTR_SPACE } from "./inode.ts";
import { planXattrs, XATTR_REFCOUNT_MAX, type XattrPlan } from "./xattrs.ts";
import { crc32c } from "./crc32c.ts";

export class Ext4PlanError extends Error {
  override name = "Ext4PlanError";
}

export interface Ext4Options {
  /** Image size in bytes; default max(1 GiB, used × 1.25). */
  size?: number;
  /** "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"; default derived from `identity` (or the tree). */
  uuid?: string;
  label?: string;
  /** false: leave out metadata_csum for kernels older than 3.18. */
  metadataCsum: boolean;
  /** Bytes identifying the input (e.g. a hash of the tar headers) to derive UUID and hash seed. */
  identity?: Uint8Array;
  /** Superblock timestamps (s_mkfs_time, s_wtime); default 0, for reproducible output (the CLI passes SOURCE_DATE_EPOCH). */
  timestamp?: number;
}

/** A directory's entries (without "." and ".."), as parallel arrays: names are the tree's byte strings. */
export interface DirEntries {
  names: string[];
  inos: number[];
  types: Uint8Array;
}

/** One inode of the image and everything decided about it. Kept small: there may be millions. */
export interface PlannedInode {
  ino: number;
  node: FsNode;
  linksCount: number;
  /** The directory holding its first name (the root's parent is itself), and that name. */
  parent: PlannedInode;
  name: string;
  /** Directories: their entries. */
  entries: DirEntries | null;
  /** Blocks of content: directory blocks, a slow symlink's block, or a file's non-zero blocks. */
  dataBlocks: number;
  /** Non-zero logical block runs of a regular file [first, count, ...]; dropped once allocated. */
  logicalRuns: number[] | null;
  extents: ExtentList;
  treeStart: number;
  treeBlocks: number;
  xattrs: XattrPlan | null;
  xattrBlock: number;
}

/** "/a/b/c" as a byte string, by walking up the parents. */
export function rawPathOf(p: PlannedInode): string {
  const parts: string[] = [];
  for (let q = p; q.parent !== q; q = q.parent) parts.push(q.name);
  return "/" + parts.reverse().join("/");
}

/** "/a/b/c" for messages. */
export function pathOf(p: PlannedInode): string {
  return displayName(rawPathOf(p));
}

export interface XattrBlockPlan {
  block: Uint8Array;
  blockNr: number;
  refcount: number;
}

export interface Ext4Plan {
  geometry: Geometry;
  options: Ext4Options;
  uuid: Uint8Array;
  hashSeed: Uint8Array;
  fsCsumSeed: number | null;
  timestamp: number;
  /** Indexed by ino - 1 for ino ≥ 11, plus root at ROOT_INO; sparse array. */
  inodes: PlannedInode[];
  inodesUsed: number;
  journalBlocks: number;
  journalExtents: ExtentList;
  journalTreeStart: number;
  groupLayouts: Array<{ blockBitmap: number; inodeBitmap: number; inodeTable: number }>;
  xattrBlocks: XattrBlockPlan[];
  /** Regular files with data, in the order their bytes are copied (source, then offset). */
  dataOrder: PlannedInode[];
  allocator: BlockAllocator;
}

export const LOST_FOUND_BLOCKS = 4; // as mke2fs: room for e2fsck to reconnect files without allocating
const MAX_SYMLINK = C.BLOCK_SIZE - 1;

function fileTypeOf(node: FsNode): number {
  switch (node.kind) {
    case "file":
      return C.FT_REG_FILE;
    case "dir":
      return C.FT_DIR;
    case "symlink":
      return C.FT_SYMLINK;
    case "chardev":
      return C.FT_CHRDEV;
    case "blockdev":
      return C.FT_BLKDEV;
    case "fifo":
      return C.FT_FIFO;
    case "socket":
      return C.FT_SOCK;
  }
}

/** Non-zero 4 KiB block runs of in-memory bytes, or null when every block has data. */
function zeroRunsOf(bytes: Uint8Array): number[] | null {
  const blocks = Math.ceil(bytes.length / C.BLOCK_SIZE);
  const runs: number[] = [];
  let anyZero = false;
  for (let b = 0; b < blocks; b++) {
    const start = b * C.BLOCK_SIZE;
    const end = Math.min(start + C.BLOCK_SIZE, bytes.length);
    let zero = true;
    for (let i = start; i < end; i++) {
      if (bytes[i] !== 0) {
        zero = false;
        break;
      }
    }
    if (zero) {
      anyZero = true;
      continue;
    }
    const n = runs.length;
    if (n > 0 && runs[n - 2]! + runs[n - 1]! === b) runs[n - 1]!++;
    else runs.push(b, 1);
  }
  return anyZero ? runs : null;
}

function logicalRunsOf(node: FsNode, p: PlannedInode): number[] {
  const blocks = Math.ceil(node.size / C.BLOCK_SIZE);
  if (node.bytes) {
    if (node.bytes.length !== node.size) throw new Ext4PlanError(`${pathOf(p)}: size ${node.size} but ${node.bytes.length} bytes given`);
    return zeroRunsOf(node.bytes) ?? (blocks > 0 ? [0, blocks] : []);
  }
  if (node.size > 0 && !node.data) throw new Ext4PlanError(`${pathOf(p)}: regular file of ${node.size} bytes has no data source`);
  const runs = node.data?.runs;
  if (!runs) return blocks > 0 ? [0, blocks] : [];
  const out = Array.from(runs);
  for (let i = 0; i < out.length; i += 2) {
    if (out[i]! + out[i + 1]! > blocks) throw new Ext4PlanError(`${pathOf(p)}: data run beyond the file's ${blocks} blocks`);
  }
  return out;
}

/**
 * Allocates a regular file's blocks: each non-zero logical run [first, count, ...] in turn,
 * appended to `extents`. The one rule both the planner and the streamed-data predictor follow.
 */
export function placeFileData(alloc: BlockAllocator, logicalRuns: ArrayLike<number>, extents: ExtentList): void {
  for (let i = 0; i < logicalRuns.length; i += 2) {
    const physical: number[] = [];
    alloc.runs(logicalRuns[i + 1]!, "file data", physical);
    appendExtents(extents, logicalRuns[i]!, physical);
  }
}

function sumRuns(runs: number[]): number {
  let n = 0;
  for (let i = 1; i < runs.length; i += 2) n += runs[i]!;
  return n;
}

function parseUuid(text: string): Uint8Array {
  const hex = text.replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Ext4PlanError(`invalid UUID "${text}": expected 32 hex digits`);
  const bytes = Uint8Array.from(Buffer.from(hex, "hex"));
  if (bytes.every((b) => b === 0)) throw new Ext4PlanError("the UUID must not be all zeros");
  return bytes;
}

function derive(identity: Uint8Array, purpose: string): Uint8Array {
  const h = new Bun.CryptoHasher("sha256").update(purpose).update(identity).digest();
  const out = Uint8Array.from(h.subarray(0, 16));
  out[6] = (out[6]! & 0x0f) | 0x40; // version 4 layout
  out[8] = (out[8]! & 0x3f) | 0x80; // RFC 4122 variant
  return out;
}

interface Numbering {
  inodes: PlannedInode[];
  lostFound: PlannedInode;
}

function newPlanned(ino: number, node: FsNode, parent: PlannedInode | null, name: string): PlannedInode {
  const p: PlannedInode = {
    ino,
    node,
    linksCount: 0,
    parent: parent!,
    name,
    entries: null,
    dataBlocks: 0,
    logicalRuns: null,
    extents: [],
    treeStart: 0,
    treeBlocks: 0,
    xattrs: null,
    xattrBlock: 0,
  };
  if (!parent) p.parent = p;
  return p;
}

function validName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\0");
}

/** Gives every distinct node an inode number (root 2, lost+found 11, then depth-first in name order). */
function numberInodes(root: FsNode): Numbering {
  if (root.kind !== "dir" || !root.children) throw new Ext4PlanError("the tree's root must be a directory");
  const inodes: PlannedInode[] = [];
  // Nodes already numbered, to find hardlinks (directories cannot be, so they are not kept).
  const numbered = new Map<FsNode, PlannedInode>();
  const rootPlan = newPlanned(C.ROOT_INO, root, null, "");
  inodes.push(rootPlan);

  let lostFoundNode = root.children.get("lost+found");
  if (lostFoundNode && lostFoundNode.kind !== "dir") {
    throw new Ext4PlanError("/lost+found in the input is not a directory; e2fsck needs it to be one");
  }
  const synthesizedLostFound = !lostFoundNode;
  if (!lostFoundNode) {
    lostFoundNode = {
      kind: "dir",
      mode: 0o700,
      uid: 0,
      gid: 0,
      atime: root.mtime,
      mtime: root.mtime,
      ctime: root.mtime,
      xattrs: new Map(),
      size: 0,
      children: new Map(),
    };
  }
  const lostFound = newPlanned(C.LOST_FOUND_INO, lostFoundNode, rootPlan, "lost+found");
  inodes.push(lostFound);

  let nextIno = C.FIRST_INO + 1;
  const stack: PlannedInode[] = [rootPlan];
  const seenDirs = new Set<FsNode>([root]);
  while (stack.length > 0) {
    const dirPlan = stack.pop()!;
    const dir = dirPlan.node;
    const names = [...dir.children!.keys()].sort();
    if (dir === root && synthesizedLostFound) names.unshift("lost+found");
    const entries: DirEntries = { names, inos: new Array<number>(names.length), types: new Uint8Array(names.length) };
    let subdirs = 0;
    const descend: PlannedInode[] = [];
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      if (!validName(name)) {
        throw new Ext4PlanError(`invalid name "${displayName(name)}" in ${pathOf(dirPlan)}: names are 1-255 bytes without "/" or NUL`);
      }
      const child: FsNode = dir === root && name === "lost+found" ? lostFoundNode : dir.children!.get(name)!;
      let plan: PlannedInode;
      if (child.kind === "dir") {
        if (seenDirs.has(child)) throw new Ext4PlanError(`${pathOf(dirPlan)}/${displayName(name)}: a directory cannot have a second name (hardlinked directory)`);
        seenDirs.add(child);
        plan = child === lostFoundNode ? lostFound : newPlanned(nextIno++, child, dirPlan, name);
        if (plan !== lostFound) inodes.push(plan);
        descend.push(plan);
        subdirs++;
      } else {
        let known = numbered.get(child);
        if (!known) {
          known = newPlanned(nextIno++, child, dirPlan, name);
          inodes.push(known);
          numbered.set(child, known);
        }
        plan = known;
      }
      plan.linksCount++;
      // i_links_count is 16 bits; the kernel refuses a link past EXT4_LINK_MAX (65000) and
      // e2fsck rejects a wrapped count. Directories instead record 1 above it (dir_nlink).
      if (plan.linksCount > C.LINK_MAX && child.kind !== "dir") {
        throw new Ext4PlanError(`${displayName(rawPathOf(dirPlan).replace(/\/$/, "") + "/" + name)}: more than ${C.LINK_MAX} names (hardlinks) for one inode, the ext4 limit`);
      }
      entries.inos[i] = plan.ino;
      entries.types[i] = fileTypeOf(child);
    }
    dirPlan.entries = entries;
    // A directory's links: its name in the parent (counted above) + "." + one ".." per subdirectory.
    dirPlan.linksCount += 1 + subdirs;
    for (let i = descend.length - 1; i >= 0; i--) stack.push(descend[i]!);
  }
  rootPlan.linksCount += 1; // the root's ".." names itself
  inodes.sort((a, b) => a.ino - b.ino);
  return { inodes, lostFound };
}

/** Everything the layout needs, except block numbers. */
function measure(n: Numbering, metadataCsum: boolean): { contentBlocks: number; extentBlocksEstimate: number; xattrBlocks: number } {
  let contentBlocks = 0;
  let extentBlocksEstimate = 0;
  const xattrBlocks = new Map<string, number>(); // block key -> inodes using it
  for (const p of n.inodes) {
    const node = p.node;
    if (node.xattrs.size > 0) {
      try {
        p.xattrs = planXattrs(node.xattrs, IN_INODE_XATTR_SPACE);
      } catch (err) {
        throw new Ext4PlanError(`${pathOf(p)}: ${(err as Error).message}`);
      }
      if (p.xattrs.block) xattrBlocks.set(p.xattrs.blockKey!, (xattrBlocks.get(p.xattrs.blockKey!) ?? 0) + 1);
    }
    let runsForEstimate: number[] = [];
    switch (node.kind) {
      case "dir": {
        const count =
          p.ino === C.LOST_FOUND_INO && p.entries!.names.length === 0
            ? LOST_FOUND_BLOCKS
            : directoryBlockCount(p.entries!.names, { metadataCsum });
        p.dataBlocks = count;
        runsForEstimate = [0, count];
        break;
      }
      case "symlink": {
        const len = (node.target ?? "").length;
        if (len === 0) throw new Ext4PlanError(`${pathOf(p)}: empty symlink target`);
        if (len > MAX_SYMLINK) throw new Ext4PlanError(`${pathOf(p)}: symlink target of ${len} bytes exceeds ${MAX_SYMLINK}`);
        if (len >= 60) {
          p.dataBlocks = 1;
          runsForEstimate = [0, 1];
        }
        break;
      }
      case "file": {
        if (!Number.isSafeInteger(node.size) || node.size < 0) throw new Ext4PlanError(`${pathOf(p)}: invalid size ${node.size}`);
        p.logicalRuns = logicalRunsOf(node, p);
        p.dataBlocks = sumRuns(p.logicalRuns);
        runsForEstimate = p.logicalRuns;
        break;
      }
      default:
        break;
    }
    contentBlocks += p.dataBlocks;
    if (runsForEstimate.length > 0) {
      // Each run may be split by the 32768-block extent limit and once more by a backup group.
      let extents = 0;
      for (let i = 1; i < runsForEstimate.length; i += 2) extents += Math.ceil(runsForEstimate[i]! / C.MAX_EXTENT_LEN) + 1;
      extentBlocksEstimate += extentTreeBlockCount(extents);
    }
  }
  let xattrBlockCount = 0;
  for (const users of xattrBlocks.values()) xattrBlockCount += Math.ceil(users / XATTR_REFCOUNT_MAX);
  return { contentBlocks, extentBlocksEstimate, xattrBlocks: xattrBlockCount };
}

/**
 * The largest image: 2^32 blocks of 4 KiB (16 TiB). Every block number then fits in 32 bits, the
 * range the writer is exercised in; beyond it the group count makes the bitmaps and descriptors
 * (built in memory) grow past reason, and common hosts (ext4) cannot hold the file anyway.
 */
export const MAX_IMAGE_BYTES = 2 ** 32 * C.BLOCK_SIZE;

/**
 * Refuses a requested image size the format cannot take, before anything is allocated or written
 * (callers check it up front; planExt4 checks again).
 */
export function checkImageSize(size: number | undefined): void {
  if (size === undefined) return;
  if (!Number.isSafeInteger(size) || size <= 0) throw new Ext4PlanError(`--size ${size} is not a positive whole number of bytes`);
  if (size > MAX_IMAGE_BYTES) {
    throw new Ext4PlanError(`--size ${(size / 2 ** 40).toFixed(1)} TiB is too large: images are at most 16 TiB (2^32 blocks of 4 KiB)`);
  }
}

const MIN_DEFAULT_BLOCKS = (1024 * 1024 * 1024) / C.BLOCK_SIZE; // 1 GiB
const ALIGN_BLOCKS = 256; // default sizes are whole MiB

function chooseGeometry(requested: number | undefined, dynamicBlocks: number, inodesNeeded: number): { geometry: Geometry; journalBlocks: number; required: number } {
  const requiredFor = (g: Geometry) => {
    const journal = defaultJournalBlocks(g.blocksCount);
    return { journal, required: dynamicBlocks + journal + fixedMetadataBlocks(g) };
  };
  const trimTinyLastGroup = (blocks: number) => {
    const rem = blocks % C.BLOCKS_PER_GROUP;
    const groups = Math.ceil(blocks / C.BLOCKS_PER_GROUP);
    const gdt = Math.ceil((groups * C.DESC_SIZE) / C.BLOCK_SIZE);
    return rem > 0 && rem < 1 + gdt + 64 && blocks > C.BLOCKS_PER_GROUP ? blocks - rem : blocks;
  };
  if (requested !== undefined) {
    checkImageSize(requested);
    const blocks = trimTinyLastGroup(Math.floor(requested / C.BLOCK_SIZE));
    if (blocks === 0) throw new Ext4PlanError(`--size ${requested} bytes is too small: not even one 4 KiB block`);
    const g = computeGeometry(blocks, inodesNeeded);
    const needMiB = (b: number) => Math.ceil((b * C.BLOCK_SIZE) / 1048576);
    if (!g) throw new Ext4PlanError(`--size ${requested} bytes is too small: ${inodesNeeded} inodes do not fit in ${blocks} blocks`);
    const { journal, required } = requiredFor(g);
    if (required > blocks) {
      throw new Ext4PlanError(
        `--size ${(requested / 1048576).toFixed(1)} MiB is too small: the content needs at least ${needMiB(required)} MiB (${required} blocks of 4 KiB including metadata and journal)`,
      );
    }
    return { geometry: g, journalBlocks: journal, required };
  }
  let blocks = MIN_DEFAULT_BLOCKS;
  for (let round = 0; round < 20; round++) {
    const g = computeGeometry(blocks, inodesNeeded);
    if (g) {
      const { journal, required } = requiredFor(g);
      const want = Math.max(MIN_DEFAULT_BLOCKS, Math.ceil((required * 1.25) / ALIGN_BLOCKS) * ALIGN_BLOCKS);
      if (want <= blocks) return { geometry: g, journalBlocks: journal, required };
      blocks = trimTinyLastGroup(want) < want ? want + ALIGN_BLOCKS : want;
    } else {
      blocks *= 2;
    }
  }
  throw new Ext4PlanError("could not find a filesystem size for this tree");
}

/** A digest of the tree's metadata, for when the caller has no identity of the input. */
function treeIdentity(n: Numbering): Uint8Array {
  const h = new Bun.CryptoHasher("sha256");
  for (const p of n.inodes) {
    const node = p.node;
    h.update(`${rawPathOf(p)}\0${node.kind}\0${node.mode}\0${node.uid}\0${node.gid}\0${node.size}\0${node.mtime.sec}\0${node.mtime.nsec}\0${node.target ?? ""}\n`);
  }
  return Uint8Array.from(h.digest());
}

// planExt4's loops over every inode live in these small functions: a loop inside planExt4 made
// the JIT compile all of it (~18 KB of code, 5-8 ms of its thread) for code that runs once.

/** Regular files with data blocks, in source order (by source, then data offset). */
function fileDataOrder(inodes: PlannedInode[]): PlannedInode[] {
  const dataOrder: PlannedInode[] = [];
  for (const p of inodes) if (p.node.kind === "file" && p.dataBlocks > 0) dataOrder.push(p);
  dataOrder.sort((a, b) => {
    const da = a.node.data;
    const db = b.node.data;
    if (!da || !db) return da ? -1 : db ? 1 : a.ino - b.ino;
    return da.source - db.source || da.offset - db.offset;
  });
  return dataOrder;
}

function placeAllFileData(alloc: BlockAllocator, dataOrder: PlannedInode[]): void {
  for (const p of dataOrder) {
    placeFileData(alloc, p.logicalRuns!, p.extents);
    p.logicalRuns = null;
  }
}

/** Directory and slow-symlink blocks, and shared xattr blocks, in inode order. */
function placeDirectoryBlocks(alloc: BlockAllocator, inodes: PlannedInode[], xattrBlockFor: (xp: XattrPlan) => XattrBlockPlan): void {
  for (const p of inodes) {
    if (p.xattrs?.block) p.xattrBlock = xattrBlockFor(p.xattrs).blockNr;
    if (p.node.kind === "dir" || (p.node.kind === "symlink" && p.dataBlocks > 0)) {
      const runs: number[] = [];
      alloc.runs(p.dataBlocks, `${p.node.kind} ${pathOf(p)}`, runs);
      appendExtents(p.extents, 0, runs);
    }
  }
}

function placeExtentTrees(alloc: BlockAllocator, inodes: PlannedInode[]): void {
  for (const p of inodes) {
    p.treeBlocks = extentTreeBlockCount(extentCount(p.extents));
    if (p.treeBlocks > 0) p.treeStart = alloc.contiguous(p.treeBlocks, `extent tree of ${pathOf(p)}`);
  }
}

export function planExt4(root: FsNode, options: Ext4Options): Ext4Plan {
  if (options.label !== undefined && Buffer.byteLength(options.label, "utf8") > 16) {
    throw new Ext4PlanError(`volume label "${options.label}" is longer than 16 bytes`);
  }
  const numbering = numberInodes(root);
  const { metadataCsum } = options;
  const measured = measure(numbering, metadataCsum);
  const inodesNeeded = numbering.inodes[numbering.inodes.length - 1]!.ino;
  const dynamicBlocks = measured.contentBlocks + measured.xattrBlocks + measured.extentBlocksEstimate + 2; // + journal tree slack
  const { geometry, journalBlocks } = chooseGeometry(options.size, dynamicBlocks, inodesNeeded);

  const identity = options.identity ?? treeIdentity(numbering);
  const uuid = options.uuid ? parseUuid(options.uuid) : derive(identity, "banger ext4 uuid");
  const hashSeed = derive(identity, "banger ext4 directory hash seed");
  const fsCsumSeed = metadataCsum ? crc32c(0xffffffff, uuid) : null;
  const timestamp = options.timestamp ?? 0;

  const alloc = new BlockAllocator(geometry);
  try {
    // File data first, in source order, right after group 0's superblock and descriptors. Its
    // placement then depends on nothing but the descriptor table's size and the backup groups,
    // so a writer can predict it and copy the bytes while the tar is still being read
    // (streamed-data.ts). With flex_bg, the bitmaps and inode tables may sit anywhere.
    const dataOrder = fileDataOrder(numbering.inodes);
    placeAllFileData(alloc, dataOrder);

    // Fixed metadata, flex_bg style: every group's bitmaps and inode table packed together.
    const blockBitmaps = alloc.contiguous(geometry.groupCount, "block bitmaps");
    const inodeBitmaps = alloc.contiguous(geometry.groupCount, "inode bitmaps");
    const groupLayouts = [];
    for (let grp = 0; grp < geometry.groupCount; grp++) {
      groupLayouts.push({
        blockBitmap: blockBitmaps + grp,
        inodeBitmap: inodeBitmaps + grp,
        inodeTable: alloc.contiguous(geometry.inodeTableBlocksPerGroup, `inode table of group ${grp}`),
      });
    }

    const journalExtents: ExtentList = [];
    if (journalBlocks > 0) {
      const runs: number[] = [];
      alloc.runs(journalBlocks, "journal", runs);
      appendExtents(journalExtents, 0, runs);
    }

    // Directories, symlink blocks and xattr blocks (in inode order, for metadata locality).
    // Inodes with equal block xattrs share one block, up to the kernel's refcount limit.
    const xattrBlocks: XattrBlockPlan[] = [];
    const xattrByKey = new Map<string, XattrBlockPlan>();
    const xattrBlockFor = (xp: XattrPlan): XattrBlockPlan => {
      let entry = xattrByKey.get(xp.blockKey!);
      if (!entry || entry.refcount >= XATTR_REFCOUNT_MAX) {
        entry = { block: Uint8Array.from(xp.block!), blockNr: alloc.contiguous(1, "xattr block"), refcount: 0 };
        xattrBlocks.push(entry);
        xattrByKey.set(xp.blockKey!, entry);
      }
      entry.refcount++;
      return entry;
    };
    placeDirectoryBlocks(alloc, numbering.inodes, xattrBlockFor);
    // Extent tree blocks, now that every extent is known.
    let journalTreeStart = 0;
    const journalTree = extentTreeBlockCount(extentCount(journalExtents));
    if (journalTree > 0) journalTreeStart = alloc.contiguous(journalTree, "journal extent tree");
    placeExtentTrees(alloc, numbering.inodes);

    const plan: Ext4Plan = {
      geometry,
      options,
      uuid,
      hashSeed,
      fsCsumSeed,
      timestamp,
      inodes: numbering.inodes,
      inodesUsed: numbering.inodes.length + C.FIRST_INO - 2, // reserved inodes 1..10 count as used
      journalBlocks,
      journalExtents,
      journalTreeStart,
      groupLayouts,
      xattrBlocks,
      dataOrder,
      allocator: alloc,
    };
    return plan;
  } catch (err) {
    if (err instanceof OutOfSpaceError) {
      throw new Ext4PlanError(`image of ${(geometry.blocksCount * C.BLOCK_SIZE / 1048576).toFixed(1)} MiB is too small: ${err.message}`);
    }
    throw err;
  }
}
