// Block group descriptors (Documentation/filesystems/ext4/group_descr.rst): 32 bytes, or
// s_desc_size (64) bytes with the 64bit feature, where the *_hi halves live at 0x20..0x3F.
import { hiLo, u16, u32 } from "./bytes.ts";

export interface GroupDesc {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
  freeBlocksCount: number;
  freeInodesCount: number;
  usedDirsCount: number;
  flags: number;
  excludeBitmap: number;
  /** crc32c of the block bitmap: low 16 bits, plus high 16 bits when desc_size >= 64. */
  blockBitmapCsum: number;
  inodeBitmapCsum: number;
  itableUnused: number;
  checksum: number;
}

export const BG_INODE_UNINIT = 0x1;
export const BG_BLOCK_UNINIT = 0x2;
export const BG_INODE_ZEROED = 0x4;
export const BG_CHECKSUM_OFFSET = 0x1e;

export function parseGroupDesc(b: Uint8Array, off: number, descSize: number): GroupDesc {
  const big = descSize >= 64;
  const hi32 = (o: number): number => (big ? u32(b, off + o) : 0);
  const hi16 = (o: number): number => (big ? u16(b, off + o) : 0);
  return {
    blockBitmap: hiLo(u32(b, off + 0x0), hi32(0x20)),
    inodeBitmap: hiLo(u32(b, off + 0x4), hi32(0x24)),
    inodeTable: hiLo(u32(b, off + 0x8), hi32(0x28)),
    freeBlocksCount: u16(b, off + 0xc) + hi16(0x2c) * 0x10000,
    freeInodesCount: u16(b, off + 0xe) + hi16(0x2e) * 0x10000,
    usedDirsCount: u16(b, off + 0x10) + hi16(0x30) * 0x10000,
    flags: u16(b, off + 0x12),
    excludeBitmap: hiLo(u32(b, off + 0x14), hi32(0x34)),
    blockBitmapCsum: (u16(b, off + 0x18) | (hi16(0x38) << 16)) >>> 0,
    inodeBitmapCsum: (u16(b, off + 0x1a) | (hi16(0x3a) << 16)) >>> 0,
    itableUnused: u16(b, off + 0x1c) + hi16(0x32) * 0x10000,
    checksum: u16(b, off + BG_CHECKSUM_OFFSET),
  };
}

/** sparse_super: backups of the superblock and GDT only in groups 0, 1 and powers of 3, 5, 7. */
export function groupHasSuperblock(group: number, sparseSuper: boolean): boolean {
  if (!sparseSuper || group <= 1) return true;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < group) p *= base;
    if (p === group) return true;
  }
  return false;
}
