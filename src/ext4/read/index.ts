// The ext4 reader's one home. Everyone who only wants the files of an image (`image ls`, tests
// that check what the writer put where) opens it with openExt4Image and gets a narrow handle:
// look a path up, stat, list, read a link or a file, read the xattrs or the whole tree. Tests
// that check the on-disk structures themselves (checksums, htree, extent trees, descriptors)
// use Ext4Reader and the verifiers below, which expose them.
import type { FsNode, NodeKind, Timestamp } from "../../tree/types.ts";
import { Ext4Reader, kindOfMode } from "./reader.ts";

export { Ext4Reader, decodeDevice, kindOfMode } from "./reader.ts";
export { verifyChecksums } from "./checksums.ts";
export { checkDirIndex, verifyDirIndex } from "./htree.ts";
export { dirHash } from "./dirhash.ts";
export type { Superblock } from "./superblock.ts";
export type { GroupDesc } from "./group.ts";
export type { Inode } from "./inode.ts";
export type { Extent } from "./extents.ts";
export type { DirEntry } from "./dir.ts";

/** What stat(2) would say of an inode, in the tree's terms. */
export interface Ext4Stat {
  ino: number;
  /** Null for a file type this reader does not know. */
  kind: NodeKind | null;
  /** Full i_mode: file type bits and permissions. */
  mode: number;
  uid: number;
  gid: number;
  /** i_size: bytes of a file, a directory's blocks, a symlink target's length. */
  size: number;
  linksCount: number;
  atime: Timestamp;
  mtime: Timestamp;
  ctime: Timestamp;
}

/** A name in a directory (byte string, as in the tree) and the inode it links to. */
export interface Ext4DirEntry {
  name: string;
  ino: number;
}

/** An open image, read by positional reads (nothing mounted). Paths and names are byte strings. */
export interface Ext4Image {
  /** Inode number of a "/"-separated path from the root; follows no symlinks; throws when a component is missing. */
  lookup(path: string): number;
  stat(ino: number): Ext4Stat;
  /** A directory's entries in on-disk order, without "." and "..". */
  readdir(ino: number): Ext4DirEntry[];
  readlink(ino: number): string;
  readFile(ino: number): Uint8Array;
  xattrs(ino: number): Map<string, Uint8Array>;
  /** The tree under inode `at` (default: the whole tree), contents included, at most `maxBytes` of them (lost+found left out unless asked for). */
  readTree(opts?: { includeLostFound?: boolean; at?: number; maxBytes?: number }): FsNode;
  close(): void;
}

export function openExt4Image(path: string): Ext4Image {
  const r = Ext4Reader.open(path);
  return {
    lookup: (p) => r.lookup(p),
    stat(ino) {
      const inode = r.inode(ino);
      return {
        ino,
        kind: kindOfMode(inode.mode),
        mode: inode.mode,
        uid: inode.uid,
        gid: inode.gid,
        size: inode.size,
        linksCount: inode.linksCount,
        atime: inode.atime,
        mtime: inode.mtime,
        ctime: inode.ctime,
      };
    },
    readdir: (ino) => r.readDir(ino).filter((e) => e.name !== "." && e.name !== "..").map((e) => ({ name: e.name, ino: e.ino })),
    readlink: (ino) => r.readLink(ino),
    readFile: (ino) => r.readFile(ino),
    xattrs: (ino) => r.xattrs(ino),
    readTree: (opts) => r.readTree(opts),
    close: () => r.close(),
  };
}
