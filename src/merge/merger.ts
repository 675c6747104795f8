// OCI layer semantics: the members of each layer, bottom-up and in archive order, applied to one
// FsNode tree (rules: the project's shared oci-notes.md and the OCI image-spec's layer changesets).
//
// Each member is applied as it arrives (no layer is buffered). Whiteouts hide only what *lower*
// layers left, so the merger remembers, for the current layer only, which (directory, name)
// slots this layer has placed something in (`placed`) and which directories hold one of its
// markers (`markerDirs`). Hiding a path then walks only the subtree being hidden:
// - a name this layer placed survives; if it is a directory, its lower children are hidden in turn
//   (a directory the layer lists keeps only the layer's own children);
// - a lower directory that still holds something of this layer (an entry placed through it, or a
//   marker) survives as if the layer had implied it: 0755 root:root, epoch times, no xattrs, and
//   only this layer's content; the same result as deleting it first and then adding the layer;
// - anything else of the lower layers is removed.
// So the result does not depend on where in the layer a whiteout or opaque marker sits relative to
// the entries it must spare. It does depend on order in one respect, as extraction does: a member
// is placed against the tree as it stands, so a hardlink to a lower file that a later whiteout of
// the same layer deletes keeps the file (and one that comes after the whiteout finds nothing), and
// a parent path through a lower symlink follows that symlink even if the layer later whites it out.
//
// A whiteout's and an opaque marker's parent directory is implied like any parent (it counts as
// touched by the layer: it survives a whiteout of itself in the same layer, as an implied dir).

import { lookupPath, NAME_MAX, nodeFromEntry, placeNode, resolveDir, splitTarPath, takeDirMetadata, TarError, type TarEntry } from "../tar/index.ts";
import { displayName, newDir, type FsNode } from "../tree/index.ts";
import { MergeError } from "./errors.ts";

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";
/** Names starting with this (other than the opaque marker) are reserved by the image spec. */
const RESERVED_PREFIX = ".wh..wh.";

interface OpenLayer {
  source: number;
  label: string;
  /** Names placed by this layer, by the directory holding them. */
  placed: Map<FsNode, Set<string>>;
  /** Directories holding a whiteout or opaque marker of this layer. */
  markerDirs: Set<FsNode>;
}

/** One directory being hidden, in hideSubtree's post-order walk. */
interface HideFrame {
  parent: FsNode | null;
  name: string;
  dir: FsNode;
  /** Placed by this layer (keeps its metadata), or the opaque directory itself. */
  own: boolean;
  names: string[];
  next: number;
  /** Something of this layer survives inside. */
  kept: boolean;
}

/**
 * Merges layers bottom-up into `root`: beginLayer, add each member in archive order, endLayer;
 * repeat per layer. Regular files reference their layer's `source` at the member's data offset.
 * After a MergeError the tree is partly applied: discard the merger.
 */
export class LayerMerger {
  readonly root: FsNode = newDir();
  private layer: OpenLayer | null = null;
  /**
   * The directory the previous entry went into, by the raw text of its parent path (tars list a
   * directory's entries together, so most entries skip splitting and walking their path). Valid
   * while nodes are only added: replacing or hiding a node forgets it.
   */
  private cachedParentPath: string | null = null;
  private cachedParent: FsNode | null = null;

  /** Starts layer `source` (its index among the ByteSources given to the writer); `label` names it in errors, e.g. "layer 2/5 (sha256:1234abcd…)". */
  beginLayer(source: number, label: string): void {
    if (this.layer !== null) throw new Error(`LayerMerger: beginLayer(${label}) while ${this.layer.label} is still open`);
    this.layer = { source, label, placed: new Map(), markerDirs: new Set() };
    this.forgetParent();
  }

  /** Applies one member of the current layer, in archive order. Throws MergeError. */
  add(entry: TarEntry): void {
    const layer = this.layer;
    if (layer === null) throw new Error("LayerMerger: add() outside a layer (call beginLayer first)");
    try {
      this.apply(layer, entry);
    } catch (err) {
      // The tree helpers speak tar ("tar entry ...: reason"); say which layer instead.
      if (err instanceof TarError) throw new MergeError(layer.label, entry.path, err.reason);
      throw err;
    }
  }

  /** Ends the current layer. */
  endLayer(): void {
    if (this.layer === null) throw new Error("LayerMerger: endLayer() without beginLayer()");
    this.layer = null;
    this.forgetParent();
  }

  private apply(layer: OpenLayer, e: TarEntry): void {
    const path = e.path;
    const slash = path.lastIndexOf("/");
    if (this.cachedParent !== null && slash > 0 && e.type !== "hardlink") {
      const name = path.slice(slash + 1);
      if (plainName(name) && path.slice(0, slash) === this.cachedParentPath) {
        this.put(layer, this.cachedParent, name, nodeFromEntry(e, layer.source));
        return;
      }
    }

    const comps = splitTarPath(path);
    if (comps.length === 0) {
      if (e.type !== "dir") throw new MergeError(layer.label, path, `the image root must be a directory, not a ${e.type}`);
      takeDirMetadata(this.root, nodeFromEntry(e, layer.source));
      return;
    }
    const last = comps.length - 1;
    for (let i = 0; i < last; i += 1) {
      if (comps[i]!.startsWith(WHITEOUT_PREFIX)) {
        throw new MergeError(layer.label, path, `"${displayName(comps[i]!)}" is a whiteout name, so it cannot be a directory with members`);
      }
    }
    const name = comps[last]!;
    if (name.startsWith(WHITEOUT_PREFIX)) {
      this.whiteout(layer, e, comps);
      return;
    }

    if (e.type === "hardlink") {
      const target = this.hardlinkTarget(layer, e);
      const parent = resolveDir(this.root, comps, true, path, last)!;
      this.put(layer, parent, name, target);
      return;
    }
    const node = nodeFromEntry(e, layer.source);
    const parent = resolveDir(this.root, comps, true, path, last)!;
    // The raw parent text names this directory only when the path ends with the name itself
    // ("a/b", not "a/b/" or "a/./b"). Cached before placing: put forgets it if this replaces a node.
    if (slash > 0 && path.length - slash - 1 === name.length && path.endsWith(name)) {
      this.cachedParentPath = path.slice(0, slash);
      this.cachedParent = parent;
    }
    this.put(layer, parent, name, node);
  }

  /** The node a hardlink member names: an existing non-directory of the tree as it stands. */
  private hardlinkTarget(layer: OpenLayer, e: TarEntry): FsNode {
    const link = e.linkname;
    if (link.split("/").includes("..")) {
      throw new MergeError(layer.label, e.path, `hardlink target "${displayName(link)}" has a ".." component (it could leave the image root)`);
    }
    const targetComps = splitTarPath(link, e.path);
    if (targetComps.length === 0) throw new MergeError(layer.label, e.path, `hardlink target "${displayName(link)}" is the root directory`);
    const target = lookupPath(this.root, targetComps, e.path);
    if (target === null) {
      throw new MergeError(layer.label, e.path, `hardlink target "${displayName(link)}" does not exist (it must appear earlier in this layer or in a lower layer)`);
    }
    if (target.kind === "dir") throw new MergeError(layer.label, e.path, `hardlink target "${displayName(link)}" is a directory`);
    return target;
  }

  /** A `.wh.NAME` or `.wh..wh..opq` member: hides lower content, is never materialized. */
  private whiteout(layer: OpenLayer, e: TarEntry, comps: string[]): void {
    const marker = comps[comps.length - 1]!;
    if (marker !== OPAQUE_MARKER && marker.startsWith(RESERVED_PREFIX)) {
      throw new MergeError(layer.label, e.path, `"${displayName(marker)}" is a reserved whiteout name (only "${OPAQUE_MARKER}" is defined)`);
    }
    const hidden = marker === OPAQUE_MARKER ? null : marker.slice(WHITEOUT_PREFIX.length);
    if (hidden !== null && (hidden === "" || hidden === "." || hidden === "..")) {
      const reason = comps.length === 1 ? "a whiteout of the image root is not allowed" : `whiteout of "${hidden}" names no entry of its directory`;
      throw new MergeError(layer.label, e.path, reason);
    }
    const dir = resolveDir(this.root, comps, true, e.path, comps.length - 1)!;
    layer.markerDirs.add(dir);
    this.forgetParent();
    if (hidden === null) {
      this.hideSubtree(layer, null, "", dir, true);
      return;
    }
    const node = dir.children!.get(hidden);
    if (node === undefined) return;
    const own = this.isPlaced(layer, dir, hidden);
    if (node.kind === "dir") this.hideSubtree(layer, dir, hidden, node, own);
    else if (!own) dir.children!.delete(hidden);
  }

  /**
   * Hides what lower layers left in directory `top` (at `name` in `parent`), post-order over its
   * subtree without recursion (a tar can nest deeper than the call stack). `own` tells that this
   * layer placed `top` (or that it is an opaque directory, which keeps its metadata either way).
   */
  private hideSubtree(layer: OpenLayer, parent: FsNode | null, name: string, top: FsNode, own: boolean): void {
    const stack: HideFrame[] = [frameFor(parent, name, top, own)];
    while (stack.length > 0) {
      const f = stack[stack.length - 1]!;
      if (f.next < f.names.length) {
        const childName = f.names[f.next++]!;
        const child = f.dir.children!.get(childName);
        if (child === undefined) continue;
        const childOwn = this.isPlaced(layer, f.dir, childName);
        if (child.kind === "dir") stack.push(frameFor(f.dir, childName, child, childOwn));
        else if (childOwn) f.kept = true;
        else f.dir.children!.delete(childName);
        continue;
      }
      stack.pop();
      const survives = f.own || f.kept || layer.markerDirs.has(f.dir);
      if (survives && !f.own) {
        // A lower directory this layer only passed through: the layer implied it.
        takeDirMetadata(f.dir, newDir());
        this.markPlaced(layer, f.parent!, f.name);
      } else if (!survives) {
        f.parent!.children!.delete(f.name);
      }
      if (survives && stack.length > 0) stack[stack.length - 1]!.kept = true;
    }
  }

  /** placeNode, remembering the slot as this layer's and forgetting the cached parent when a node is replaced. */
  private put(layer: OpenLayer, parent: FsNode, name: string, node: FsNode): void {
    const existing = parent.children!.get(name);
    if (existing !== undefined && !(existing.kind === "dir" && node.kind === "dir")) this.forgetParent();
    placeNode(parent, name, node);
    this.markPlaced(layer, parent, name);
  }

  private markPlaced(layer: OpenLayer, dir: FsNode, name: string): void {
    let names = layer.placed.get(dir);
    if (names === undefined) {
      names = new Set();
      layer.placed.set(dir, names);
    }
    names.add(name);
  }

  private isPlaced(layer: OpenLayer, dir: FsNode, name: string): boolean {
    return layer.placed.get(dir)?.has(name) === true;
  }

  private forgetParent(): void {
    this.cachedParent = null;
    this.cachedParentPath = null;
  }
}

function frameFor(parent: FsNode | null, name: string, dir: FsNode, own: boolean): HideFrame {
  return { parent, name, dir, own, names: [...dir.children!.keys()], next: 0, kept: false };
}

/** A last component that splitTarPath accepts as it is and that is no whiteout. */
function plainName(name: string): boolean {
  return name.length > 0 && name.length <= NAME_MAX && name !== "." && name !== ".." && !name.includes("\0") && !name.startsWith(WHITEOUT_PREFIX);
}
