// Block groups: block bitmaps, inode bitmaps and the group descriptor table
// (kernel docs: "Block and inode Bitmaps", "Block Group Descriptors").
import { crc32c, crc32cU32 } from "./crc32c.ts";
import { BLOCK_SIZE, BLOCKS_PER_GROUP } from "./constants.ts";
import type { Geometry } from "./geometry.ts";

const BG_INODE_UNINIT = 0x1;
const BG_BLOCK_UNINIT = 0x2;
const BG_INODE_ZEROED = 0x4;

/** Sets bits [from, to) of a bitmap. */
export function setBits(bitmap: Uint8Array, from: number, to: number): void {
  let i = from;
  while (i < to && i & 7) bitmap[i >> 3]! |= 1 << (i & 7), i++;
  if (i + 8 <= to) {
    const firstByte = i >> 3;
    const bytes = (to - i) >> 3;
    bitmap.fill(0xff, firstByte, firstByte + bytes);
    i += bytes * 8;
  }
  while (i < to) bitmap[i >> 3]! |= 1 << (i & 7), i++;
}

export interface GroupLayout {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
}

export interface GroupUsage {
  /** Used inodes of this group form the prefix [0, usedInodes) (inodes are numbered densely). */
  usedInodes: number;
  usedDirs: number;
}

export interface GroupTables {
  blockBitmaps: Uint8Array; // groupCount blocks
  inodeBitmaps: Uint8Array; // groupCount blocks
  descriptors: Uint8Array; // gdtBlocks blocks
  freeBlocks: number;
  freeInodes: number;
}

/**
 * Builds every group's bitmaps and descriptor from the blocks in use (ascending [start, end)
 * interval lists, possibly several) and each group's inode usage.
 */
export function buildGroupTables(
  g: Geometry,
  layouts: GroupLayout[],
  usage: GroupUsage[],
  inUse: Array<Array<[number, number]>>,
  fsCsumSeed: number | null,
): GroupTables {
  const blockBitmaps = new Uint8Array(g.groupCount * BLOCK_SIZE);
  const inodeBitmaps = new Uint8Array(g.groupCount * BLOCK_SIZE);
  for (const list of inUse) {
    for (const [start, end] of list) {
      // Bitmaps of consecutive groups are consecutive, so one bit range spans them all.
      setBits(blockBitmaps, start, end);
    }
  }
  // Bits past the end of the filesystem (last group) are set, as e2fsck requires.
  setBits(blockBitmaps, g.blocksCount, g.groupCount * BLOCKS_PER_GROUP);

  const descriptors = new Uint8Array(g.gdtBlocks * BLOCK_SIZE);
  const dv = new DataView(descriptors.buffer);
  let freeBlocks = 0;
  let freeInodes = 0;
  const used = mergeRanges(inUse);
  let next = 0; // first merged range that may reach into the current group
  for (let grp = 0; grp < g.groupCount; grp++) {
    const bb = blockBitmaps.subarray(grp * BLOCK_SIZE, (grp + 1) * BLOCK_SIZE);
    const ib = inodeBitmaps.subarray(grp * BLOCK_SIZE, (grp + 1) * BLOCK_SIZE);
    const u = usage[grp]!;
    setBits(ib, 0, u.usedInodes);
    setBits(ib, g.inodesPerGroup, BLOCK_SIZE * 8);

    const groupBlocks = Math.min(BLOCKS_PER_GROUP, g.blocksCount - grp * BLOCKS_PER_GROUP);
    // Counted from the ranges, not the bits: a loop over 32k bits per group cost an optimizing
    // compile (~5 ms of JIT thread) for work done once.
    const groupStart = grp * BLOCKS_PER_GROUP;
    const groupEnd = groupStart + groupBlocks;
    while (next < used.length && used[next]![1] <= groupStart) next++;
    let usedBlocks = 0;
    for (let k = next; k < used.length && used[k]![0] < groupEnd; k++) {
      usedBlocks += Math.min(used[k]![1], groupEnd) - Math.max(used[k]![0], groupStart);
    }
    const free = groupBlocks - usedBlocks;
    const freeI = g.inodesPerGroup - u.usedInodes;
    freeBlocks += free;
    freeInodes += freeI;

    const o = grp * g.descSize;
    const l = layouts[grp]!;
    const put32 = (off: number, n: number) => {
      dv.setUint32(o + off, n >>> 0, true);
    };
    put32(0x00, l.blockBitmap);
    put32(0x04, l.inodeBitmap);
    put32(0x08, l.inodeTable);
    dv.setUint16(o + 0x0c, free & 0xffff, true);
    dv.setUint16(o + 0x0e, freeI & 0xffff, true);
    dv.setUint16(o + 0x10, u.usedDirs & 0xffff, true);
    dv.setUint16(o + 0x2c, free >>> 16, true);
    dv.setUint16(o + 0x2e, freeI >>> 16, true);
    dv.setUint16(o + 0x30, u.usedDirs >>> 16, true);
    put32(0x20, Math.floor(l.blockBitmap / 2 ** 32));
    put32(0x24, Math.floor(l.inodeBitmap / 2 ** 32));
    put32(0x28, Math.floor(l.inodeTable / 2 ** 32));
    if (fsCsumSeed !== null) {
      const unused = g.inodesPerGroup - u.usedInodes;
      // As e2fsck would leave them: groups without inodes or blocks in use are flagged
      // uninitialized (never the last group), so a preen pass finds nothing to change.
      let flags = BG_INODE_ZEROED;
      if (u.usedInodes === 0) flags |= BG_INODE_UNINIT;
      if (usedBlocks === 0 && grp !== g.groupCount - 1) flags |= BG_BLOCK_UNINIT;
      dv.setUint16(o + 0x12, flags, true);
      dv.setUint16(o + 0x1c, unused & 0xffff, true);
      dv.setUint16(o + 0x32, unused >>> 16, true);
      const bcsum = crc32c(fsCsumSeed, bb, 0, BLOCKS_PER_GROUP / 8);
      const icsum = crc32c(fsCsumSeed, ib, 0, g.inodesPerGroup / 8);
      dv.setUint16(o + 0x18, bcsum & 0xffff, true);
      dv.setUint16(o + 0x38, bcsum >>> 16, true);
      dv.setUint16(o + 0x1a, icsum & 0xffff, true);
      dv.setUint16(o + 0x3a, icsum >>> 16, true);
      // bg_checksum (0x1E) is zero while hashing the descriptor.
      const crc = crc32c(crc32cU32(fsCsumSeed, grp), descriptors, o, o + g.descSize);
      dv.setUint16(o + 0x1e, crc & 0xffff, true);
    }
  }
  return { blockBitmaps, inodeBitmaps, descriptors, freeBlocks, freeInodes };
}

/** Every list's [start, end) ranges in one ascending list, overlapping or touching ones merged. */
function mergeRanges(lists: Array<Array<[number, number]>>): Array<[number, number]> {
  const all = lists.flat().sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [start, end] of all) {
    if (end <= start) continue;
    const last = out[out.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}
