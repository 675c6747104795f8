// Whole-directory builder: one linear block, or a hash-indexed (htree) directory with a
// dx_root in block 0, optionally one level of dx_node blocks, and hash-ordered leaf blocks.
//
// Layout (logical blocks within the directory):
//   0                 dx_root: ".", ".." (rec_len spans the block), dx_root_info, count/limit, entries, dx_tail
//   1 .. nodes        dx_node blocks (only when indirect_levels = 1)
//   nodes+1 .. end    leaves, in hash order
//
// Leaf count depends only on the entry sizes, not their order, so directoryBlockCount can size
// the directory from name lengths alone: with S the largest rec_len and C the leaf capacity,
// L = ceil(total / (C - S + 4)) leaves always suffice when each leaf is filled up to the
// remaining average (see planLeaves), and leaves stay at least (C - S + 4) / C full.

import { BLOCK_SIZE, FT_DIR } from "./constants.ts";
import { crc32c } from "./crc32c.ts";
import { ext4DirHash, type DirHash } from "./dirhash.ts";
import {
  type DirBuildOptions,
  type DirChild,
  direntRecLen,
  fitsOneBlock,
  leafCapacity,
  measureNames,
  assertNoAdjacentDuplicates,
  validateChildren,
  writeDirent,
  writeLeafBlock,
  writeLinearBlock,
} from "./dirents.ts";

export type { DirBuildOptions, DirChild } from "./dirents.ts";

/** dx_tail: reserved u32 + checksum u32, at the end of dx_root/dx_node under metadata_csum. */
export const DX_TAIL_SIZE = 8;
/** Offset of count/limit in dx_root: "." (12) + ".." header and name (12) + dx_root_info (8). */
export const DX_ROOT_COUNT_OFFSET = 32;
/** Offset of count/limit in dx_node: after the fake empty dirent header. */
export const DX_NODE_COUNT_OFFSET = 8;
const DX_ENTRY_SIZE = 8;
const DX_ROOT_INFO_LENGTH = 8;
/** Without large_dir the tree has at most one level of dx_node blocks. */
export const MAX_INDIRECT_LEVELS = 1;

/** Index entries that fit dx_root. */
export function dxRootLimit(metadataCsum: boolean): number {
  return (BLOCK_SIZE - DX_ROOT_COUNT_OFFSET - (metadataCsum ? DX_TAIL_SIZE : 0)) / DX_ENTRY_SIZE;
}

/** Index entries that fit a dx_node. */
export function dxNodeLimit(metadataCsum: boolean): number {
  return (BLOCK_SIZE - DX_NODE_COUNT_OFFSET - (metadataCsum ? DX_TAIL_SIZE : 0)) / DX_ENTRY_SIZE;
}

export interface DirShape {
  /** 1 for a linear directory. */
  blockCount: number;
  indexed: boolean;
  leafCount: number;
  /** dx_node blocks (0 unless indirectLevels = 1). */
  nodeCount: number;
  indirectLevels: number;
}

/** The directory's shape from the children's rec_len total and maximum. */
export function planShape(total: number, maxRecLen: number, metadataCsum: boolean, childCount: number): DirShape {
  if (fitsOneBlock(total, metadataCsum)) {
    return { blockCount: 1, indexed: false, leafCount: 0, nodeCount: 0, indirectLevels: 0 };
  }
  const perLeaf = leafCapacity(metadataCsum) - maxRecLen + 4;
  const leafCount = Math.max(2, Math.ceil(total / perLeaf));
  if (leafCount > childCount) {
    // Impossible: more than one block of entries means at least 15 entries per 4 KiB of rec_len.
    throw new Error(`htree planner: ${leafCount} leaves for ${childCount} entries`);
  }
  const rootLimit = dxRootLimit(metadataCsum);
  if (leafCount <= rootLimit) {
    return { blockCount: 1 + leafCount, indexed: true, leafCount, nodeCount: 0, indirectLevels: 0 };
  }
  const nodeLimit = dxNodeLimit(metadataCsum);
  const nodeCount = Math.ceil(leafCount / nodeLimit);
  if (nodeCount > rootLimit) {
    throw new Error(
      `directory too large for a 2-level htree without large_dir: ${childCount} entries need ${leafCount} leaf blocks, ` +
        `more than ${rootLimit} x ${nodeLimit}`,
    );
  }
  return { blockCount: 1 + nodeCount + leafCount, indexed: true, leafCount, nodeCount, indirectLevels: 1 };
}

/** Block count only (for sizing); equals buildDirectory(...).blockCount. */
export function directoryBlockCount(
  names: ReadonlyArray<{ readonly length: number }>,
  opts: { metadataCsum: boolean },
): number {
  const { total, maxRecLen } = measureNames(names);
  return planShape(total, maxRecLen, opts.metadataCsum, names.length).blockCount;
}

/**
 * Splits entries of the given sizes (already in hash order) into exactly `leafCount` non-empty
 * runs of at most `capacity` bytes. Each leaf takes entries until it reaches the average of
 * what remains (ceil(remaining / leaves left)), the next entry no longer fits, or every later
 * leaf needs one of the remaining entries. Returns the start index of each leaf plus the end.
 */
export function planLeaves(sizes: ArrayLike<number>, leafCount: number, capacity: number): Uint32Array {
  const n = sizes.length;
  let remaining = 0;
  for (let i = 0; i < n; i++) remaining += sizes[i]!;
  const starts = new Uint32Array(leafCount + 1);
  let i = 0;
  for (let leaf = 0; leaf < leafCount; leaf++) {
    starts[leaf] = i;
    const leavesAfter = leafCount - 1 - leaf;
    const target = Math.ceil(remaining / (leafCount - leaf));
    let fill = 0;
    while (i < n) {
      const s = sizes[i]!;
      const empty = fill === 0;
      if (!empty && (fill >= target || fill + s > capacity || n - i <= leavesAfter)) break;
      if (fill + s > capacity) throw new Error(`htree planner: entry #${i} (${s} bytes) exceeds leaf capacity ${capacity}`);
      fill += s;
      i++;
    }
    if (fill === 0) throw new Error(`htree planner: leaf ${leaf} of ${leafCount} would be empty`);
    remaining -= fill;
  }
  if (i !== n) throw new Error(`htree planner: ${n - i} of ${n} entries do not fit ${leafCount} leaves`);
  starts[leafCount] = n;
  return starts;
}

/** Computes a name's hash; injectable for tests that force collisions. */
export type DirHashFn = (name: Uint8Array) => DirHash;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Indices of `children` in hash order: major hash, then minor hash, then name bytes, so the
 * output is deterministic. Sorts packed numeric keys (major * 2^21 + index, exact in a double)
 * natively and only falls back to a comparator inside runs of equal major hashes.
 */
export function hashOrder(children: ReadonlyArray<DirChild>, major: Uint32Array, minor: Uint32Array): Uint32Array {
  const n = children.length;
  const cmp = (a: number, b: number) =>
    major[a]! - major[b]! || minor[a]! - minor[b]! || compareBytes(children[a]!.name, children[b]!.name);
  if (n >= INDEX_SPAN) return Uint32Array.from({ length: n }, (_, i) => i).sort(cmp);
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = major[i]! * INDEX_SPAN + i;
  keys.sort();
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = keys[i]! % INDEX_SPAN;
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && major[order[j]!] === major[order[i]!]) j++;
    if (j - i > 1) order.subarray(i, j).sort(cmp);
    i = j;
  }
  return order;
}
const INDEX_SPAN = 2 ** 21;

function writeDxTail(buf: Uint8Array, view: DataView, blockStart: number, countOffset: number, limit: number, count: number, inodeCsumSeed: number): void {
  const tail = blockStart + countOffset + limit * DX_ENTRY_SIZE;
  view.setUint32(tail, 0, true); // dt_reserved
  let c = crc32c(inodeCsumSeed, buf, blockStart, blockStart + countOffset + count * DX_ENTRY_SIZE);
  c = crc32c(c, buf, tail, tail + 4); // dt_reserved
  c = crc32c(c, ZERO4); // dt_checksum counted as zero
  view.setUint32(tail + 4, c, true);
}
const ZERO4 = new Uint8Array(4);

/** Writes count/limit and entries (entry 0's hash slot holds count/limit). */
function writeDxEntries(
  view: DataView,
  at: number,
  limit: number,
  hashes: ArrayLike<number>,
  blocks: ArrayLike<number>,
  from: number,
  to: number,
): void {
  const count = to - from;
  if (count < 1 || count > limit) throw new Error(`htree: index block with ${count} entries (limit ${limit})`);
  view.setUint16(at, limit, true);
  view.setUint16(at + 2, count, true);
  view.setUint32(at + 4, blocks[from]!, true);
  for (let i = 1; i < count; i++) {
    view.setUint32(at + i * DX_ENTRY_SIZE, hashes[from + i]!, true);
    view.setUint32(at + i * DX_ENTRY_SIZE + 4, blocks[from + i]!, true);
  }
}

const DOT = Uint8Array.of(0x2e);
const DOTDOT = Uint8Array.of(0x2e, 0x2e);

/**
 * buildDirectory with an injectable hash function (tests use it to force hash collisions).
 * The hash values must be what ext4DirHash returns for opts (lowest bit clear).
 */
export function buildDirectoryWithHash(
  selfIno: number,
  parentIno: number,
  children: DirChild[],
  opts: DirBuildOptions,
  hashOf: DirHashFn,
): { bytes: Uint8Array; blockCount: number; indexed: boolean } {
  let total = 0;
  let maxRecLen = 0;
  for (const c of children) {
    const r = direntRecLen(c.name.length);
    total += r;
    if (r > maxRecLen) maxRecLen = r;
  }
  const shape = planShape(total, maxRecLen, opts.metadataCsum, children.length);
  const length = shape.blockCount * BLOCK_SIZE;
  const scratch = opts.scratch;
  let bytes: Uint8Array;
  let view: DataView;
  if (scratch) {
    if (scratch.buf.length < length) scratch.buf = new Uint8Array(Math.max(length, scratch.buf.length * 2));
    bytes = scratch.buf.subarray(0, length);
    bytes.fill(0);
    view = new DataView(bytes.buffer, bytes.byteOffset, length);
  } else {
    bytes = new Uint8Array(length);
    view = new DataView(bytes.buffer);
  }

  if (!opts.childrenChecked) validateChildren(children, selfIno, !shape.indexed);
  if (!shape.indexed) {
    writeLinearBlock(bytes, view, 0, selfIno, parentIno, children, opts);
    return { bytes, blockCount: 1, indexed: false };
  }
  writeIndexed(bytes, view, shape, selfIno, parentIno, children, opts, hashOf);
  return { bytes, blockCount: shape.blockCount, indexed: true };
}

/**
 * The htree of a directory larger than a block, into `bytes` (zeroed, shape.blockCount blocks).
 * Its own function so that the JIT's compile of the one-block case, run for most directories,
 * stays small.
 */
function writeIndexed(
  bytes: Uint8Array,
  view: DataView,
  shape: DirShape,
  selfIno: number,
  parentIno: number,
  children: DirChild[],
  opts: DirBuildOptions,
  hashOf: DirHashFn,
): void {
  // Hash order: major hash, then minor hash, then name bytes (deterministic output).
  const n = children.length;
  const major = new Uint32Array(n);
  const minor = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const h = hashOf(children[i]!.name);
    if (h.hash & 1) throw new Error(`htree: hash of child #${i} has the collision bit set (${h.hash.toString(16)})`);
    major[i] = h.hash;
    minor[i] = h.minorHash;
  }
  const order = hashOrder(children, major, minor);
  if (!opts.childrenChecked) assertNoAdjacentDuplicates(children, order, major, minor, selfIno);

  const sizes = new Uint16Array(n);
  for (let i = 0; i < n; i++) sizes[i] = direntRecLen(children[order[i]!]!.name.length);
  const { leafCount, nodeCount, indirectLevels } = shape;
  const starts = planLeaves(sizes, leafCount, leafCapacity(opts.metadataCsum));

  // Leaves and their index hashes: the first entry's hash, with the collision bit when the
  // previous leaf ends with the same hash (lookups then continue into this leaf).
  const firstLeafBlock = 1 + nodeCount;
  const leafHash = new Uint32Array(leafCount);
  const leafBlock = new Uint32Array(leafCount);
  for (let l = 0; l < leafCount; l++) {
    const from = starts[l]!;
    const to = starts[l + 1]!;
    leafBlock[l] = firstLeafBlock + l;
    const h = major[order[from]!]!;
    leafHash[l] = l > 0 && major[order[from - 1]!]! === h ? (h | 1) >>> 0 : h;
    writeLeafBlock(bytes, view, leafBlock[l]! * BLOCK_SIZE, children, order, from, to, opts);
  }

  // dx_root: "." and ".." spanning the block, dx_root_info.
  writeDirent(bytes, view, 0, selfIno, direntRecLen(1), DOT, FT_DIR);
  writeDirent(bytes, view, direntRecLen(1), parentIno, BLOCK_SIZE - direntRecLen(1), DOTDOT, FT_DIR);
  view.setUint32(24, 0, true); // reserved_zero
  bytes[28] = opts.hashVersion;
  bytes[29] = DX_ROOT_INFO_LENGTH;
  bytes[30] = indirectLevels;
  bytes[31] = 0; // unused_flags
  const rootLimit = dxRootLimit(opts.metadataCsum);
  let rootCount: number;
  if (indirectLevels === 0) {
    writeDxEntries(view, DX_ROOT_COUNT_OFFSET, rootLimit, leafHash, leafBlock, 0, leafCount);
    rootCount = leafCount;
  } else {
    const nodeLimit = dxNodeLimit(opts.metadataCsum);
    const nodeHash = new Uint32Array(nodeCount);
    const nodeBlock = new Uint32Array(nodeCount);
    for (let j = 0; j < nodeCount; j++) {
      // Spread leaves evenly over the nodes: each gets floor or ceil of leafCount / nodeCount.
      const from = Math.floor((j * leafCount) / nodeCount);
      const to = Math.floor(((j + 1) * leafCount) / nodeCount);
      const blockStart = (1 + j) * BLOCK_SIZE;
      nodeBlock[j] = 1 + j;
      nodeHash[j] = leafHash[from]!;
      view.setUint32(blockStart, 0, true); // fake dirent: inode 0
      view.setUint16(blockStart + 4, BLOCK_SIZE, true); // rec_len covers the block; name_len, file_type 0
      writeDxEntries(view, blockStart + DX_NODE_COUNT_OFFSET, nodeLimit, leafHash, leafBlock, from, to);
      if (opts.metadataCsum)
        writeDxTail(bytes, view, blockStart, DX_NODE_COUNT_OFFSET, nodeLimit, to - from, opts.inodeCsumSeed);
    }
    writeDxEntries(view, DX_ROOT_COUNT_OFFSET, rootLimit, nodeHash, nodeBlock, 0, nodeCount);
    rootCount = nodeCount;
  }
  if (opts.metadataCsum) writeDxTail(bytes, view, 0, DX_ROOT_COUNT_OFFSET, rootLimit, rootCount, opts.inodeCsumSeed);
}

/**
 * The directory's whole content: blockCount * 4096 bytes, checksums filled.
 * One block ⇒ linear (".", "..", children in the given order). More than one block ⇒ htree.
 */
export function buildDirectory(
  selfIno: number,
  parentIno: number,
  children: DirChild[],
  opts: DirBuildOptions,
): { bytes: Uint8Array; blockCount: number; indexed: boolean } {
  const { hashVersion, hashSeed, unsignedHash } = opts;
  return buildDirectoryWithHash(selfIno, parentIno, children, opts, (name) =>
    ext4DirHash(name, hashVersion, hashSeed, unsignedHash),
  );
}
