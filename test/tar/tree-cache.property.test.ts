// RootfsBuilder remembers the directory the previous entry went into (by the raw text of its
// parent path). Property: for any sequence of entries (replacements, symlinked parents, implied
// parents, hardlinks, odd path spellings), the tree or the error is exactly what walking every
// path from the root gives.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { RootfsBuilder } from "../../src/tar/tree.ts";
import type { TarEntry } from "../../src/tar/reader.ts";
import type { FsNode } from "../../src/tree/types.ts";

const T = { sec: 0, nsec: 0 };

function entry(type: TarEntry["type"], path: string, linkname = ""): TarEntry {
  return { type, path, linkname, mode: 0o755, uid: 0, gid: 0, size: 0, mtime: T, atime: T, ctime: T, major: 0, minor: 0, xattrs: new Map(), headerOffset: 0, dataOffset: 0 };
}

/** The tree as text: kinds, targets, and which names share one node (hardlinks). */
function describe(root: FsNode): string {
  const ids = new Map<FsNode, number>();
  const out: string[] = [];
  const walk = (n: FsNode, path: string) => {
    if (!ids.has(n)) ids.set(n, ids.size);
    out.push(`${path} ${n.kind}#${ids.get(n)}${n.target !== undefined ? ` -> ${n.target}` : ""}`);
    if (n.kind === "dir") for (const [name, c] of [...n.children!].sort(([a], [b]) => (a < b ? -1 : 1))) walk(c, `${path}/${name}`);
  };
  walk(root, "");
  return out.join("\n");
}

function build(entries: TarEntry[], cacheParents: boolean): string {
  const b = new RootfsBuilder(0, { cacheParents });
  try {
    for (const e of entries) b.add(e);
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
  return describe(b.root);
}

const component = fc.constantFrom("a", "b", "c");
const relPath = fc.array(component, { minLength: 1, maxLength: 3 }).map((c) => c.join("/"));
const spelled = fc.tuple(fc.constantFrom("", "./", "/"), relPath, fc.constantFrom("", "/")).map(([pre, p, post]) => pre + p + post);
const anEntry = fc.oneof(
  spelled.map((p) => entry("dir", p)),
  spelled.map((p) => entry("file", p.replace(/\/$/, ""))),
  fc.tuple(spelled, fc.oneof(relPath, relPath.map((p) => `/${p}`), fc.constant(".."), fc.constant("../a"))).map(([p, t]) => entry("symlink", p.replace(/\/$/, ""), t)),
  fc.tuple(spelled, relPath).map(([p, t]) => entry("hardlink", p.replace(/\/$/, ""), t)),
);

test("the parent cache never changes the tree or the error", () => {
  fc.assert(
    fc.property(fc.array(anEntry, { maxLength: 25 }), (entries) => {
      expect(build(entries, true)).toBe(build(entries, false));
    }),
    { numRuns: 3000 },
  );
});

test("a cached parent replaced by a symlink, or by a file, is not used again", () => {
  const viaLink = [entry("dir", "./c/"), entry("file", "./a/b/f1"), entry("symlink", "./a/b", "../c"), entry("file", "./a/b/f2")];
  expect(build(viaLink, true)).toBe(build(viaLink, false));
  expect(build(viaLink, true)).toContain("/c/f2 file");
  const byFile = [entry("file", "./a/b/f1"), entry("file", "./a"), entry("file", "./a/b/f2")];
  expect(build(byFile, true)).toMatch(/^error: .*not a directory/);
});

test("shrunk counter-example: an entry that replaces the symlink its own parent path went through", () => {
  // "a" -> ".." makes "/a/a" the root; the file "/a/a/a" then replaces "a" itself, so "/a/a"
  // no longer names a directory and the next entry under it is an error, not a cache hit.
  const entries = [entry("symlink", "a", ".."), entry("file", "/a/a/a"), entry("dir", "/a/a/a")];
  expect(build(entries, true)).toBe(build(entries, false));
  expect(build(entries, true)).toMatch(/^error: .*not a directory/);
});
