import { expect, test } from "bun:test";
import { LayerMerger } from "../../src/merge/index.ts";
import { resolvePath } from "../../src/tree/index.ts";
import { dir, file, symlink } from "../merge/factory.ts";

const m = new LayerMerger();
m.beginLayer(0, "l");
for (const e of [dir("a/b"), file("a/b/f"), symlink("a/up", ".."), symlink("a/abs", "/a/b"), symlink("escape", "../../../a"), symlink("loop", "loop"), symlink("a/b/self", "f")]) m.add(e);
m.endLayer();
const root = m.root;

test("resolvePath follows relative and absolute links, the last component too, and stays inside the root", () => {
  expect(resolvePath(root, "/a/b/f")!.path).toBe("/a/b/f");
  expect(resolvePath(root, "a/up/a/abs/self")!.path).toBe("/a/b/f");
  expect(resolvePath(root, "/escape/b")!.path).toBe("/a/b");
  expect(resolvePath(root, "/../../a")!.path).toBe("/a");
  expect(resolvePath(root, "/")!.path).toBe("/");
});

test("missing components, a file used as a directory and a loop give null", () => {
  expect(resolvePath(root, "/a/nope")).toBeNull();
  expect(resolvePath(root, "/a/b/f/x")).toBeNull();
  expect(resolvePath(root, "/loop")).toBeNull();
});
