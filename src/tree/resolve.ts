// Path resolution inside a tree, as the guest's kernel will do it once the image is its root:
// symlinks are followed (absolute targets from the tree's root), ".." stops at the root, so
// nothing resolves outside the image. Used to ask questions of a merged image ("what does
// /sbin/init run?") before it is written.
import type { FsNode } from "./types.ts";

/** Linux gives up after 40 symlinks in one lookup (ELOOP). */
const MAX_HOPS = 40;

export interface Resolved {
  node: FsNode;
  /** The path that was reached, absolute, symlinks resolved ("/lib/systemd/systemd"). */
  path: string;
}

/**
 * Resolves `path` (absolute or relative to the root) in `root`, following every symlink,
 * the last component's too. Null when a component is missing, a non-directory is passed
 * through, or the links loop.
 */
export function resolvePath(root: FsNode, path: string): Resolved | null {
  const stack: { name: string; node: FsNode }[] = [];
  const work = path.split("/").reverse();
  let hops = 0;
  const here = () => (stack.length === 0 ? root : stack[stack.length - 1]!.node);
  while (work.length > 0) {
    const c = work.pop()!;
    if (c === "" || c === ".") continue;
    if (c === "..") {
      stack.pop();
      continue;
    }
    const dir = here();
    if (dir.kind !== "dir") return null;
    const child = dir.children!.get(c);
    if (child === undefined) return null;
    if (child.kind === "symlink") {
      if (++hops > MAX_HOPS) return null;
      const target = child.target ?? "";
      if (target.startsWith("/")) stack.length = 0;
      const parts = target.split("/");
      for (let i = parts.length - 1; i >= 0; i--) work.push(parts[i]!);
      continue;
    }
    stack.push({ name: c, node: child });
  }
  return { node: here(), path: "/" + stack.map((s) => s.name).join("/") };
}
