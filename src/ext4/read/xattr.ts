// Extended attributes (Documentation/filesystems/ext4/attributes.rst): an in-inode area after
// i_extra_isize (magic, then entries whose value offsets count from the first entry) and one
// external block (32-byte header, entries, values; offsets count from the block start).
import { XATTR_MAGIC } from "../constants.ts";
import { u16, u32, u8 } from "./bytes.ts";

export interface XattrEntry {
  nameIndex: number;
  /** Suffix after the index's prefix, byte string. */
  name: string;
  fullName: string;
  valueOffs: number;
  valueInum: number;
  valueSize: number;
  hash: number;
  /** The value, unless it lives in an EA inode (valueInum != 0). */
  value: Uint8Array;
  /** Offset of the entry in the area/block parsed. */
  entryOffset: number;
}

const PREFIXES: Record<number, string> = {
  1: "user.",
  2: "system.posix_acl_access",
  3: "system.posix_acl_default",
  4: "trusted.",
  6: "security.",
  7: "system.",
  8: "system.richacl",
};

export const XATTR_BLOCK_HEADER_SIZE = 32;
export const XATTR_BLOCK_CHECKSUM_OFFSET = 0x10;

export interface XattrBlockHeader {
  magic: number;
  refcount: number;
  blocks: number;
  hash: number;
  checksum: number;
}

export function parseXattrBlockHeader(b: Uint8Array): XattrBlockHeader {
  return { magic: u32(b, 0), refcount: u32(b, 4), blocks: u32(b, 8), hash: u32(b, 12), checksum: u32(b, 16) };
}

/**
 * Entries from `entriesStart` until the 4-byte zero terminator; values at valueBase + e_value_offs
 * within `b`, bounded by `areaEnd`.
 */
export function parseXattrEntries(b: Uint8Array, entriesStart: number, valueBase: number, areaEnd: number, where: string): XattrEntry[] {
  const out: XattrEntry[] = [];
  let off = entriesStart;
  while (off + 4 <= areaEnd && u32(b, off) !== 0) {
    if (off + 16 > areaEnd) throw new Error(`${where}: xattr entry at ${off} runs past the area end ${areaEnd}`);
    const nameLen = u8(b, off);
    const nameIndex = u8(b, off + 1);
    const valueOffs = u16(b, off + 2);
    const valueInum = u32(b, off + 4);
    const valueSize = u32(b, off + 8);
    const hash = u32(b, off + 12);
    if (off + 16 + nameLen > areaEnd) throw new Error(`${where}: xattr name at ${off} runs past the area end`);
    const name = Buffer.from(b.buffer, b.byteOffset + off + 16, nameLen).toString("latin1");
    const prefix = PREFIXES[nameIndex];
    if (prefix === undefined) throw new Error(`${where}: xattr entry "${name}" has unknown name index ${nameIndex}`);
    let value = new Uint8Array(0);
    if (valueInum === 0 && valueSize > 0) {
      const start = valueBase + valueOffs;
      if (start + valueSize > areaEnd)
        throw new Error(`${where}: value of xattr ${prefix}${name} (offs ${valueOffs}, size ${valueSize}) runs past the area end`);
      value = b.slice(start, start + valueSize);
    }
    out.push({ nameIndex, name, fullName: prefix + name, valueOffs, valueInum, valueSize, hash, value, entryOffset: off });
    off += (16 + nameLen + 3) & ~3;
  }
  return out;
}

/** In-inode xattrs of a raw inode, or [] when the area is absent or lacks the magic. */
export function parseInodeXattrs(raw: Uint8Array, extraIsize: number, where: string): XattrEntry[] {
  const start = 128 + extraIsize;
  if (raw.length <= 128 || start + 4 > raw.length) return [];
  if (u32(raw, start) !== XATTR_MAGIC) return [];
  return parseXattrEntries(raw, start + 4, start + 4, raw.length, `${where} (in-inode xattrs)`);
}

export function parseXattrBlock(b: Uint8Array, where: string): { header: XattrBlockHeader; entries: XattrEntry[] } {
  const header = parseXattrBlockHeader(b);
  if (header.magic !== XATTR_MAGIC) throw new Error(`${where}: bad xattr block magic 0x${header.magic.toString(16)}`);
  return { header, entries: parseXattrEntries(b, XATTR_BLOCK_HEADER_SIZE, 0, b.length, where) };
}

/** e_hash of one entry: name bytes (as signed chars), then the value as little-endian words. */
export function xattrEntryHash(name: string, value: Uint8Array, signedChars = true): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (signedChars && c > 127) c -= 256;
    h = ((h << 5) ^ (h >>> 27) ^ c) >>> 0;
  }
  const padded = new Uint8Array((value.length + 3) & ~3);
  padded.set(value);
  for (let i = 0; i < padded.length; i += 4) h = ((h << 16) ^ (h >>> 16) ^ u32(padded, i)) >>> 0;
  return h >>> 0;
}

/** h_hash of a block: fold of all entry hashes; 0 if any entry hash is 0. */
export function xattrBlockHash(entryHashes: number[]): number {
  let h = 0;
  for (const e of entryHashes) {
    if (e === 0) return 0;
    h = ((h << 16) ^ (h >>> 16) ^ e) >>> 0;
  }
  return h >>> 0;
}
