// Filesystem geometry: how many blocks and groups, where the superblock backups and
// descriptor tables sit, how big the journal is. Pure arithmetic, no I/O.
import { BLOCK_SIZE, BLOCKS_PER_GROUP, DESC_SIZE, INODE_SIZE } from "./constants.ts";

export interface Geometry {
  blocksCount: number;
  groupCount: number;
  inodesPerGroup: number;
  inodeTableBlocksPerGroup: number;
  /** Blocks of group descriptors (primary and each backup). */
  gdtBlocks: number;
  descSize: number;
}

/** sparse_super: groups 0, 1 and powers of 3, 5 and 7 carry a superblock + descriptor copy. */
export function hasSuperblockBackup(group: number): boolean {
  if (group <= 1) return true;
  for (const base of [3, 5, 7]) {
    let n = base;
    while (n < group) n *= base;
    if (n === group) return true;
  }
  return false;
}

export function backupGroups(groupCount: number): number[] {
  const groups: number[] = [];
  for (let g = 0; g < groupCount; g++) if (hasSuperblockBackup(g)) groups.push(g);
  return groups;
}

/** Journal size in blocks for a filesystem of `blocks` 4 KiB blocks, following mke2fs's table. */
export function defaultJournalBlocks(blocks: number): number {
  if (blocks < 2048) return 0;
  if (blocks < 32768) return 1024;
  if (blocks < 256 * 1024) return 4096;
  if (blocks < 512 * 1024) return 8192;
  if (blocks < 4096 * 1024) return 16384;
  if (blocks < 8192 * 1024) return 32768;
  if (blocks < 16384 * 1024) return 65536;
  if (blocks < 32768 * 1024) return 131072;
  return 262144;
}

const INODES_PER_BLOCK = BLOCK_SIZE / INODE_SIZE;
/** mke2fs's default bytes-per-inode ratio: room for the VM to create files later. */
const BYTES_PER_INODE = 16384;
const MAX_INODES_PER_GROUP = BLOCK_SIZE * 8;

/**
 * Geometry for `blocksCount` blocks holding at least `minInodes` inodes.
 * Returns null when that many inodes cannot fit (the caller must grow the filesystem).
 */
export function computeGeometry(blocksCount: number, minInodes: number): Geometry | null {
  // No groups: nothing to put inodes in (and the ratios below would divide by zero).
  if (blocksCount < 1) return null;
  const groupCount = Math.ceil(blocksCount / BLOCKS_PER_GROUP);
  const byRatio = Math.ceil((blocksCount * BLOCK_SIZE) / BYTES_PER_INODE / groupCount);
  const byNeed = Math.ceil(minInodes / groupCount);
  let inodesPerGroup = Math.max(byRatio, byNeed, INODES_PER_BLOCK);
  inodesPerGroup = Math.ceil(inodesPerGroup / INODES_PER_BLOCK) * INODES_PER_BLOCK;
  if (inodesPerGroup > MAX_INODES_PER_GROUP) {
    if (byNeed > MAX_INODES_PER_GROUP) return null;
    inodesPerGroup = MAX_INODES_PER_GROUP;
  }
  // The total inode count is a 32-bit field.
  if (inodesPerGroup * groupCount > 0xffffffff) inodesPerGroup = Math.floor(0xffffffff / groupCount / INODES_PER_BLOCK) * INODES_PER_BLOCK;
  return {
    blocksCount,
    groupCount,
    inodesPerGroup,
    inodeTableBlocksPerGroup: inodesPerGroup / INODES_PER_BLOCK,
    gdtBlocks: Math.ceil((groupCount * DESC_SIZE) / BLOCK_SIZE),
    descSize: DESC_SIZE,
  };
}

/** Blocks every filesystem of this geometry spends on fixed metadata (superblocks, descriptors, bitmaps, inode tables). */
export function fixedMetadataBlocks(g: Geometry): number {
  const backups = backupGroups(g.groupCount).length;
  return backups * (1 + g.gdtBlocks) + g.groupCount * (2 + g.inodeTableBlocksPerGroup);
}
