// Inode table entries (Documentation/filesystems/ext4/inodes.rst). The first 128 bytes are the
// original ext2 inode; i_extra_isize says how much of the rest (checksum_hi, *_extra times,
// crtime, version_hi, projid) is present.
import type { Timestamp } from "../../tree/types.ts";
import { hiLo, s32, u16, u32 } from "./bytes.ts";

export const GOOD_OLD_INODE_SIZE = 128;
export const I_CHECKSUM_LO_OFFSET = 0x7c;
export const I_CHECKSUM_HI_OFFSET = 0x82;

export interface Inode {
  ino: number;
  mode: number;
  /** 32-bit: l_i_uid_high from osd2 supplies the upper half. */
  uid: number;
  gid: number;
  size: number;
  linksCount: number;
  /** i_blocks in 512-byte units, whatever the on-disk unit (huge_file / EXT4_HUGE_FILE_FL). */
  blocks: number;
  flags: number;
  version: number;
  generation: number;
  /** i_file_acl: block number of the extended attribute block, 0 if none. */
  fileAcl: number;
  extraIsize: number;
  dtime: number;
  atime: Timestamp;
  mtime: Timestamp;
  ctime: Timestamp;
  /** Only when i_extra_isize covers it; otherwise undefined. */
  crtime?: Timestamp;
  projid: number;
  /** The 60 raw bytes of i_block (extent root, block map, fast symlink or device numbers). */
  iBlock: Uint8Array;
  /** checksum_lo | checksum_hi << 16 (hi only when i_extra_isize covers it). */
  checksum: number;
  /** The whole on-disk inode (s_inode_size bytes). */
  raw: Uint8Array;
}

/**
 * Seconds from a signed 32-bit base plus the two epoch bits of *_extra (bits 0-1) shifted to
 * bit 32; nanoseconds from bits 2-31. Epoch bits 00 with a negative base = before 1970.
 */
export function decodeTime(base: number, extra: number | undefined): Timestamp {
  if (extra === undefined) return { sec: base, nsec: 0 };
  return { sec: base + (extra & 3) * 0x1_0000_0000, nsec: extra >>> 2 };
}

export function parseInode(ino: number, b: Uint8Array, hugeFileFeature: boolean, blockSize: number): Inode {
  const extraIsize = b.length > GOOD_OLD_INODE_SIZE ? u16(b, 0x80) : 0;
  const has = (fieldOff: number, size: number): boolean =>
    b.length > GOOD_OLD_INODE_SIZE && fieldOff + size <= GOOD_OLD_INODE_SIZE + extraIsize;
  const extra = (off: number): number | undefined => (has(off, 4) ? u32(b, off) : undefined);
  const flags = u32(b, 0x20);
  let blocks = hugeFileFeature ? hiLo(u32(b, 0x1c), u16(b, 0x74)) : u32(b, 0x1c);
  if (hugeFileFeature && flags & 0x40000) blocks *= blockSize / 512;
  const checksumHi = has(I_CHECKSUM_HI_OFFSET, 2) ? u16(b, I_CHECKSUM_HI_OFFSET) : 0;
  return {
    ino,
    mode: u16(b, 0x0),
    uid: (u16(b, 0x2) | (u16(b, 0x78) << 16)) >>> 0,
    gid: (u16(b, 0x18) | (u16(b, 0x7a) << 16)) >>> 0,
    size: hiLo(u32(b, 0x4), u32(b, 0x6c)),
    linksCount: u16(b, 0x1a),
    blocks,
    flags,
    version: u32(b, 0x24),
    generation: u32(b, 0x64),
    fileAcl: hiLo(u32(b, 0x68), u16(b, 0x76)),
    extraIsize,
    dtime: u32(b, 0x14),
    atime: decodeTime(s32(b, 0x8), extra(0x8c)),
    mtime: decodeTime(s32(b, 0x10), extra(0x88)),
    ctime: decodeTime(s32(b, 0xc), extra(0x84)),
    crtime: has(0x90, 4) ? decodeTime(s32(b, 0x90), extra(0x94)) : undefined,
    projid: has(0x9c, 4) ? u32(b, 0x9c) : 0,
    iBlock: b.slice(0x28, 0x28 + 60),
    checksum: (u16(b, I_CHECKSUM_LO_OFFSET) | (checksumHi << 16)) >>> 0,
    raw: b,
  };
}
