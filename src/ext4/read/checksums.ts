// metadata_csum verification (Documentation/filesystems/ext4/checksums.rst), independent of the
// writer: every checksum is recomputed from the bytes on disk and compared. Without
// metadata_csum, group descriptors with gdt_csum (uninit_bg) are checked with crc16.
import { crc32c } from "../crc32c.ts";
import { RO_COMPAT_METADATA_CSUM, S_IFDIR } from "../constants.ts";
import type { Ext4Reader } from "./reader.ts";
import { le32, le64, u16, u32 } from "./bytes.ts";
import { DIR_TAIL_SIZE, hasDirTail, parseDxEntries, parseDxRootInfo } from "./dir.ts";
import { EXTENT_ENTRY_SIZE, EXTENT_HEADER_SIZE } from "./extents.ts";
import { BG_BLOCK_UNINIT, BG_CHECKSUM_OFFSET, BG_INODE_UNINIT } from "./group.ts";
import { I_CHECKSUM_HI_OFFSET, I_CHECKSUM_LO_OFFSET } from "./inode.ts";
import { INCOMPAT_CSUM_SEED, RO_COMPAT_GDT_CSUM, SB_CHECKSUM_OFFSET } from "./superblock.ts";
import { XATTR_BLOCK_CHECKSUM_OFFSET, parseXattrBlock, xattrBlockHash, xattrEntryHash } from "./xattr.ts";

const INODE_FLAG_INDEX = 0x1000;
const INODE_FLAG_EXTENTS = 0x80000;

// CRC-16 (poly 0x8005 reflected = 0xA001), raw register, for gdt_csum descriptors.
const CRC16 = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
  CRC16[i] = c;
}
export function crc16(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc & 0xffff;
  for (let i = start; i < end; i++) c = (CRC16[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)) & 0xffff;
  return c;
}

function withZeroed(b: Uint8Array, ranges: Array<[number, number]>): Uint8Array {
  const copy = b.slice();
  for (const [off, len] of ranges) copy.fill(0, off, off + len);
  return copy;
}

function hex(n: number): string {
  return "0x" + (n >>> 0).toString(16);
}

/** The metadata_csum seed: s_checksum_seed with metadata_csum_seed, else crc32c(~0, uuid). */
export function checksumSeed(r: Ext4Reader): number {
  const sb = r.superblock;
  return sb.featureIncompat & INCOMPAT_CSUM_SEED ? sb.checksumSeed : crc32c(0xffffffff, sb.uuid);
}

export function inodeSeed(seed: number, ino: number, generation: number): number {
  return crc32c(crc32c(seed, le32(ino)), le32(generation));
}

function isAllZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function bitSet(bitmap: Uint8Array, bit: number): boolean {
  return (bitmap[bit >>> 3]! & (1 << (bit & 7))) !== 0;
}

/** Problems found (empty when every checksum matches). */
export function verifyChecksums(r: Ext4Reader): string[] {
  const problems: string[] = [];
  const sb = r.superblock;
  const csum = (sb.featureRoCompat & RO_COMPAT_METADATA_CSUM) !== 0;
  const gdtCsum = (sb.featureRoCompat & RO_COMPAT_GDT_CSUM) !== 0;
  const seed = checksumSeed(r);
  const big = sb.descSize >= 64;

  if (csum) {
    if (sb.checksumType !== 1) problems.push(`superblock: s_checksum_type ${sb.checksumType} (want 1 = crc32c)`);
    const want = crc32c(0xffffffff, r.rawSuperblock, 0, SB_CHECKSUM_OFFSET);
    if (want !== sb.checksum) problems.push(`superblock: s_checksum ${hex(sb.checksum)}, computed ${hex(want)}`);
  }

  // Group descriptors and bitmaps.
  for (let g = 0; g < r.groupCount; g++) {
    const raw = r.rawGroupDesc(g);
    const gd = r.groupDescriptor(g);
    if (csum) {
      const c = crc32c(crc32c(seed, le32(g)), withZeroed(raw, [[BG_CHECKSUM_OFFSET, 2]])) & 0xffff;
      if (c !== gd.checksum) problems.push(`group ${g}: bg_checksum ${hex(gd.checksum)}, computed ${hex(c)}`);
    } else if (gdtCsum) {
      let c = crc16(0xffff, sb.uuid);
      c = crc16(c, le32(g));
      c = crc16(c, raw, 0, BG_CHECKSUM_OFFSET);
      if (raw.length > BG_CHECKSUM_OFFSET + 2) c = crc16(c, raw, BG_CHECKSUM_OFFSET + 2, raw.length);
      if (c !== gd.checksum) problems.push(`group ${g}: bg_checksum (crc16) ${hex(gd.checksum)}, computed ${hex(c)}`);
    }
    if (!csum) continue;
    const mask = big ? 0xffffffff : 0xffff;
    if (!(gd.flags & BG_BLOCK_UNINIT)) {
      const bm = r.readBlock(gd.blockBitmap);
      const c = (crc32c(seed, bm, 0, sb.clustersPerGroup / 8) & mask) >>> 0;
      if (c !== gd.blockBitmapCsum) problems.push(`group ${g}: block bitmap (block ${gd.blockBitmap}) checksum ${hex(gd.blockBitmapCsum)}, computed ${hex(c)}`);
    }
    if (!(gd.flags & BG_INODE_UNINIT)) {
      const bm = r.readBlock(gd.inodeBitmap);
      const c = (crc32c(seed, bm, 0, sb.inodesPerGroup / 8) & mask) >>> 0;
      if (c !== gd.inodeBitmapCsum) problems.push(`group ${g}: inode bitmap (block ${gd.inodeBitmap}) checksum ${hex(gd.inodeBitmapCsum)}, computed ${hex(c)}`);
    }
  }
  if (!csum) return problems;

  const seenXattrBlocks = new Set<number>();
  for (let g = 0; g < r.groupCount; g++) {
    const gd = r.groupDescriptor(g);
    if (gd.flags & BG_INODE_UNINIT) continue;
    const bitmap = r.readBlock(gd.inodeBitmap);
    const used = sb.inodesPerGroup - gd.itableUnused;
    for (let i = 0; i < used; i++) {
      if (!bitSet(bitmap, i)) continue;
      const ino = g * sb.inodesPerGroup + i + 1;
      try {
        checkInode(r, ino, seed, problems, seenXattrBlocks);
      } catch (e) {
        problems.push(`inode ${ino}: ${(e as Error).message}`);
      }
    }
  }
  return problems;
}

function checkInode(r: Ext4Reader, ino: number, seed: number, problems: string[], seenXattrBlocks: Set<number>): void {
  const raw = r.rawInode(ino);
  const inode = r.inode(ino);
  const hasHi = raw.length > 128 && inode.extraIsize >= I_CHECKSUM_HI_OFFSET + 2 - 128;
  const zeroed: Array<[number, number]> = [[I_CHECKSUM_LO_OFFSET, 2]];
  if (hasHi) zeroed.push([I_CHECKSUM_HI_OFFSET, 2]);
  const iseed = inodeSeed(seed, ino, inode.generation);
  let c = crc32c(iseed, withZeroed(raw, zeroed));
  if (!hasHi) c &= 0xffff;
  c >>>= 0;
  if (c !== inode.checksum && !isAllZero(raw)) problems.push(`inode ${ino}: checksum ${hex(inode.checksum)}, computed ${hex(c)}`);
  if (inode.mode === 0 || inode.linksCount === 0) return;

  if (inode.flags & INODE_FLAG_EXTENTS) {
    r.walkExtentNodes(ino, (node, bytes) => {
      const tail = EXTENT_HEADER_SIZE + EXTENT_ENTRY_SIZE * node.header.max;
      if (tail + 4 > bytes.length) {
        problems.push(`inode ${ino}: extent block ${node.block} has eh_max ${node.header.max}, no room for the tail checksum`);
        return;
      }
      const want = crc32c(iseed, bytes, 0, tail);
      const got = u32(bytes, tail);
      if (want !== got) problems.push(`inode ${ino}: extent block ${node.block} tail checksum ${hex(got)}, computed ${hex(want)}`);
    });
  }

  if ((inode.mode & 0xf000) === S_IFDIR) checkDirectory(r, ino, iseed, inode.flags, problems);

  if (inode.fileAcl && !seenXattrBlocks.has(inode.fileAcl)) {
    seenXattrBlocks.add(inode.fileAcl);
    const block = inode.fileAcl;
    const b = r.readBlock(block);
    const want = crc32c(crc32c(seed, le64(block)), withZeroed(b, [[XATTR_BLOCK_CHECKSUM_OFFSET, 4]]));
    const got = u32(b, XATTR_BLOCK_CHECKSUM_OFFSET);
    if (want !== got) problems.push(`inode ${ino}: xattr block ${block} checksum ${hex(got)}, computed ${hex(want)}`);
    const { header, entries } = parseXattrBlock(b, `inode ${ino} xattr block ${block}`);
    const hashes: number[] = [];
    for (const e of entries) {
      if (e.valueInum !== 0) {
        hashes.push(e.hash);
        continue;
      }
      const signed = xattrEntryHash(e.name, e.value, true);
      const unsigned = xattrEntryHash(e.name, e.value, false);
      if (e.hash !== signed && e.hash !== unsigned)
        problems.push(`inode ${ino}: xattr block ${block} entry ${e.fullName} e_hash ${hex(e.hash)}, computed ${hex(signed)}`);
      hashes.push(e.hash);
    }
    const bh = xattrBlockHash(hashes);
    // mke2fs -d leaves h_hash 0 (e2fsck does not check it); a non-zero one must be right.
    if (header.hash !== 0 && bh !== header.hash) problems.push(`inode ${ino}: xattr block ${block} h_hash ${hex(header.hash)}, computed ${hex(bh)}`);
  }
}

function checkDirectory(r: Ext4Reader, ino: number, iseed: number, flags: number, problems: string[]): void {
  const blocks = new Map(r.dirBlocks(ino));
  const interior = new Set<number>();
  const checkDx = (logical: number, b: Uint8Array, countOffset: number): ReturnType<typeof parseDxEntries> => {
    const dx = parseDxEntries(b, countOffset, `directory inode ${ino} dx block ${logical}`);
    const tailOff = countOffset + dx.limit * 8;
    if (tailOff + 8 > b.length) {
      problems.push(`directory inode ${ino}: dx block ${logical} limit ${dx.limit} leaves no room for dx_tail`);
      return dx;
    }
    let want = crc32c(iseed, b, 0, countOffset + dx.count * 8);
    // dx_tail: dt_reserved, then dt_checksum counted as zero.
    want = crc32c(crc32c(want, b, tailOff, tailOff + 4), new Uint8Array(4));
    const got = u32(b, tailOff + 4);
    if (want !== got) problems.push(`directory inode ${ino}: dx block ${logical} dx_tail checksum ${hex(got)}, computed ${hex(want)}`);
    return dx;
  };
  if (flags & INODE_FLAG_INDEX) {
    const root = blocks.get(0);
    if (!root) throw new Error(`htree directory without block 0`);
    interior.add(0);
    const info = parseDxRootInfo(root, `directory inode ${ino} dx_root`);
    const walk = (logical: number, b: Uint8Array, countOffset: number, levelsLeft: number): void => {
      const dx = checkDx(logical, b, countOffset);
      if (levelsLeft === 0) return;
      for (const e of dx.entries) {
        const child = blocks.get(e.block);
        if (!child) throw new Error(`dx block ${logical} points at missing logical block ${e.block}`);
        interior.add(e.block);
        // Interior node: fake dirent (inode 0, rec_len = block size), countlimit at 8.
        if (u32(child, 0) !== 0 || u16(child, 4) !== (child.length & 0xffff))
          problems.push(`directory inode ${ino}: dx node block ${e.block} does not start with an empty full-block dirent`);
        walk(e.block, child, 8, levelsLeft - 1);
      }
    };
    walk(0, root, 0x20, info.indirectLevels);
  }
  for (const [logical, b] of blocks) {
    if (interior.has(logical)) continue;
    if (!hasDirTail(b)) {
      problems.push(`directory inode ${ino}: leaf block ${logical} has no checksum tail entry`);
      continue;
    }
    const want = crc32c(iseed, b, 0, b.length - DIR_TAIL_SIZE);
    const got = u32(b, b.length - 4);
    if (want !== got) problems.push(`directory inode ${ino}: leaf block ${logical} tail checksum ${hex(got)}, computed ${hex(want)}`);
  }
}
