// The filesystem tree: the one data structure shared by the sources (tar reader, layer merge,
// guest files) and the ext4 writer, and the contracts by which the writer takes file bytes
// from a source (ByteSource, FileDataSink). It holds metadata and *references* to file bytes, never
// the bytes of large files themselves, so memory grows with entries, not with data.
//
// Names are byte strings: a JS string whose every char code is one byte (latin1). Tar names
// need not be UTF-8, and this keeps them exact while still usable as Map keys. Use
// `nameToBytes`/`displayName` from ./names.ts to convert.

export type NodeKind = "file" | "dir" | "symlink" | "chardev" | "blockdev" | "fifo" | "socket";

/** Seconds since the epoch (may be negative or beyond 2^31) plus nanoseconds (0..999_999_999). */
/** Never changed once made, so nodes and entries may share one (no copies per node). */
export interface Timestamp {
  readonly sec: number;
  readonly nsec: number;
}

/**
 * Where a regular file's bytes live: `length` bytes at `offset` in source number `source`
 * (an index into the `ByteSource[]` handed to the writer next to the tree).
 * `runs`, when present, lists the file's non-zero 4 KiB blocks as flat pairs
 * [firstBlock, blockCount, firstBlock, blockCount, ...] in ascending order; blocks outside
 * every run are all zeros and become holes. Absent `runs` means every block has data.
 */
export interface FileData {
  source: number;
  offset: number;
  runs?: Uint32Array | number[];
}

/**
 * One inode. Hardlinks are the same FsNode object reachable under several names; the link
 * count is derived from the tree, never stored here. Directories are never hardlinked.
 */
export interface FsNode {
  kind: NodeKind;
  /** Permission bits including setuid/setgid/sticky (0o7777); no file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  atime: Timestamp;
  mtime: Timestamp;
  ctime: Timestamp;
  /**
   * Extended attributes by full name, a byte string like names ("security.capability", "user.foo",
   * "system.posix_acl_access", ...). POSIX ACL values are in the Linux VFS/tar format
   * (version 2); the ext4 writer converts them to ext4's on-disk format.
   */
  xattrs: Map<string, Uint8Array>;
  /** Regular files: size in bytes. 0 for everything else (directories and symlinks are sized by the writer). */
  size: number;
  /** Regular files with size > 0 and no inline bytes. */
  data?: FileData;
  /** Small files synthesized in memory (guest files, tests): the whole content. */
  bytes?: Uint8Array;
  /** Symlinks: target exactly as written (byte string like names). */
  target?: string;
  /** Devices. */
  major?: number;
  minor?: number;
  /** Directories: children by name (byte string). */
  children?: Map<string, FsNode>;
}

/** Random-access bytes of one source (an uncompressed tar, a spool file, ...). */
export interface ByteSource {
  /** Fill `into` with bytes starting at `offset`; short reads are an error. */
  readInto(into: Uint8Array, offset: number): void;
  /**
   * A descriptor of a regular file holding these bytes at the same offsets, when there is
   * one, so writers can copy inside the kernel (copy_file_range) instead of through memory.
   */
  regularFileFd?(): number | null;
  close(): void;
}

/**
 * Receives regular files' data as a source reads it (a tar being parsed, a layer being
 * unpacked), so a writer can put the bytes in their final place without reading the source a
 * second time. It also takes over the source's own zero-block scan: begin() with the data's
 * offset in the source and its size, data() with consecutive pieces of it (views the source
 * does not keep: copy what must outlive the call), end() when it is complete, returning its
 * non-zero 4 KiB block runs when it has all-zero blocks (FileData.runs), else undefined.
 */
export interface FileDataSink {
  begin(dataOffset: number, size: number): void;
  data(chunk: Uint8Array, start: number, end: number): void;
  end(): Uint32Array | undefined;
}
