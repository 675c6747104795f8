// src/io/copy-tree.ts, which kernel register and rm stand on: a tree copied with its symlinks
// (never followed), modes and times; special files refused; and a tree with read-only
// directories removed by its (unprivileged) owner, which plain `rm -r` cannot do.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { copyTree } from "../../src/io/copy-tree.ts";
import { isRoot, testWith } from "../helpers/env.ts";
import { REPO_ROOT, snapshot } from "./lib.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-copy-tree-"));
fs.chmodSync(tmp, 0o755);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("copyTree keeps symlinks as links, permission bits and mtimes; the destination must be new", () => {
  const src = path.join(tmp, "src");
  fs.mkdirSync(path.join(src, "d", "e"), { recursive: true });
  fs.writeFileSync(path.join(src, "d", "e", "f"), "data");
  fs.chmodSync(path.join(src, "d", "e", "f"), 0o640);
  fs.symlinkSync("/etc/passwd", path.join(src, "abs"));
  fs.symlinkSync("d/e/f", path.join(src, "rel"));
  fs.symlinkSync("missing", path.join(src, "dangling"));
  fs.chmodSync(path.join(src, "d", "e"), 0o500);
  fs.utimesSync(path.join(src, "d", "e", "f"), 1_600_000_000, 1_600_000_000);
  const dst = path.join(tmp, "dst");
  expect(copyTree(src, dst)).toEqual({ files: 1, dirs: 3, symlinks: 3, bytes: 4 });
  expect(snapshot(dst)).toEqual(snapshot(src));
  expect(fs.lstatSync(path.join(dst, "abs")).isSymbolicLink()).toBe(true);
  expect(fs.statSync(path.join(dst, "d", "e", "f")).mtimeMs).toBe(1_600_000_000_000);
  expect(() => copyTree(src, dst)).toThrow("EEXIST");
  fs.chmodSync(path.join(src, "d", "e"), 0o755);
  fs.chmodSync(path.join(dst, "d", "e"), 0o755);
});

testWith({ tools: isRoot() ? ["setpriv"] : [] }, "removeTree clears read-only directories an unprivileged owner could not rm -r", () => {
  // The owner's own directory holds the tree: removing it needs write access there.
  const home = path.join(tmp, "home");
  const tree = path.join(home, "ro");
  fs.mkdirSync(path.join(tree, "a", "b"), { recursive: true });
  fs.writeFileSync(path.join(tree, "a", "b", "f"), "x");
  fs.chmodSync(path.join(tree, "a", "b"), 0o555);
  fs.chmodSync(path.join(tree, "a"), 0o500);
  // As root permissions do not apply: run as nobody, owning the tree.
  const as = isRoot() ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
  if (isRoot()) Bun.spawnSync(["chown", "-R", "65534:65534", home]);
  const run = (code: string) => Bun.spawnSync([...as, process.execPath, "-e", code], { cwd: REPO_ROOT });
  const plain = run(`require("node:fs").rmSync(${JSON.stringify(tree)}, { recursive: true, force: true })`);
  expect(plain.exitCode).not.toBe(0);
  expect(fs.existsSync(path.join(tree, "a", "b", "f"))).toBe(true);
  const ours = run(`await (await import(${JSON.stringify(path.join(REPO_ROOT, "src/io/copy-tree.ts"))})).removeTree(${JSON.stringify(tree)})`);
  expect(ours.stderr.toString()).toBe("");
  expect(ours.exitCode).toBe(0);
  expect(fs.existsSync(tree)).toBe(false);
});
