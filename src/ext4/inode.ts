// The 256-byte inode (kernel docs: "Index Nodes"), with extra fields up to i_projid
// (i_extra_isize 32) and the in-inode extended attribute area after them.
import type { Timestamp } from "../tree/index.ts";
import { crc32c, crc32cU32 } from "./crc32c.ts";
import { EXTRA_ISIZE, INODE_SIZE } from "./constants.ts";

export interface InodeFields {
  /** File-type bits | permission bits. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linksCount: number;
  /** i_blocks in 512-byte units (huge_file: up to 48 bits). */
  blocks512: number;
  flags: number;
  iBlock: Uint8Array;
  generation: number;
  fileAcl: number;
  atime: Timestamp;
  ctime: Timestamp;
  mtime: Timestamp;
  crtime: Timestamp;
  /** In-inode xattr area (INODE_SIZE - 128 - EXTRA_ISIZE bytes), or null. */
  xattrArea: Uint8Array | null;
}

export const IN_INODE_XATTR_OFFSET = 128 + EXTRA_ISIZE;
export const IN_INODE_XATTR_SPACE = INODE_SIZE - IN_INODE_XATTR_OFFSET;

const MIN_SEC = -(2 ** 31);
const MAX_SEC = 2 ** 34 - 2 ** 31 - 1; // epoch bits 11 with the largest positive low word (year 2446)

const timeScratch = new DataView(new ArrayBuffer(8));

/**
 * Splits a time into the 32-bit seconds word and the *_extra word: 2 epoch bits extending
 * the signed seconds to 34 bits, then 30 bits of nanoseconds. Out-of-range times are clamped
 * to what ext4 can hold, as the kernel does.
 */
export function encodeTime(t: Timestamp): { seconds: number; extra: number } {
  putTime(timeScratch, 0, 0, 4, t);
  return { seconds: timeScratch.getUint32(0, true), extra: timeScratch.getUint32(4, true) };
}

export function inodeChecksumSeed(fsCsumSeed: number, ino: number, generation: number): number {
  return crc32cU32(crc32cU32(fsCsumSeed, ino), generation);
}

/** encodeTime's words written straight into an inode at `base` (no allocation per inode). */
function putTime(v: DataView, base: number, secOff: number, extraOff: number, t: Timestamp): void {
  const sec = Math.min(Math.max(Math.floor(t.sec), MIN_SEC), MAX_SEC);
  const low = sec >>> 0;
  const epoch = (sec - (low | 0)) / 2 ** 32;
  const nsec = Math.min(Math.max(Math.floor(t.nsec), 0), 999_999_999);
  v.setUint32(base + secOff, low, true);
  v.setUint32(base + extraOff, ((nsec << 2) | (epoch & 3)) >>> 0, true);
}

const views = new WeakMap<ArrayBufferLike, DataView>();
function viewOf(out: Uint8Array): { v: DataView; base: number } {
  let v = views.get(out.buffer);
  if (!v) views.set(out.buffer, (v = new DataView(out.buffer)));
  return { v, base: out.byteOffset };
}

/** Writes inode `ino` at `out[offset..offset+256)` (which must be zero) and, with metadata_csum, its checksum. */
export function encodeInode(out: Uint8Array, offset: number, ino: number, f: InodeFields, fsCsumSeed: number | null): void {
  const { v, base: b } = viewOf(out);
  const o = b + offset;
  v.setUint16(o + 0x0, f.mode, true);
  v.setUint16(o + 0x2, f.uid & 0xffff, true);
  v.setUint32(o + 0x4, f.size >>> 0, true);
  v.setUint16(o + 0x18, f.gid & 0xffff, true);
  v.setUint16(o + 0x1a, f.linksCount, true);
  v.setUint32(o + 0x1c, f.blocks512 >>> 0, true);
  v.setUint32(o + 0x20, f.flags, true);
  out.set(f.iBlock, offset + 0x28);
  v.setUint32(o + 0x64, f.generation, true);
  v.setUint32(o + 0x68, f.fileAcl >>> 0, true);
  v.setUint32(o + 0x6c, Math.floor(f.size / 2 ** 32), true);
  v.setUint16(o + 0x74, Math.floor(f.blocks512 / 2 ** 32) & 0xffff, true);
  v.setUint16(o + 0x76, Math.floor(f.fileAcl / 2 ** 32) & 0xffff, true);
  v.setUint16(o + 0x78, (f.uid >>> 16) & 0xffff, true);
  v.setUint16(o + 0x7a, (f.gid >>> 16) & 0xffff, true);
  v.setUint16(o + 0x80, EXTRA_ISIZE, true);
  putTime(v, o, 0x08, 0x8c, f.atime);
  putTime(v, o, 0x0c, 0x84, f.ctime);
  putTime(v, o, 0x10, 0x88, f.mtime);
  putTime(v, o, 0x90, 0x94, f.crtime);
  if (f.xattrArea) out.set(f.xattrArea, offset + IN_INODE_XATTR_OFFSET);
  if (fsCsumSeed !== null) {
    // Checksum fields (l_i_checksum_lo at 0x7C, i_checksum_hi at 0x82) are zero while hashing.
    let crc = inodeChecksumSeed(fsCsumSeed, ino, f.generation);
    crc = crc32c(crc, out, offset, offset + INODE_SIZE);
    v.setUint16(o + 0x7c, crc & 0xffff, true);
    v.setUint16(o + 0x82, crc >>> 16, true);
  }
}
