// Directory blocks (Documentation/filesystems/ext4/directory.rst): linear ext4_dir_entry_2
// records, the 12-byte checksum tail (inode 0, rec_len 12, name_len 0, file_type 0xDE), and
// the hash-tree (htree) interior blocks, which look like one empty entry to a linear reader.
import { FT_DIR_CSUM } from "../constants.ts";
import { u16, u32, u8 } from "./bytes.ts";

export interface DirEntry {
  name: string;
  ino: number;
  fileType: number;
}

export interface RawDirEntry extends DirEntry {
  offset: number;
  recLen: number;
  nameLen: number;
}

export const DIR_TAIL_SIZE = 12;

/** rec_len as stored; 0 or 65535 mean "the whole 64 KiB block" (only for 64 KiB blocks). */
function recLenOf(raw: number, blockSize: number): number {
  if (blockSize < 65536) return raw;
  return raw === 65535 || raw === 0 ? blockSize : (raw & 65532) | ((raw & 3) << 16);
}

/** Whether the block ends with a well-formed checksum tail entry. */
export function hasDirTail(b: Uint8Array): boolean {
  const t = b.length - DIR_TAIL_SIZE;
  return u32(b, t) === 0 && u16(b, t + 4) === DIR_TAIL_SIZE && u8(b, t + 6) === 0 && u8(b, t + 7) === FT_DIR_CSUM;
}

/**
 * Every record in a linear directory block, live or not (inode 0 = unused), excluding the
 * checksum tail. Validates that records tile the block exactly.
 */
export function parseDirBlock(b: Uint8Array, fileTypeFeature: boolean, where: string): RawDirEntry[] {
  const out: RawDirEntry[] = [];
  let off = 0;
  while (off < b.length) {
    if (off + 8 > b.length) throw new Error(`${where}: directory record at offset ${off} runs past the block end`);
    const ino = u32(b, off);
    const recLen = recLenOf(u16(b, off + 4), b.length);
    const nameLen = fileTypeFeature ? u8(b, off + 6) : u16(b, off + 6);
    const fileType = fileTypeFeature ? u8(b, off + 7) : 0;
    if (recLen < 8 || recLen % 4 !== 0 || off + recLen > b.length)
      throw new Error(`${where}: bad rec_len ${recLen} at offset ${off}`);
    if (8 + nameLen > recLen) throw new Error(`${where}: name_len ${nameLen} exceeds rec_len ${recLen} at offset ${off}`);
    const isTail = ino === 0 && recLen === DIR_TAIL_SIZE && nameLen === 0 && fileType === FT_DIR_CSUM && off + recLen === b.length;
    if (!isTail) {
      const name = Buffer.from(b.buffer, b.byteOffset + off + 8, nameLen).toString("latin1");
      out.push({ name, ino, fileType, offset: off, recLen, nameLen });
    }
    off += recLen;
  }
  return out;
}

export interface DxRootInfo {
  hashVersion: number;
  infoLength: number;
  indirectLevels: number;
  unusedFlags: number;
}

export interface DxNode {
  /** Byte offset of dx_countlimit in the block (0x20 in the root, 0x8 in interior nodes). */
  countOffset: number;
  limit: number;
  count: number;
  /** entries[0].hash is 0 (the countlimit slot); entries[i].block is logical within the dir. */
  entries: Array<{ hash: number; block: number }>;
}

export function parseDxRootInfo(b: Uint8Array, where: string): DxRootInfo {
  // '.' entry (12 bytes) then '..' entry header (8 bytes + 4 name bytes), then dx_root_info at 0x18.
  const info = { hashVersion: u8(b, 0x1c), infoLength: u8(b, 0x1d), indirectLevels: u8(b, 0x1e), unusedFlags: u8(b, 0x1f) };
  if (u32(b, 0x18) !== 0) throw new Error(`${where}: dx_root reserved_zero is ${u32(b, 0x18)}`);
  if (info.infoLength !== 8) throw new Error(`${where}: dx_root info_length ${info.infoLength} (want 8)`);
  return info;
}

export function parseDxEntries(b: Uint8Array, countOffset: number, where: string): DxNode {
  const limit = u16(b, countOffset);
  const count = u16(b, countOffset + 2);
  if (count === 0 || count > limit) throw new Error(`${where}: dx count ${count} limit ${limit}`);
  if (countOffset + limit * 8 > b.length) throw new Error(`${where}: dx limit ${limit} overruns the block`);
  const entries: Array<{ hash: number; block: number }> = [];
  for (let i = 0; i < count; i++) {
    const e = countOffset + i * 8;
    entries.push({ hash: i === 0 ? 0 : u32(b, e), block: u32(b, e + 4) });
  }
  return { countOffset, limit, count, entries };
}
