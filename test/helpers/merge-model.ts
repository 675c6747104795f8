// A deliberately simple, slow MODEL of the OCI layer merge rules (not product code), for the
// property test of src/merge. The whole image is one flat Map from normalized path ("" = root,
// "a/b") to a record that remembers which layer put it there. Each member is applied in archive
// order:
// - an entry first makes its missing ancestors implied dirs (0755 root:root, mtime 0) of this
//   layer; an ancestor that is not a dir is an error;
// - a dir over a dir takes the new metadata; anything else deletes the path and every path under it
//   and puts the new record there;
// - a hardlink copies the record at its target (same inode number), which must exist and not be a dir;
// - `.wh.NAME` deletes NAME and the paths under it, `.wh..wh..opq` the paths under its directory,
//   but only records of LOWER layers; then every surviving path gets its missing ancestors back as
//   implied dirs of this layer. Both markers stay in the map as records of this layer until the
//   layer ends (so their directory counts as this layer's), then are dropped.
// Symlinks as parents: the model knows only self-loops ("/a/b" or "b" stored at a/b), which are
// errors; any other symlink met as a parent makes the case Unjudgeable (the property skips it).

import type { TarEntry } from "../../src/tar/reader.ts";
import type { FsNode } from "../../src/tree/types.ts";

export interface ModelLayer {
  source: number;
  entries: TarEntry[];
}

/** What the property compares, per path. `link` is the smallest path naming the same inode. */
export interface FlatNode {
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  target?: string;
  source?: number;
  offset?: number;
  link?: string;
}

export type ModelResult = { ok: true; paths: Map<string, FlatNode> } | { ok: false; layer: number; index: number; why: string };

/** The case needs a rule the model does not know (a symlink parent that is not a self-loop). */
export class Unjudgeable extends Error {}

class Refused extends Error {}

interface Rec {
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  target?: string;
  source?: number;
  offset?: number;
  inode: number;
  layer: number;
  marker: boolean;
}

export function mergeModel(layers: readonly ModelLayer[]): ModelResult {
  const map = new Map<string, Rec>();
  let inodes = 0;
  map.set("", { kind: "dir", mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0, inode: inodes++, layer: -1, marker: false });
  const implied = (layer: number): Rec => ({ kind: "dir", mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0, inode: inodes++, layer, marker: false });

  const split = (path: string): string[] => {
    if (path.includes("\0")) throw new Refused("NUL");
    const comps = path.split("/").filter((c) => c !== "" && c !== ".");
    if (comps.includes("..")) throw new Refused("..");
    return comps;
  };
  const under = (key: string, prefix: string): boolean => prefix === "" ? key !== "" : key.startsWith(prefix + "/");

  /** A path used as a parent directory: each missing ancestor is implied. */
  const ensureDir = (comps: string[], layer: number, create: boolean): boolean => {
    for (let i = 1; i <= comps.length; i += 1) {
      const p = comps.slice(0, i).join("/");
      const rec = map.get(p);
      if (rec === undefined || rec.marker) {
        if (!create) return false;
        map.set(p, implied(layer));
      } else if (rec.kind === "symlink") {
        if (rec.target === "/" + p || rec.target === comps[i - 1]) throw new Refused("symlink loop");
        throw new Unjudgeable(`symlink parent ${p} -> ${rec.target}`);
      } else if (rec.kind !== "dir") {
        throw new Refused(`parent ${p} is a ${rec.kind}`);
      }
    }
    return true;
  };

  const reimply = (layer: number): void => {
    for (const key of [...map.keys()]) {
      const comps = key.split("/");
      for (let i = 1; i < comps.length; i += 1) {
        const p = comps.slice(0, i).join("/");
        if (!map.has(p)) map.set(p, implied(layer));
      }
    }
  };

  const hide = (prefix: string, inclusive: boolean, layer: number): void => {
    for (const [key, rec] of [...map]) {
      if (((inclusive && key === prefix) || under(key, prefix)) && rec.layer < layer) map.delete(key);
    }
    reimply(layer);
  };

  const place = (path: string, rec: Rec): void => {
    const old = map.get(path);
    if (old !== undefined && old.kind === "dir" && rec.kind === "dir" && !old.marker) {
      Object.assign(old, { mode: rec.mode, uid: rec.uid, gid: rec.gid, mtime: rec.mtime, layer: rec.layer });
      return;
    }
    for (const key of [...map.keys()]) if (key === path || under(key, path)) map.delete(key);
    map.set(path, rec);
  };

  for (let l = 0; l < layers.length; l += 1) {
    const { source, entries } = layers[l]!;
    for (let i = 0; i < entries.length; i += 1) {
      const e = entries[i]!;
      try {
        const comps = split(e.path);
        const rec: Rec = { kind: e.type, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, mtime: e.mtime.sec, size: 0, inode: inodes++, layer: l, marker: false };
        if (comps.length === 0) {
          if (e.type !== "dir") throw new Refused("root not a dir");
          place("", rec);
          continue;
        }
        const parent = comps.slice(0, -1);
        const name = comps[comps.length - 1]!;
        if (parent.some((c) => c.startsWith(".wh."))) throw new Refused("whiteout as a parent");
        if (name.startsWith(".wh.")) {
          const opaque = name === ".wh..wh..opq";
          if (!opaque && name.startsWith(".wh..wh.")) throw new Refused("reserved");
          const hidden = name.slice(4);
          if (!opaque && (hidden === "" || hidden === "." || hidden === "..")) throw new Refused("whiteout of no name");
          ensureDir(parent, l, true);
          if (opaque) hide(parent.join("/"), false, l);
          else hide([...parent, hidden].join("/"), true, l);
          map.set(comps.join("/"), { ...rec, kind: "marker", marker: true });
          continue;
        }
        let node = rec;
        if (e.type === "hardlink") {
          if (e.linkname.split("/").includes("..")) throw new Refused("hardlink ..");
          const t = split(e.linkname);
          if (t.length === 0) throw new Refused("hardlink to root");
          if (!ensureDir(t.slice(0, -1), l, false)) throw new Refused("hardlink target missing");
          const target = map.get(t.join("/"));
          if (target === undefined || target.marker) throw new Refused("hardlink target missing");
          if (target.kind === "dir") throw new Refused("hardlink to dir");
          node = { ...target, layer: l };
        } else {
          if (e.type === "file") {
            node.size = e.size;
            if (e.size > 0) {
              node.source = source;
              node.offset = e.dataOffset;
            }
          }
          if (e.type === "symlink") node.target = e.linkname;
        }
        ensureDir(parent, l, true);
        place(comps.join("/"), node);
      } catch (err) {
        if (err instanceof Refused) return { ok: false, layer: l, index: i, why: err.message };
        throw err;
      }
    }
    for (const [key, rec] of [...map]) if (rec.marker) map.delete(key);
  }

  const firstName = new Map<number, string>();
  for (const [key, rec] of map) {
    const seen = firstName.get(rec.inode);
    if (rec.kind !== "dir" && (seen === undefined || key < seen)) firstName.set(rec.inode, key);
  }
  const paths = new Map<string, FlatNode>();
  for (const [key, rec] of map) {
    const flat: FlatNode = { kind: rec.kind, mode: rec.mode, uid: rec.uid, gid: rec.gid, mtime: rec.mtime, size: rec.size };
    if (rec.target !== undefined) flat.target = rec.target;
    if (rec.source !== undefined) flat.source = rec.source;
    if (rec.offset !== undefined) flat.offset = rec.offset;
    if (rec.kind !== "dir") flat.link = firstName.get(rec.inode)!;
    paths.set(key, flat);
  }
  return { ok: true, paths };
}

/** The same flat view of a merged FsNode tree. */
export function flattenTree(root: FsNode): Map<string, FlatNode> {
  const out = new Map<string, FlatNode>();
  const firstName = new Map<FsNode, string>();
  const nodes = new Map<string, FsNode>();
  const stack: Array<[FsNode, string]> = [[root, ""]];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    nodes.set(path, node);
    if (node.kind !== "dir") {
      const seen = firstName.get(node);
      if (seen === undefined || path < seen) firstName.set(node, path);
    } else {
      for (const [name, child] of node.children!) stack.push([child, path === "" ? name : `${path}/${name}`]);
    }
  }
  for (const [path, node] of nodes) {
    const flat: FlatNode = { kind: node.kind, mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime.sec, size: node.size };
    if (node.target !== undefined) flat.target = node.target;
    if (node.data !== undefined) {
      flat.source = node.data.source;
      flat.offset = node.data.offset;
    }
    if (node.kind !== "dir") flat.link = firstName.get(node)!;
    out.set(path, flat);
  }
  return out;
}
