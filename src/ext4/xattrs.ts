// ext4 extended attributes: placement into the in-inode area and one shared xattr block.
//
// On-disk layout (kernel Documentation/filesystems/ext4/attributes.rst, fs/ext4/xattr.h):
//   in-inode area, at inode offset 128 + i_extra_isize, up to the end of the inode:
//     u32 magic 0xEA020000, then the entry table, then free space, values packed at the end.
//     e_value_offs is relative to the first entry (just after the magic).
//   xattr block: 32-byte header {h_magic, h_refcount, h_blocks, h_hash, h_checksum, h_reserved[3]},
//     then the entry table (sorted by name index, name length, name), values packed from the end.
//     e_value_offs is relative to the block start.
//   entry: {u8 e_name_len, u8 e_name_index, u16 e_value_offs, u32 e_value_inum, u32 e_value_size,
//     u32 e_hash, name (not NUL-terminated)}, padded to 4 bytes; the table ends with 4 zero bytes.
//   values are padded to 4 bytes with zeros.
//
// Choices (all deterministic):
//   - security.capability, then security.selinux, then everything else in block order
//     (index, name length, name bytes) are offered to the inode, each placed if it still fits
//     (first fit); the rest goes to the block in block order.
//   - In-inode entries carry e_hash = 0 (as mke2fs writes them; e2fsck and the kernel accept 0 or
//     the real hash there). Block entries carry the real hash, the header the block hash.
//   - Empty values occupy no value space; their e_value_offs is the current end of the values
//     (as mke2fs writes them).
//   - Names are hashed as unsigned bytes (the kernel's hash since 6.2; e2fsck >= 1.47 accepts
//     both; identical to the old signed hash for ASCII names).

import { bytesToName, nameToBytes } from "../tree/names.ts";
import { crc32c, crc32cU32 } from "./crc32c.ts";
import { XATTR_MAGIC } from "./constants.ts";
import { vfsAclToExt4 } from "./acl.ts";

export const XATTR_INDEX_USER = 1;
export const XATTR_INDEX_POSIX_ACL_ACCESS = 2;
export const XATTR_INDEX_POSIX_ACL_DEFAULT = 3;
export const XATTR_INDEX_TRUSTED = 4;
export const XATTR_INDEX_SECURITY = 6;
export const XATTR_INDEX_SYSTEM = 7;
export const XATTR_INDEX_RICHACL = 8;

/** The kernel stops sharing an xattr block once this many inodes reference it. */
export const XATTR_REFCOUNT_MAX = 1024;

export const XATTR_BLOCK_SIZE = 4096;
/** sizeof(struct ext4_xattr_header) */
export const XATTR_BLOCK_HEADER_SIZE = 32;
/** sizeof(struct ext4_xattr_ibody_header): just the magic. */
export const XATTR_IBODY_HEADER_SIZE = 4;
/** sizeof(struct ext4_xattr_entry) without the name. */
export const XATTR_ENTRY_SIZE = 16;
const END_MARKER = 4;
const MAX_NAME_LEN = 255;

// Header field offsets.
const H_MAGIC = 0;
const H_REFCOUNT = 4;
const H_BLOCKS = 8;
const H_HASH = 12;
const H_CHECKSUM = 16;

// Entry field offsets.
const E_NAME_LEN = 0;
const E_NAME_INDEX = 1;
const E_VALUE_OFFS = 2;
const E_VALUE_INUM = 4;
const E_VALUE_SIZE = 8;
const E_HASH = 12;
const E_NAME = 16;

const NAME_HASH_SHIFT = 5;
const VALUE_HASH_SHIFT = 16;
const BLOCK_HASH_SHIFT = 16;

/** Full-name prefixes and their name indexes. Exact names come first, then prefixes. */
const EXACT_NAMES: ReadonlyArray<readonly [string, number]> = [
  ["system.posix_acl_access", XATTR_INDEX_POSIX_ACL_ACCESS],
  ["system.posix_acl_default", XATTR_INDEX_POSIX_ACL_DEFAULT],
  ["system.richacl", XATTR_INDEX_RICHACL],
];
const PREFIXES: ReadonlyArray<readonly [string, number]> = [
  ["user.", XATTR_INDEX_USER],
  ["trusted.", XATTR_INDEX_TRUSTED],
  ["security.", XATTR_INDEX_SECURITY],
  ["system.", XATTR_INDEX_SYSTEM],
];

/** Attributes offered to the inode before all others, in this order (read on every exec). */
const INODE_FIRST = ["security.capability", "security.selinux"];

export interface XattrPlan {
  /** Bytes for the in-inode xattr area (starts at inode offset 128 + i_extra_isize): the 4-byte
   *  magic header, entries, end marker, values; exactly `inodeSpace` bytes. null when empty. */
  inInode: Uint8Array | null;
  /** A full 4096-byte xattr block (h_refcount 1 until sealed, checksum 0), or null. */
  block: Uint8Array | null;
  /** Identity of the block's content for sharing one block between inodes with equal xattrs. */
  blockKey: string | null;
}

/** One attribute as stored: name index, name without prefix, on-disk value. */
export interface XattrEntry {
  fullName: string;
  nameIndex: number;
  name: Uint8Array;
  value: Uint8Array;
}

// Attribute names are byte strings (one char per byte), like every name in src/tree.

/** Rounds up to the 4-byte xattr alignment. */
function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** Bytes an entry (header + padded name) takes in the entry table: EXT4_XATTR_LEN. */
export function xattrEntryLen(nameLen: number): number {
  return pad4(XATTR_ENTRY_SIZE + nameLen);
}

/** Bytes a value takes in the value area: EXT4_XATTR_SIZE. */
export function xattrValueSize(valueLen: number): number {
  return pad4(valueLen);
}

/** Splits a full attribute name into its ext4 name index and the stored (prefix-less) name. */
export function splitXattrName(fullName: string): { nameIndex: number; name: Uint8Array } {
  for (const [exact, index] of EXACT_NAMES) {
    if (fullName === exact) return { nameIndex: index, name: new Uint8Array(0) };
  }
  for (const [prefix, index] of PREFIXES) {
    if (fullName.startsWith(prefix)) {
      const name = nameToBytes(fullName.slice(prefix.length));
      if (name.length === 0) {
        throw new Error(`xattr "${fullName}": empty name after the "${prefix}" prefix`);
      }
      if (name.length > MAX_NAME_LEN) {
        throw new Error(
          `xattr "${fullName.slice(0, 60)}...": name is ${name.length} bytes after the "${prefix}" prefix, max ${MAX_NAME_LEN}`,
        );
      }
      return { nameIndex: index, name };
    }
  }
  throw new Error(
    `xattr "${fullName.slice(0, 80)}": unknown namespace (expected user., trusted., security., system.)`,
  );
}

/** The full name for a stored (index, name) pair, or null for an index we do not know. */
export function joinXattrName(nameIndex: number, name: Uint8Array): string | null {
  const suffix = bytesToName(name);
  for (const [exact, index] of EXACT_NAMES) if (index === nameIndex) return exact + suffix;
  for (const [prefix, index] of PREFIXES) if (index === nameIndex) return prefix + suffix;
  return null;
}

/** Entry hash (ext4_xattr_hash_entry): name bytes rotated by 5, then value words by 16. */
export function xattrEntryHash(name: Uint8Array, value: Uint8Array): number {
  let hash = 0;
  for (let i = 0; i < name.length; i++) {
    hash = ((hash << NAME_HASH_SHIFT) ^ (hash >>> (32 - NAME_HASH_SHIFT)) ^ name[i]!) >>> 0;
  }
  const words = xattrValueSize(value.length) / 4;
  for (let w = 0; w < words; w++) {
    const o = w * 4;
    // little-endian word, bytes past the value are the zero padding
    const word =
      ((value[o] ?? 0) | ((value[o + 1] ?? 0) << 8) | ((value[o + 2] ?? 0) << 16) | ((value[o + 3] ?? 0) << 24)) >>>
      0;
    hash = ((hash << VALUE_HASH_SHIFT) ^ (hash >>> (32 - VALUE_HASH_SHIFT)) ^ word) >>> 0;
  }
  return hash >>> 0;
}

/** Block hash (ext4_xattr_rehash) over the entry hashes in table order; 0 if any entry hash is 0. */
export function xattrBlockHash(entryHashes: readonly number[]): number {
  let hash = 0;
  for (const h of entryHashes) {
    if (h === 0) return 0;
    hash = ((hash << BLOCK_HASH_SHIFT) ^ (hash >>> (32 - BLOCK_HASH_SHIFT)) ^ h) >>> 0;
  }
  return hash >>> 0;
}

/** Block order: name index, then name length, then name bytes. */
function compareEntries(a: XattrEntry, b: XattrEntry): number {
  if (a.nameIndex !== b.nameIndex) return a.nameIndex - b.nameIndex;
  if (a.name.length !== b.name.length) return a.name.length - b.name.length;
  for (let i = 0; i < a.name.length; i++) {
    if (a.name[i] !== b.name[i]) return a.name[i]! - b.name[i]!;
  }
  return 0;
}

function cost(e: XattrEntry): number {
  return xattrEntryLen(e.name.length) + xattrValueSize(e.value.length);
}

function toEntry(fullName: string, value: Uint8Array): XattrEntry {
  const { nameIndex, name } = splitXattrName(fullName);
  let stored = value;
  if (nameIndex === XATTR_INDEX_POSIX_ACL_ACCESS || nameIndex === XATTR_INDEX_POSIX_ACL_DEFAULT) {
    try {
      stored = vfsAclToExt4(value);
    } catch (err) {
      throw new Error(`xattr "${fullName}": ${(err as Error).message}`);
    }
  }
  return { fullName, nameIndex, name, value: stored };
}

/**
 * Writes entries and values into `area`: the entry table starts at `tableStart`, values are
 * packed downward from `area.length`, offsets are relative to `offsBase`. Returns entry hashes.
 */
function writeEntries(
  area: Uint8Array,
  entries: readonly XattrEntry[],
  tableStart: number,
  offsBase: number,
  withHash: boolean,
): number[] {
  const dv = new DataView(area.buffer, area.byteOffset, area.byteLength);
  const hashes: number[] = [];
  let pos = tableStart;
  let end = area.length;
  for (const e of entries) {
    dv.setUint8(pos + E_NAME_LEN, e.name.length);
    dv.setUint8(pos + E_NAME_INDEX, e.nameIndex);
    // An empty value takes no space; its offset points at the current end of the values,
    // as mke2fs writes it (the kernel writes 0; both readers ignore the offset of a 0-byte value).
    end -= xattrValueSize(e.value.length);
    area.set(e.value, end);
    const offs = end - offsBase;
    dv.setUint16(pos + E_VALUE_OFFS, offs, true);
    dv.setUint32(pos + E_VALUE_INUM, 0, true);
    dv.setUint32(pos + E_VALUE_SIZE, e.value.length, true);
    const hash = withHash ? xattrEntryHash(e.name, e.value) : 0;
    dv.setUint32(pos + E_HASH, hash, true);
    area.set(e.name, pos + E_NAME);
    hashes.push(hash);
    pos += xattrEntryLen(e.name.length);
  }
  // The 4 zero bytes that end the table are already zero; make sure they fit before the values.
  if (pos + END_MARKER > end) throw new Error("internal: xattr entry table overlaps values");
  return hashes;
}

function describe(entries: readonly XattrEntry[]): string {
  return entries.map((e) => `${e.fullName} (${e.value.length} bytes)`).join(", ");
}

/**
 * Places xattrs into the in-inode area of `inodeSpace` bytes and, for what does not fit, one
 * 4096-byte block. POSIX ACL values are converted to ext4's format. Throws naming the attribute
 * when the set does not fit, a name is too long, or a namespace is unknown.
 */
export function planXattrs(xattrs: ReadonlyMap<string, Uint8Array>, inodeSpace: number): XattrPlan {
  if (!Number.isInteger(inodeSpace) || inodeSpace < 0) {
    throw new Error(`planXattrs: bad in-inode space ${inodeSpace}`);
  }
  if (xattrs.size === 0) return { inInode: null, block: null, blockKey: null };

  const all: XattrEntry[] = [];
  for (const [fullName, value] of xattrs) all.push(toEntry(fullName, value));
  all.sort(compareEntries);

  const first = INODE_FIRST.map((n) => all.find((e) => e.fullName === n)).filter(
    (e): e is XattrEntry => e !== undefined,
  );
  const offerOrder = [...first, ...all.filter((e) => !first.includes(e))];

  // In-inode: magic + entries + end marker + values within inodeSpace.
  let inodeFree = inodeSpace - XATTR_IBODY_HEADER_SIZE - END_MARKER;
  const inInodeEntries: XattrEntry[] = [];
  const blockEntries: XattrEntry[] = [];
  for (const e of offerOrder) {
    const c = cost(e);
    if (c <= inodeFree) {
      inInodeEntries.push(e);
      inodeFree -= c;
    } else {
      blockEntries.push(e);
    }
  }
  blockEntries.sort(compareEntries);

  let blockFree = XATTR_BLOCK_SIZE - XATTR_BLOCK_HEADER_SIZE - END_MARKER;
  for (const e of blockEntries) {
    const c = cost(e);
    if (c > blockFree) {
      throw new Error(
        `xattr "${e.fullName}" (${e.value.length}-byte value) does not fit: ${inodeSpace}-byte in-inode area ` +
          `holds ${describe(inInodeEntries) || "nothing"}; the ${XATTR_BLOCK_SIZE}-byte xattr block has ` +
          `${blockFree} bytes left, the entry needs ${c} (large xattrs in separate inodes, ea_inode, are not supported)`,
      );
    }
    blockFree -= c;
  }

  let inInode: Uint8Array | null = null;
  if (inInodeEntries.length > 0) {
    inInode = new Uint8Array(inodeSpace);
    new DataView(inInode.buffer).setUint32(0, XATTR_MAGIC, true);
    writeEntries(inInode, inInodeEntries, XATTR_IBODY_HEADER_SIZE, XATTR_IBODY_HEADER_SIZE, false);
  }

  let block: Uint8Array | null = null;
  let blockKey: string | null = null;
  if (blockEntries.length > 0) {
    block = new Uint8Array(XATTR_BLOCK_SIZE);
    const dv = new DataView(block.buffer);
    dv.setUint32(H_MAGIC, XATTR_MAGIC, true);
    dv.setUint32(H_REFCOUNT, 1, true);
    dv.setUint32(H_BLOCKS, 1, true);
    const hashes = writeEntries(block, blockEntries, XATTR_BLOCK_HEADER_SIZE, 0, true);
    dv.setUint32(H_HASH, xattrBlockHash(hashes), true);
    blockKey = "xattr-sha256:" + new Bun.CryptoHasher("sha256").update(block).digest("hex");
  }
  return { inInode, block, blockKey };
}

/**
 * Finishes a planned block once its location is known: h_refcount and, with metadata_csum
 * (`fsCsumSeed` not null), h_checksum = crc32c(fsCsumSeed, le64 blockNr, block with h_checksum 0).
 */
export function sealXattrBlock(
  block: Uint8Array,
  blockNr: number,
  refcount: number,
  fsCsumSeed: number | null,
): void {
  if (block.length !== XATTR_BLOCK_SIZE) {
    throw new Error(`sealXattrBlock: block is ${block.length} bytes, expected ${XATTR_BLOCK_SIZE}`);
  }
  const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
  if (dv.getUint32(H_MAGIC, true) !== XATTR_MAGIC) {
    throw new Error(`sealXattrBlock: block for ${blockNr} has no xattr magic`);
  }
  if (!Number.isInteger(refcount) || refcount < 1 || refcount > XATTR_REFCOUNT_MAX) {
    throw new Error(
      `sealXattrBlock: refcount ${refcount} for xattr block ${blockNr} outside 1..${XATTR_REFCOUNT_MAX}`,
    );
  }
  if (!Number.isSafeInteger(blockNr) || blockNr < 0) {
    throw new Error(`sealXattrBlock: bad block number ${blockNr}`);
  }
  dv.setUint32(H_REFCOUNT, refcount, true);
  dv.setUint32(H_CHECKSUM, 0, true);
  if (fsCsumSeed !== null) {
    let crc = crc32cU32(fsCsumSeed, blockNr % 0x1_0000_0000);
    crc = crc32cU32(crc, Math.floor(blockNr / 0x1_0000_0000));
    crc = crc32c(crc, block);
    dv.setUint32(H_CHECKSUM, crc, true);
  }
}

// ---- Readers (for the reader, read/, and tests) ----

function readTable(area: Uint8Array, tableStart: number, offsBase: number, where: string): XattrEntry[] {
  const dv = new DataView(area.buffer, area.byteOffset, area.byteLength);
  const out: XattrEntry[] = [];
  let pos = tableStart;
  while (true) {
    if (pos + END_MARKER > area.length) throw new Error(`${where}: entry table runs past the end`);
    if (dv.getUint32(pos, true) === 0) break;
    if (pos + XATTR_ENTRY_SIZE > area.length) throw new Error(`${where}: entry at ${pos} truncated`);
    const nameLen = dv.getUint8(pos + E_NAME_LEN);
    const nameIndex = dv.getUint8(pos + E_NAME_INDEX);
    const offs = dv.getUint16(pos + E_VALUE_OFFS, true);
    const inum = dv.getUint32(pos + E_VALUE_INUM, true);
    const size = dv.getUint32(pos + E_VALUE_SIZE, true);
    if (inum !== 0) throw new Error(`${where}: entry at ${pos} uses an ea_inode (${inum}), unsupported`);
    if (pos + xattrEntryLen(nameLen) > area.length) throw new Error(`${where}: name at ${pos} truncated`);
    const name = area.slice(pos + E_NAME, pos + E_NAME + nameLen);
    const vstart = offsBase + offs;
    if (size > 0 && (vstart + size > area.length || vstart < tableStart)) {
      throw new Error(`${where}: value of entry at ${pos} (offs ${offs}, size ${size}) out of bounds`);
    }
    const value = size > 0 ? area.slice(vstart, vstart + size) : new Uint8Array(0);
    const fullName = joinXattrName(nameIndex, name) ?? `<index ${nameIndex}>${bytesToName(name)}`;
    out.push({ fullName, nameIndex, name, value });
    pos += xattrEntryLen(nameLen);
  }
  return out;
}

/** Decodes an in-inode xattr area (starting with the magic). Values are as stored (ext4 ACLs). */
export function readInodeXattrs(area: Uint8Array): XattrEntry[] {
  if (area.length < XATTR_IBODY_HEADER_SIZE) return [];
  const magic = new DataView(area.buffer, area.byteOffset, area.byteLength).getUint32(0, true);
  if (magic !== XATTR_MAGIC) return [];
  return readTable(area, XATTR_IBODY_HEADER_SIZE, XATTR_IBODY_HEADER_SIZE, "in-inode xattrs");
}

/** Decodes an xattr block. Values are as stored (ext4 ACLs). */
export function readXattrBlock(block: Uint8Array): XattrEntry[] {
  const magic = new DataView(block.buffer, block.byteOffset, block.byteLength).getUint32(0, true);
  if (magic !== XATTR_MAGIC) throw new Error(`xattr block: bad magic 0x${magic.toString(16)}`);
  return readTable(block, XATTR_BLOCK_HEADER_SIZE, 0, "xattr block");
}
