// TarEntry values built directly (no tar bytes) for the merge tests, and small readers of the result.

import { LayerMerger } from "../../src/merge/index.ts";
import type { TarEntry, TarEntryType } from "../../src/tar/reader.ts";
import type { FsNode } from "../../src/tree/types.ts";

let nextOffset = 512;

/** A member; every call gets a fresh data offset so data references can be told apart. */
export function entry(type: TarEntryType, path: string, fields: Partial<TarEntry> = {}): TarEntry {
  const t = { sec: fields.mtime?.sec ?? 1_700_000_000, nsec: 0 };
  const dataOffset = nextOffset;
  nextOffset += 1024;
  return {
    type,
    path,
    linkname: "",
    mode: type === "dir" ? 0o755 : type === "symlink" ? 0o777 : 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: t,
    atime: t,
    ctime: t,
    major: 0,
    minor: 0,
    xattrs: new Map(),
    headerOffset: dataOffset - 512,
    dataOffset,
    ...fields,
  };
}

export const file = (path: string, fields: Partial<TarEntry> = {}): TarEntry => entry("file", path, { size: 3, ...fields });
export const dir = (path: string, fields: Partial<TarEntry> = {}): TarEntry => entry("dir", path, fields);
export const symlink = (path: string, target: string, fields: Partial<TarEntry> = {}): TarEntry => entry("symlink", path, { linkname: target, ...fields });
export const hardlink = (path: string, target: string): TarEntry => entry("hardlink", path, { linkname: target });
/** A whiteout member as image tools write it: an empty regular file. */
export const wh = (path: string): TarEntry => entry("file", path, { size: 0 });

/** Merges layers given as entry lists; layer i gets source i and the label "layer i". */
export function merge(...layers: TarEntry[][]): LayerMerger {
  const m = new LayerMerger();
  layers.forEach((entries, i) => {
    m.beginLayer(i, `layer ${i}`);
    for (const e of entries) m.add(e);
    m.endLayer();
  });
  return m;
}

/** The error merging these layers throws (fails the test if none). */
export function mergeError(...layers: TarEntry[][]): Error {
  try {
    merge(...layers);
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the merge to fail");
}

/** Node at a "/"-joined path ("" = root), or undefined. */
export function at(root: FsNode, path: string): FsNode | undefined {
  let n: FsNode | undefined = root;
  for (const c of path.split("/").filter((x) => x !== "")) n = n?.children?.get(c);
  return n;
}

/** Every path of the tree in sorted order, with "/" after directories. */
export function paths(root: FsNode): string[] {
  const out: string[] = [];
  const walk = (n: FsNode, prefix: string) => {
    for (const [name, c] of n.children!) {
      const p = prefix + name;
      out.push(c.kind === "dir" ? p + "/" : p);
      if (c.kind === "dir") walk(c, p + "/");
    }
  };
  walk(root, "");
  return out.sort();
}
