import type { FsNode, NodeKind, Timestamp } from "./types.ts";

const EPOCH: Timestamp = { sec: 0, nsec: 0 };

/** A node with neutral metadata (root-owned, epoch times); callers override what they know. */
export function newNode(kind: NodeKind, fields: Partial<FsNode> = {}): FsNode {
  return {
    kind,
    mode: kind === "dir" ? 0o755 : kind === "symlink" ? 0o777 : 0o644,
    uid: 0,
    gid: 0,
    atime: EPOCH,
    mtime: EPOCH,
    ctime: EPOCH,
    xattrs: new Map(),
    size: 0,
    ...(kind === "dir" ? { children: new Map<string, FsNode>() } : {}),
    ...fields,
  };
}

export function newDir(fields: Partial<FsNode> = {}): FsNode {
  return newNode("dir", fields);
}

/**
 * Depth-first walk in sorted name order (byte order), parents before children.
 * `path` is "/"-joined from the root ("" for the root itself).
 */
export function walkTree(root: FsNode, visit: (node: FsNode, path: string, parent: FsNode | null) => void): void {
  const stack: Array<[FsNode, string, FsNode | null]> = [[root, "", null]];
  while (stack.length > 0) {
    const [node, path, parent] = stack.pop()!;
    visit(node, path, parent);
    if (node.kind === "dir" && node.children) {
      const names = [...node.children.keys()].sort().reverse();
      for (const name of names) stack.push([node.children.get(name)!, path === "" ? name : `${path}/${name}`, node]);
    }
  }
}
