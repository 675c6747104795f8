// Tar members → FsNode tree: path normalization, parent resolution and the replace/merge rules
// (the single-layer case of the OCI rules in /work/shared/oci-notes.md). The layer merge reuses
// these helpers; whiteouts are not special here.
//
// Choices:
// - Implied parents (never listed, or listed only after their children) are created as
//   0755 root:root with all times at the epoch (newDir defaults), independent of entry order;
//   a later directory entry for the same path sets the real metadata and keeps the children.
// - A path whose parent component is a symlink is resolved inside the tree (absolute targets
//   from the image root, ".." stops at the root), following at most 40 links; missing
//   components met on the way are implied directories, as a directory-creating extraction
//   would make them. A parent that is neither directory nor symlink is an error.
// - The last component is never followed: an entry replaces a symlink at its path.

import type { FsNode } from "../tree/types.ts";
import { displayName } from "../tree/names.ts";
import { newDir } from "../tree/nodes.ts";
import { TarError } from "./errors.ts";
import type { TarEntry } from "./reader.ts";

export const NAME_MAX = 255;
export const MAX_SYMLINK_HOPS = 40;
const UINT32_MAX = 0xffffffff;

/**
 * Splits a tar path into its components: "./a", "/a", "a/", "a//b" all normalize; "." and ""
 * are the root (no components). Rejects ".." components, NUL bytes and components over 255 bytes.
 * `entry` names the member in errors (defaults to `path`).
 */
export function splitTarPath(path: string, entry: string = path): string[] {
  if (path.includes("\0")) throw new TarError(entry, "path contains a NUL byte");
  const out: string[] = [];
  for (const c of path.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") throw new TarError(entry, `path "${displayName(path)}" has a ".." component`);
    if (c.length > NAME_MAX) throw new TarError(entry, `path component of ${c.length} bytes exceeds ${NAME_MAX} bytes`);
    out.push(c);
  }
  return out;
}

/** The normalized path ("" for the root) of a tar path; same checks as splitTarPath. */
export function normalizeTarPath(path: string, entry: string = path): string {
  return splitTarPath(path, entry).join("/");
}

/**
 * The directory that `components` name, starting at `root`. Symlinks on the way are resolved
 * inside the tree. Missing directories are created (implied) when `create`, else null is returned.
 */
export function resolveDir(root: FsNode, components: readonly string[], create: boolean, entry: string, count = components.length): FsNode | null {
  // Fast path: plain names through directories only (what nearly every entry has).
  let dir = root;
  let i = 0;
  for (; i < count; i++) {
    const c = components[i]!;
    if (c === "" || c === "." || c === "..") break;
    let child = dir.children!.get(c);
    if (child === undefined) {
      if (!create) return null;
      child = newDir();
      dir.children!.set(c, child);
    }
    if (child.kind !== "dir") break;
    dir = child;
  }
  if (i === count) return dir;
  return resolveDirSlowly(root, count === components.length ? components : components.slice(0, count), create, entry);
}

/** resolveDir's general case: symlinks on the way, "." and "..". */
function resolveDirSlowly(root: FsNode, components: readonly string[], create: boolean, entry: string): FsNode | null {
  const stack: FsNode[] = [root];
  const work = [...components].reverse();
  let hops = 0;
  while (work.length > 0) {
    const c = work.pop()!;
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (stack.length > 1) stack.pop();
      continue;
    }
    const dir = stack[stack.length - 1]!;
    let child = dir.children!.get(c);
    if (child === undefined) {
      if (!create) return null;
      child = newDir();
      dir.children!.set(c, child);
    }
    if (child.kind === "dir") {
      stack.push(child);
    } else if (child.kind === "symlink") {
      hops += 1;
      if (hops > MAX_SYMLINK_HOPS) throw new TarError(entry, `too many levels of symbolic links resolving the parent directory (at "${displayName(c)}")`);
      const target = child.target ?? "";
      if (target.startsWith("/")) stack.length = 1;
      const parts = target.split("/");
      for (let i = parts.length - 1; i >= 0; i -= 1) work.push(parts[i]!);
    } else {
      throw new TarError(entry, `parent "${displayName(c)}" is a ${child.kind}, not a directory`);
    }
  }
  return stack[stack.length - 1]!;
}

/** The node at a path (last component not followed), or null. */
export function lookupPath(root: FsNode, components: readonly string[], entry: string): FsNode | null {
  if (components.length === 0) return root;
  const parent = resolveDir(root, components.slice(0, -1), false, entry);
  return parent?.children!.get(components[components.length - 1]!) ?? null;
}

function checkId(value: number, what: string, entry: string): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > UINT32_MAX) throw new TarError(entry, `${what} ${value} is out of range`);
  return value;
}

/**
 * A fresh node for a non-hardlink entry; regular files reference `source` at their data offset.
 * Built as one literal rather than through newNode's spreads, which cost ~6 ms over the 12k
 * entries of a Debian rootfs (copyDataProperties in the profile).
 */
export function nodeFromEntry(e: TarEntry, source: number): FsNode {
  if (e.type === "hardlink") throw new TarError(e.path, "internal: hardlinks have no node of their own");
  const node: FsNode = {
    kind: e.type,
    mode: e.mode & 0o7777,
    uid: checkId(e.uid, "uid", e.path),
    gid: checkId(e.gid, "gid", e.path),
    // Timestamps are immutable (types.ts): the entry's are shared, not copied.
    atime: e.atime,
    mtime: e.mtime,
    ctime: e.ctime,
    xattrs: e.xattrs.size === 0 ? new Map() : new Map(e.xattrs),
    size: 0,
  };
  switch (e.type) {
    case "file":
      node.size = e.size;
      if (e.size > 0) node.data = e.runs ? { source, offset: e.dataOffset, runs: e.runs } : { source, offset: e.dataOffset };
      return node;
    case "dir":
      node.children = new Map();
      return node;
    case "symlink":
      if (e.linkname === "") throw new TarError(e.path, "symlink with an empty target");
      if (e.linkname.includes("\0")) throw new TarError(e.path, "symlink target contains a NUL byte");
      node.target = e.linkname;
      // A symlink's mode is always 0777 on Linux (the header's is ignored by extraction).
      node.mode = 0o777;
      return node;
    case "chardev":
    case "blockdev":
      if (e.major > 0xfff || e.minor > 0xfffff || e.major < 0 || e.minor < 0) {
        throw new TarError(e.path, `device number ${e.major}:${e.minor} is out of range (major < 4096, minor < 1048576)`);
      }
      node.major = e.major;
      node.minor = e.minor;
      return node;
    case "fifo":
      return node;
  }
}

/** Gives directory `into` the metadata of `from` (dir over dir: children stay). */
export function takeDirMetadata(into: FsNode, from: FsNode): void {
  into.mode = from.mode;
  into.uid = from.uid;
  into.gid = from.gid;
  into.atime = from.atime;
  into.mtime = from.mtime;
  into.ctime = from.ctime;
  into.xattrs = from.xattrs;
}

/**
 * Puts `node` at `name` in `parent`: a directory over a directory merges (keeps the children,
 * takes the new metadata); anything else replaces what was there (breaking any hardlink that
 * name was part of).
 */
export function placeNode(parent: FsNode, name: string, node: FsNode): void {
  const existing = parent.children!.get(name);
  if (existing !== undefined && existing.kind === "dir" && node.kind === "dir") {
    if (existing !== node) takeDirMetadata(existing, node);
    return;
  }
  parent.children!.set(name, node);
}

/** Builds a tree from one tar's entries, in archive order. */
export class RootfsBuilder {
  readonly root: FsNode = newDir();
  private readonly source: number;
  /**
   * The directory the previous entry went into, by the raw text of its parent path: tars list a
   * directory's entries together, so most entries skip splitting and walking their path. Valid
   * while the tree only grows; any entry that replaces a node (which could be on that path, or be
   * a symlink it went through) clears it.
   */
  private cachedParentPath: string | null = null;
  private cachedParent: FsNode | null = null;

  /** `cacheParents: false` walks every path from the root (the reference the tests compare with). */
  constructor(
    source: number,
    private readonly options: { cacheParents?: boolean } = {},
  ) {
    this.source = source;
  }

  add(e: TarEntry): void {
    const path = e.path;
    const slash = path.lastIndexOf("/");
    if (this.cachedParent !== null && slash > 0 && e.type !== "hardlink") {
      const name = path.slice(slash + 1);
      if (path.slice(0, slash) === this.cachedParentPath && plainName(name)) {
        this.put(this.cachedParent, name, nodeFromEntry(e, this.source));
        return;
      }
    }
    const comps = splitTarPath(path);
    if (comps.length === 0) {
      if (e.type !== "dir") throw new TarError(e.path, `the archive root must be a directory, not a ${e.type}`);
      takeDirMetadata(this.root, nodeFromEntry(e, this.source));
      return;
    }
    const name = comps[comps.length - 1]!;
    if (e.type === "hardlink") {
      const targetComps = splitTarPath(e.linkname, e.path);
      const target = lookupPath(this.root, targetComps, e.path);
      if (target === null) {
        throw new TarError(e.path, `hardlink target "${displayName(e.linkname)}" does not exist (it must appear earlier in the archive)`);
      }
      if (target.kind === "dir") throw new TarError(e.path, `hardlink target "${displayName(e.linkname)}" is a directory`);
      const parent = resolveDir(this.root, comps, true, e.path, comps.length - 1)!;
      this.put(parent, name, target);
      return;
    }
    const node = nodeFromEntry(e, this.source);
    const parent = resolveDir(this.root, comps, true, e.path, comps.length - 1)!;
    // The raw parent text names this directory when the path ends with the name itself. Cached
    // before placing: if this entry replaces a node (maybe one its own path went through), put
    // forgets it again.
    if (this.options.cacheParents !== false && slash > 0 && path.length - slash - 1 === name.length && path.endsWith(name)) {
      this.cachedParentPath = path.slice(0, slash);
      this.cachedParent = parent;
    }
    this.put(parent, name, node);
  }

  /** placeNode, forgetting the cached directory when a node is replaced. */
  private put(parent: FsNode, name: string, node: FsNode): void {
    const existing = parent.children!.get(name);
    if (existing !== undefined && !(existing.kind === "dir" && node.kind === "dir")) {
      this.cachedParent = null;
      this.cachedParentPath = null;
    }
    placeNode(parent, name, node);
  }
}

/** A last path component that splitTarPath would accept as it is: no normalizing, no error. */
function plainName(name: string): boolean {
  return name.length > 0 && name.length <= NAME_MAX && name !== "." && name !== ".." && !name.includes("\0");
}
