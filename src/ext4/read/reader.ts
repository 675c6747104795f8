// ext4 reader: an independent check on the writer, built from the on-disk format docs
// (Documentation/filesystems/ext4/*). Positional reads only; nothing is mounted. Ext4Reader
// exposes the on-disk structures (for tests that check them); index.ts gives everyone else
// a narrow handle over it (openExt4Image).
// Handles any block size, 32/64-byte group descriptors, meta_bg GDT placement, extent trees of
// any depth and old block maps, linear and htree directories, fast/slow symlinks, in-inode and
// block xattrs (and EA-inode values), POSIX ACLs (returned in the VFS format).
import { closeSync, openSync, readSync } from "node:fs";
import type { FsNode, NodeKind } from "../../tree/types.ts";
import { displayName } from "../../tree/names.ts";
import {
  INCOMPAT_64BIT,
  INCOMPAT_FILETYPE,
  INODE_FLAG_EXTENTS,
  EXT4_MAGIC,
  RO_COMPAT_HUGE_FILE,
  ROOT_INO,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  S_IFSOCK,
  SUPERBLOCK_OFFSET,
} from "../constants.ts";
import { ext4AclToVfs } from "../acl.ts";
import { u32 } from "./bytes.ts";
import { parseDirBlock, type DirEntry } from "./dir.ts";
import { walkBlockMap, walkExtents, type Extent, type ExtentNode } from "./extents.ts";
import { groupHasSuperblock, parseGroupDesc, type GroupDesc } from "./group.ts";
import { parseInode, type Inode } from "./inode.ts";
import { INCOMPAT_META_BG, parseSuperblock, SUPERBLOCK_SIZE, type Superblock } from "./superblock.ts";
import { parseInodeXattrs, parseXattrBlock, type XattrEntry } from "./xattr.ts";

const INODE_FLAG_INLINE_DATA = 0x10000000;
const BLOCK_CACHE_LIMIT = 4096;

export function kindOfMode(mode: number): NodeKind | null {
  switch (mode & 0xf000) {
    case S_IFREG:
      return "file";
    case S_IFDIR:
      return "dir";
    case S_IFLNK:
      return "symlink";
    case S_IFCHR:
      return "chardev";
    case S_IFBLK:
      return "blockdev";
    case S_IFIFO:
      return "fifo";
    case S_IFSOCK:
      return "socket";
    default:
      return null;
  }
}

/** Device numbers from i_block: old 8:8 encoding in word 0, else Linux new_encode_dev in word 1. */
export function decodeDevice(iBlock: Uint8Array): { major: number; minor: number } {
  const old = u32(iBlock, 0);
  if (old !== 0) return { major: (old >>> 8) & 0xff, minor: old & 0xff };
  const dev = u32(iBlock, 4);
  return { major: (dev & 0xfff00) >>> 8, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
}

export class Ext4Reader {
  readonly superblock: Superblock;
  readonly blockSize: number;
  readonly groupCount: number;
  /** The 1024 superblock bytes as read. */
  readonly rawSuperblock: Uint8Array;
  readonly path: string;
  private fd: number;
  private readonly gdRaw: Uint8Array[] = [];
  private readonly blockCache = new Map<number, Uint8Array>();

  private constructor(path: string, fd: number) {
    this.path = path;
    this.fd = fd;
    this.rawSuperblock = this.readAt(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
    const sb = parseSuperblock(this.rawSuperblock);
    if (sb.magic !== EXT4_MAGIC) throw new Error(`${path}: not ext2/3/4 (superblock magic 0x${sb.magic.toString(16)})`);
    if (sb.logBlockSize > 6) throw new Error(`${path}: absurd s_log_block_size ${sb.logBlockSize}`);
    this.superblock = sb;
    this.blockSize = 1024 << sb.logBlockSize;
    if (sb.blocksPerGroup === 0 || sb.inodesPerGroup === 0) throw new Error(`${path}: zero blocks/inodes per group`);
    this.groupCount = Math.ceil((sb.blocksCount - sb.firstDataBlock) / sb.blocksPerGroup);
    if (sb.featureIncompat & INCOMPAT_64BIT && (sb.descSize < 32 || sb.descSize & (sb.descSize - 1)))
      throw new Error(`${path}: bad s_desc_size ${sb.descSize}`);
    this.loadGroupDescriptors();
  }

  static open(path: string): Ext4Reader {
    const fd = openSync(path, "r");
    try {
      return new Ext4Reader(path, fd);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.blockCache.clear();
  }

  // ---- raw access ----

  readAt(position: number, length: number): Uint8Array {
    if (this.fd < 0) throw new Error(`${this.path}: reader is closed`);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, position + done);
      if (n === 0) throw new Error(`${this.path}: short read at byte ${position + done} (wanted ${length} bytes at ${position})`);
      done += n;
    }
    return out;
  }

  /** One block, cached (metadata use); callers must not modify it. */
  readBlock(block: number): Uint8Array {
    if (!Number.isInteger(block) || block < 0 || block >= this.superblock.blocksCount)
      throw new Error(`${this.path}: block ${block} outside the filesystem (0..${this.superblock.blocksCount - 1})`);
    let b = this.blockCache.get(block);
    if (!b) {
      b = this.readAt(block * this.blockSize, this.blockSize);
      if (this.blockCache.size >= BLOCK_CACHE_LIMIT) this.blockCache.clear();
      this.blockCache.set(block, b);
    }
    return b;
  }

  has(feature: "compat" | "incompat" | "roCompat", bit: number): boolean {
    const sb = this.superblock;
    const v = feature === "compat" ? sb.featureCompat : feature === "incompat" ? sb.featureIncompat : sb.featureRoCompat;
    return (v & bit) !== 0;
  }

  // ---- groups ----

  /** First block of a group. */
  groupFirstBlock(group: number): number {
    return this.superblock.firstDataBlock + group * this.superblock.blocksPerGroup;
  }

  private loadGroupDescriptors(): void {
    const sb = this.superblock;
    const perBlock = this.blockSize / sb.descSize;
    const metaBg = this.has("incompat", INCOMPAT_META_BG);
    const sparse = this.has("roCompat", 0x1);
    const gdtBlocks = Math.ceil(this.groupCount / perBlock);
    for (let i = 0; i < gdtBlocks; i++) {
      let block: number;
      if (metaBg && i >= sb.firstMetaBg) {
        const g = i * perBlock;
        block = this.groupFirstBlock(g) + (groupHasSuperblock(g, sparse) ? 1 : 0);
      } else {
        block = sb.firstDataBlock + 1 + i;
      }
      const b = this.readAt(block * this.blockSize, this.blockSize);
      for (let j = 0; j < perBlock && i * perBlock + j < this.groupCount; j++)
        this.gdRaw.push(b.slice(j * sb.descSize, (j + 1) * sb.descSize));
    }
  }

  /** The descriptor bytes as stored (desc_size bytes). */
  rawGroupDesc(group: number): Uint8Array {
    const b = this.gdRaw[group];
    if (!b) throw new Error(`${this.path}: group ${group} out of range (0..${this.groupCount - 1})`);
    return b;
  }

  groupDescriptor(group: number): GroupDesc {
    return parseGroupDesc(this.rawGroupDesc(group), 0, this.superblock.descSize);
  }

  // ---- inodes ----

  inodeLocation(ino: number): { group: number; index: number; offset: number } {
    const sb = this.superblock;
    if (!Number.isInteger(ino) || ino < 1 || ino > sb.inodesCount) throw new Error(`${this.path}: inode ${ino} out of range (1..${sb.inodesCount})`);
    const group = Math.floor((ino - 1) / sb.inodesPerGroup);
    const index = (ino - 1) % sb.inodesPerGroup;
    const table = this.groupDescriptor(group).inodeTable;
    return { group, index, offset: table * this.blockSize + index * sb.inodeSize };
  }

  rawInode(ino: number): Uint8Array {
    const { offset } = this.inodeLocation(ino);
    const block = Math.floor(offset / this.blockSize);
    const within = offset - block * this.blockSize;
    return this.readBlock(block).slice(within, within + this.superblock.inodeSize);
  }

  inode(ino: number): Inode {
    return parseInode(ino, this.rawInode(ino), this.has("roCompat", RO_COMPAT_HUGE_FILE), this.blockSize);
  }

  // ---- block mapping ----

  private mapping(ino: number, onNode?: (node: ExtentNode, bytes: Uint8Array) => void, onMeta?: (b: number) => void): { depth: number; extents: Extent[] } {
    const inode = this.inode(ino);
    const where = `${this.path}: inode ${ino}`;
    if (inode.flags & INODE_FLAG_INLINE_DATA) throw new Error(`${where}: inline data is not supported by this reader`);
    if (inode.flags & INODE_FLAG_EXTENTS) return walkExtents(inode.iBlock, (b) => this.readBlock(b), where, onNode);
    const fileBlocks = Math.ceil(inode.size / this.blockSize);
    return { depth: 0, extents: walkBlockMap(inode.iBlock, this.blockSize, fileBlocks, (b) => this.readBlock(b), onMeta) };
  }

  extents(ino: number): Extent[] {
    return this.mapping(ino).extents;
  }

  extentTreeDepth(ino: number): number {
    const inode = this.inode(ino);
    if (!(inode.flags & INODE_FLAG_EXTENTS)) throw new Error(`${this.path}: inode ${ino} has no extent tree (flags 0x${inode.flags.toString(16)})`);
    return this.mapping(ino).depth;
  }

  /** Extent tree index/leaf blocks below the root (for checksum checks). */
  extentNodes(ino: number): Array<{ node: ExtentNode; bytes: Uint8Array }> {
    const out: Array<{ node: ExtentNode; bytes: Uint8Array }> = [];
    this.walkExtentNodes(ino, (node, bytes) => out.push({ node, bytes }));
    return out;
  }

  /** Calls `onNode` for each index/leaf block below the root, each before its children are read. */
  walkExtentNodes(ino: number, onNode: (node: ExtentNode, bytes: Uint8Array) => void): void {
    this.mapping(ino, onNode);
  }

  /** Physical block of each logical block of the inode (undefined for holes). */
  blockMap(ino: number): Map<number, number> {
    const m = new Map<number, number>();
    for (const e of this.extents(ino)) if (!e.uninit) for (let i = 0; i < e.length; i++) m.set(e.logical + i, e.physical + i);
    return m;
  }

  // ---- content ----

  readFile(ino: number): Uint8Array {
    const inode = this.inode(ino);
    const size = inode.size;
    if (size > 2 ** 31) throw new Error(`${this.path}: inode ${ino} is ${size} bytes, too large for readFile`);
    const out = new Uint8Array(size);
    const bs = this.blockSize;
    for (const e of this.extents(ino)) {
      if (e.uninit) continue;
      const start = e.logical * bs;
      if (start >= size) continue;
      const len = Math.min(e.length * bs, size - start);
      if (e.physical + Math.ceil(len / bs) > this.superblock.blocksCount)
        throw new Error(`${this.path}: inode ${ino} extent ${e.logical}->${e.physical}+${e.length} runs past the filesystem end`);
      out.set(this.readAt(e.physical * bs, len), start);
    }
    return out;
  }

  isFastSymlink(inode: Inode): boolean {
    if ((inode.mode & 0xf000) !== S_IFLNK) return false;
    if (inode.flags & (INODE_FLAG_EXTENTS | INODE_FLAG_INLINE_DATA)) return false;
    const eaBlocks = inode.fileAcl ? this.blockSize / 512 : 0;
    return inode.blocks - eaBlocks === 0 && inode.size < 60;
  }

  readLink(ino: number): string {
    const inode = this.inode(ino);
    if ((inode.mode & 0xf000) !== S_IFLNK) throw new Error(`${this.path}: inode ${ino} is not a symlink (mode 0${inode.mode.toString(8)})`);
    const bytes = this.isFastSymlink(inode) ? inode.iBlock.subarray(0, inode.size) : this.readFile(ino);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
  }

  // ---- directories ----

  /** Directory blocks in logical order: [logical, bytes]. Holes are skipped. */
  dirBlocks(ino: number): Array<[number, Uint8Array]> {
    const inode = this.inode(ino);
    if ((inode.mode & 0xf000) !== S_IFDIR) throw new Error(`${this.path}: inode ${ino} is not a directory (mode 0${inode.mode.toString(8)})`);
    const out: Array<[number, Uint8Array]> = [];
    const nblocks = Math.ceil(inode.size / this.blockSize);
    for (const e of this.extents(ino))
      for (let i = 0; i < e.length && e.logical + i < nblocks; i++) out.push([e.logical + i, this.readBlock(e.physical + i)]);
    return out;
  }

  /**
   * Every live entry including "." and "..". Reads blocks linearly: htree interior blocks are
   * built to look like one empty record, and the dx_root hides its index behind "..".
   */
  readDir(ino: number): DirEntry[] {
    const ft = this.has("incompat", INCOMPAT_FILETYPE);
    const out: DirEntry[] = [];
    for (const [logical, b] of this.dirBlocks(ino)) {
      for (const e of parseDirBlock(b, ft, `${this.path}: directory inode ${ino} block ${logical}`))
        if (e.ino !== 0) out.push({ name: e.name, ino: e.ino, fileType: e.fileType });
    }
    return out;
  }

  /** Inode number of a "/"-separated byte-string path; follows no symlinks. */
  lookup(path: string): number {
    let ino = ROOT_INO;
    let sofar = "";
    for (const part of path.split("/")) {
      if (part === "") continue;
      const entry = this.readDir(ino).find((e) => e.name === part);
      if (!entry) throw new Error(`${this.path}: no "${displayName(part)}" in directory "${displayName(sofar || "/")}" (inode ${ino}) while looking up "${displayName(path)}"`);
      sofar += "/" + part;
      ino = entry.ino;
    }
    return ino;
  }

  // ---- xattrs ----

  /** Raw entries: in-inode first, then those of the xattr block. */
  xattrEntries(ino: number): { inInode: XattrEntry[]; block: XattrEntry[] } {
    const inode = this.inode(ino);
    const where = `${this.path}: inode ${ino}`;
    const inInode = parseInodeXattrs(inode.raw, inode.extraIsize, where);
    const block = inode.fileAcl ? parseXattrBlock(this.readBlock(inode.fileAcl), `${where} xattr block ${inode.fileAcl}`).entries : [];
    return { inInode, block };
  }

  xattrs(ino: number): Map<string, Uint8Array> {
    const { inInode, block } = this.xattrEntries(ino);
    const out = new Map<string, Uint8Array>();
    for (const e of [...inInode, ...block]) {
      let value = e.value;
      if (e.valueInum !== 0) value = this.readFile(e.valueInum).slice(0, e.valueSize);
      if (e.fullName === "system.posix_acl_access" || e.fullName === "system.posix_acl_default")
        try {
          value = ext4AclToVfs(value);
        } catch (err) {
          throw new Error(`${this.path}: inode ${ino} ${e.fullName}: ${(err as Error).message}`);
        }
      if (out.has(e.fullName)) throw new Error(`${this.path}: inode ${ino} has xattr ${e.fullName} twice`);
      out.set(e.fullName, value);
    }
    return out;
  }

  // ---- whole tree ----

  /** One FsNode per inode (no children filled in). */
  nodeOf(ino: number): FsNode {
    const inode = this.inode(ino);
    const kind = kindOfMode(inode.mode);
    if (!kind) throw new Error(`${this.path}: inode ${ino} has unknown file type in mode 0${inode.mode.toString(8)}`);
    const node: FsNode = {
      kind,
      mode: inode.mode & 0o7777,
      uid: inode.uid,
      gid: inode.gid,
      atime: inode.atime,
      mtime: inode.mtime,
      ctime: inode.ctime,
      xattrs: this.xattrs(ino),
      size: kind === "file" ? inode.size : 0,
    };
    if (kind === "file") node.bytes = this.readFile(ino);
    else if (kind === "symlink") node.target = this.readLink(ino);
    else if (kind === "chardev" || kind === "blockdev") Object.assign(node, decodeDevice(inode.iBlock));
    else if (kind === "dir") node.children = new Map();
    return node;
  }

  /**
   * The tree under directory `at` (default the root), file contents included. `maxBytes` bounds
   * the file bytes read into memory: past it, an error naming the file.
   */
  readTree(opts: { includeLostFound?: boolean; at?: number; maxBytes?: number } = {}): FsNode {
    const byIno = new Map<number, FsNode>();
    const top = opts.at ?? ROOT_INO;
    const root = this.nodeOf(top);
    if (root.kind !== "dir") throw new Error(`${this.path}: inode ${top} is a ${root.kind}, not a directory`);
    byIno.set(top, root);
    let bytes = 0;
    const stack: Array<[number, FsNode, string]> = [[top, root, ""]];
    while (stack.length > 0) {
      const [dirIno, dir, path] = stack.pop()!;
      for (const e of this.readDir(dirIno)) {
        if (e.name === "." || e.name === "..") continue;
        if (dirIno === ROOT_INO && e.name === "lost+found" && !opts.includeLostFound) continue;
        let child = byIno.get(e.ino);
        if (child) {
          if (child.kind === "dir") throw new Error(`${this.path}: directory inode ${e.ino} reachable twice (again as "${displayName(path + "/" + e.name)}")`);
        } else {
          if (opts.maxBytes !== undefined && this.inode(e.ino).size + bytes > opts.maxBytes && kindOfMode(this.inode(e.ino).mode) === "file") {
            throw new Error(`${this.path}: more than ${opts.maxBytes} bytes of files (at "${displayName(path + "/" + e.name)}")`);
          }
          child = this.nodeOf(e.ino);
          bytes += child.size;
          byIno.set(e.ino, child);
          if (child.kind === "dir") stack.push([e.ino, child, path + "/" + e.name]);
        }
        if (dir.children!.has(e.name)) throw new Error(`${this.path}: duplicate name "${displayName(path + "/" + e.name)}"`);
        dir.children!.set(e.name, child);
      }
    }
    return root;
  }
}
