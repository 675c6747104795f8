// ext4 directory entries (ext4_dir_entry_2) and single directory blocks: linear blocks and
// htree leaves, with the 12-byte checksum tail entry under metadata_csum.

import { BLOCK_SIZE, FT_DIR, FT_DIR_CSUM } from "./constants.ts";
import { crc32c } from "./crc32c.ts";

export interface DirChild {
  name: Uint8Array;
  ino: number;
  /** FT_* from constants.ts */
  fileType: number;
}

export interface DirBuildOptions {
  /** Leaf blocks end with the 12-byte checksum tail entry; dx blocks with dx_tail. */
  metadataCsum: boolean;
  /** s_def_hash_version (0 legacy, 1 half_md4, 2 tea). */
  hashVersion: number;
  /** s_hash_seed (4 words; all zero selects the default seed). */
  hashSeed: Uint32Array;
  /** EXT2_FLAGS_UNSIGNED_HASH is set in s_flags. */
  unsignedHash: boolean;
  /** crc32c(crc32c(fsCsumSeed, le32 ino), le32 generation); used when metadataCsum. */
  inodeCsumSeed: number;
  /**
   * The children were checked already (the planner's: valid names, unique as Map keys, inode
   * numbers and types it assigned), so validateChildren and the duplicate check are skipped.
   */
  childrenChecked?: boolean;
  /**
   * Memory to build into, reused across directories (grown when too small): the result is then
   * a view of it, valid until the next build with the same scratch. Without it, each build
   * allocates, which cost ~5 ms of garbage over the Debian rootfs' 1,300 directories.
   */
  scratch?: DirScratch;
}

export interface DirScratch {
  buf: Uint8Array;
}

/** inode u32, rec_len u16, name_len u8, file_type u8. */
export const DIRENT_HEADER_SIZE = 8;
/** ext4_dir_entry_tail: fake entry holding the leaf block checksum. */
export const DIRENT_TAIL_SIZE = 12;
export const MAX_NAME_LEN = 255;
/** rec_len of the longest possible entry (255-byte name). */
export const MAX_REC_LEN = direntRecLen(MAX_NAME_LEN);

/** rec_len of an entry whose name has `nameLength` bytes: 8 + name, rounded up to 4. */
export function direntRecLen(nameLength: number): number {
  return (DIRENT_HEADER_SIZE + nameLength + 3) & ~3;
}

/** Bytes of a leaf (or linear) block available to entries. */
export function leafCapacity(metadataCsum: boolean): number {
  return BLOCK_SIZE - (metadataCsum ? DIRENT_TAIL_SIZE : 0);
}

/** Writes one entry header and name at `offset`; bytes after the name are left as they are (zero). */
export function writeDirent(
  buf: Uint8Array,
  view: DataView,
  offset: number,
  ino: number,
  recLen: number,
  name: Uint8Array,
  fileType: number,
): void {
  view.setUint32(offset, ino >>> 0, true);
  view.setUint16(offset + 4, recLen, true);
  buf[offset + 6] = name.length;
  buf[offset + 7] = fileType;
  buf.set(name, offset + DIRENT_HEADER_SIZE);
}

/**
 * Writes the checksum tail entry into the block starting at `blockStart` and fills in its
 * checksum: crc32c(inodeCsumSeed, block[0 .. blocksize-12)).
 */
export function writeLeafTail(buf: Uint8Array, view: DataView, blockStart: number, inodeCsumSeed: number): void {
  const t = blockStart + BLOCK_SIZE - DIRENT_TAIL_SIZE;
  view.setUint32(t, 0, true); // det_reserved_zero1 (inode 0)
  view.setUint16(t + 4, DIRENT_TAIL_SIZE, true); // det_rec_len
  buf[t + 6] = 0; // det_reserved_zero2 (name_len 0)
  buf[t + 7] = FT_DIR_CSUM; // det_reserved_ft
  view.setUint32(t + 8, crc32c(inodeCsumSeed, buf, blockStart, t), true);
}

const DOT = Uint8Array.of(0x2e);
const DOTDOT = Uint8Array.of(0x2e, 0x2e);

/** Sum of the children's rec_lens and the largest one. */
/** Total and largest rec_len of entries with these names (byte strings or byte arrays: only their length counts). */
export function measureNames(names: ReadonlyArray<{ readonly length: number }>): { total: number; maxRecLen: number } {
  let total = 0;
  let maxRecLen = 0;
  for (let i = 0; i < names.length; i++) {
    const r = direntRecLen(names[i]!.length);
    total += r;
    if (r > maxRecLen) maxRecLen = r;
  }
  return { total, maxRecLen };
}

/** Whether "." + ".." + all children fit one linear block. */
export function fitsOneBlock(totalChildRecLen: number, metadataCsum: boolean): boolean {
  return 2 * direntRecLen(2) + totalChildRecLen <= leafCapacity(metadataCsum);
}

function showName(n: Uint8Array): string {
  return JSON.stringify(new TextDecoder().decode(n));
}

/**
 * Rejects names ext4 (or e2fsck) would not accept: empty, longer than 255 bytes, containing
 * '/' or NUL, "." or ".."; inode numbers that are not positive 32-bit values; unknown file
 * types. Duplicates are checked here only when `checkDuplicates` (the htree builder finds them
 * more cheaply after sorting by hash, see assertNoAdjacentDuplicates).
 */
export function validateChildren(children: ReadonlyArray<DirChild>, selfIno: number, checkDuplicates = true): void {
  for (let i = 0; i < children.length; i++) {
    const c = children[i]!;
    const n = c.name;
    const len = n.length;
    if (len === 0 || len > MAX_NAME_LEN)
      throw new Error(`directory ${selfIno}: child #${i} ${showName(n)} has name length ${len} (must be 1..${MAX_NAME_LEN})`);
    for (let k = 0; k < len; k++) {
      const b = n[k]!;
      if (b === 0x2f || b === 0) throw new Error(`directory ${selfIno}: child #${i} ${showName(n)} contains '/' or NUL`);
    }
    if (n[0] === 0x2e && (len === 1 || (len === 2 && n[1] === 0x2e)))
      throw new Error(`directory ${selfIno}: child #${i} is named ${showName(n)}; "." and ".." are written by buildDirectory`);
    const ino = c.ino;
    if (!Number.isInteger(ino) || ino <= 0 || ino > 0xffffffff)
      throw new Error(`directory ${selfIno}: child ${showName(n)} has invalid inode number ${ino}`);
    const ft = c.fileType;
    if (!Number.isInteger(ft) || ft < 0 || ft > 7)
      throw new Error(`directory ${selfIno}: child ${showName(n)} has invalid file type ${ft}`);
  }
  if (checkDuplicates) {
    const seen = new Set<string>();
    for (const c of children) {
      const key = Buffer.from(c.name.buffer, c.name.byteOffset, c.name.byteLength).toString("latin1"); // byte-exact
      if (seen.has(key)) throw new Error(`directory ${selfIno}: duplicate child name ${showName(c.name)}`);
      seen.add(key);
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Duplicate check for children sorted so that equal names are adjacent (equal names have
 * equal hashes): compares each entry with its predecessor when their hashes are equal.
 */
export function assertNoAdjacentDuplicates(
  children: ReadonlyArray<DirChild>,
  order: ArrayLike<number>,
  major: ArrayLike<number>,
  minor: ArrayLike<number>,
  selfIno: number,
): void {
  for (let i = 1; i < order.length; i++) {
    const a = order[i - 1]!;
    const b = order[i]!;
    if (major[a] === major[b] && minor[a] === minor[b] && sameBytes(children[a]!.name, children[b]!.name))
      throw new Error(`directory ${selfIno}: duplicate child name ${showName(children[b]!.name)}`);
  }
}

/**
 * Writes a linear directory block at `blockStart`: ".", "..", then `children` in order; the last
 * entry's rec_len covers the slack; the checksum tail follows under metadata_csum.
 * The caller has checked that everything fits (fitsOneBlock).
 */
export function writeLinearBlock(
  buf: Uint8Array,
  view: DataView,
  blockStart: number,
  selfIno: number,
  parentIno: number,
  children: ReadonlyArray<DirChild>,
  opts: DirBuildOptions,
): void {
  const end = blockStart + leafCapacity(opts.metadataCsum);
  const dotLen = direntRecLen(1);
  writeDirent(buf, view, blockStart, selfIno, dotLen, DOT, FT_DIR);
  let off = blockStart + dotLen;
  const entries: { ino: number; name: Uint8Array; fileType: number }[] = [
    { ino: parentIno, name: DOTDOT, fileType: FT_DIR },
    ...children,
  ];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const natural = direntRecLen(e.name.length);
    const recLen = i === entries.length - 1 ? end - off : natural;
    if (off + natural > end)
      throw new Error(`directory ${selfIno}: linear block overflow at entry #${i} (offset ${off - blockStart})`);
    writeDirent(buf, view, off, e.ino, recLen, e.name, e.fileType);
    off += recLen;
  }
  if (opts.metadataCsum) writeLeafTail(buf, view, blockStart, opts.inodeCsumSeed);
}

/**
 * Writes an htree leaf block at `blockStart` holding `children[from, to)` densely; the last
 * entry's rec_len covers the slack; the checksum tail follows under metadata_csum.
 */
export function writeLeafBlock(
  buf: Uint8Array,
  view: DataView,
  blockStart: number,
  children: ReadonlyArray<DirChild>,
  order: ArrayLike<number>,
  from: number,
  to: number,
  opts: DirBuildOptions,
): void {
  const end = blockStart + leafCapacity(opts.metadataCsum);
  let off = blockStart;
  for (let i = from; i < to; i++) {
    const c = children[order[i]!]!;
    const natural = direntRecLen(c.name.length);
    if (off + natural > end) throw new Error(`htree leaf overflow at sorted entry #${i} (offset ${off - blockStart})`);
    const recLen = i === to - 1 ? end - off : natural;
    writeDirent(buf, view, off, c.ino, recLen, c.name, c.fileType);
    off += recLen;
  }
  if (from === to) {
    // Never produced by the planner; an empty leaf would still be a valid unused entry.
    view.setUint16(blockStart + 4, end - blockStart, true);
  }
  if (opts.metadataCsum) writeLeafTail(buf, view, blockStart, opts.inodeCsumSeed);
}
