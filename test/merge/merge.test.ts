// One test (or a few) per rule of the OCI layer merge (src/merge), with entries built directly.

import { describe, expect, test } from "bun:test";
import { LayerMerger, MergeError } from "../../src/merge/index.ts";
import { at, dir, entry, file, hardlink, merge, mergeError, paths, symlink, wh } from "./factory.ts";

describe("whiteouts", () => {
  test("a whiteout deletes a lower file, and a lower directory with everything under it", () => {
    const m = merge([file("a"), dir("d"), file("d/x"), dir("d/e"), file("d/e/y"), file("keep")], [wh(".wh.a"), wh(".wh.d")]);
    expect(paths(m.root)).toEqual(["keep"]);
  });

  test("an entry of the same layer survives its whiteout, before or after it", () => {
    for (const order of ["before", "after"] as const) {
      const upper = order === "before" ? [file("a", { uid: 7 }), wh(".wh.a")] : [wh(".wh.a"), file("a", { uid: 7 })];
      const m = merge([file("a", { uid: 1 })], upper);
      expect(at(m.root, "a")?.uid).toBe(7);
      expect(at(m.root, "a")?.data?.source).toBe(1);
    }
  });

  test("a directory of the same layer survives its whiteout but keeps only the layer's children", () => {
    for (const order of ["before", "after"] as const) {
      const upper = [dir("d", { mode: 0o700 }), file("d/new")];
      const m = merge([dir("d"), file("d/old"), dir("d/sub"), file("d/sub/x")], order === "before" ? [...upper, wh(".wh.d")] : [wh(".wh.d"), ...upper]);
      expect(paths(m.root)).toEqual(["d/", "d/new"]);
      expect(at(m.root, "d")?.mode).toBe(0o700);
    }
  });

  test("a lower directory the layer only put things into becomes an implied directory holding just those", () => {
    const lower = [dir("d", { mode: 0o700, uid: 5 }), file("d/old"), dir("d/sub", { uid: 5 }), file("d/sub/old")];
    for (const upper of [
      [file("d/sub/new"), wh(".wh.d")],
      [wh(".wh.d"), file("d/sub/new")],
    ]) {
      const m = merge(lower, upper);
      expect(paths(m.root)).toEqual(["d/", "d/sub/", "d/sub/new"]);
      for (const p of ["d", "d/sub"]) {
        const n = at(m.root, p)!;
        expect([n.mode, n.uid, n.mtime.sec]).toEqual([0o755, 0, 0]);
      }
    }
  });

  test("a whiteout of something absent changes nothing but implies its parent", () => {
    const m = merge([file("f")], [wh("x/y/.wh.nothing"), wh(".wh.nothing")]);
    expect(paths(m.root)).toEqual(["f", "x/", "x/y/"]);
    expect(at(m.root, "x/y")?.mode).toBe(0o755);
  });

  test("the directory holding a whiteout survives a whiteout of itself in the same layer, in either order", () => {
    for (const upper of [
      [wh("d/.wh.x"), wh(".wh.d")],
      [wh(".wh.d"), wh("d/.wh.x")],
    ]) {
      const m = merge([dir("d", { uid: 3 }), file("d/x"), file("d/y")], upper);
      expect(paths(m.root)).toEqual(["d/"]);
      expect(at(m.root, "d")?.uid).toBe(0);
    }
  });

  test("whiteouts are never materialized, even in the first layer", () => {
    const m = merge([wh(".wh.a"), dir("d"), wh("d/.wh.b"), wh("d/.wh..wh..opq"), file("d/c")]);
    expect(paths(m.root)).toEqual(["d/", "d/c"]);
  });

  test("a whiteout deletes from all lower layers, not only the one below", () => {
    const m = merge([file("a")], [file("b")], [wh(".wh.a"), wh(".wh.b")]);
    expect(paths(m.root)).toEqual([]);
  });

  test("a whiteout in a later layer deletes what an earlier upper layer added", () => {
    const m = merge([dir("d")], [file("d/x")], [wh("d/.wh.x")], [file("d/x", { uid: 9 })]);
    expect(at(m.root, "d/x")?.uid).toBe(9);
    expect(at(m.root, "d/x")?.data?.source).toBe(3);
  });

  test("a whiteout goes through a symlinked parent inside the root", () => {
    const m = merge([dir("real"), file("real/x"), symlink("link", "/real")], [wh("link/.wh.x")]);
    expect(paths(m.root)).toEqual(["link", "real/"]);
  });

  test("a whiteout of the root, or of no name, is refused", () => {
    const cases: Array<[string, string]> = [
      [".wh.", 'layer 1: ".wh.": a whiteout of the image root is not allowed'],
      ["./.wh..", 'layer 1: "./.wh..": a whiteout of the image root is not allowed'],
      ["/.wh...", 'layer 1: "/.wh...": a whiteout of the image root is not allowed'],
      ["d/.wh..", 'layer 1: "d/.wh..": whiteout of "." names no entry of its directory'],
      ["d/.wh.", 'layer 1: "d/.wh.": whiteout of "" names no entry of its directory'],
    ];
    for (const [path, message] of cases) expect(mergeError([file("x")], [wh(path)]).message).toBe(message);
  });

  test("reserved .wh..wh.* names are refused", () => {
    const err = mergeError([dir("d")], [wh("d/.wh..wh.plnk")]);
    expect(err).toBeInstanceOf(MergeError);
    expect(err.message).toBe('layer 1: "d/.wh..wh.plnk": ".wh..wh.plnk" is a reserved whiteout name (only ".wh..wh..opq" is defined)');
  });

  test("a whiteout name used as a directory is refused", () => {
    expect(mergeError([wh(".wh.a/b")]).message).toBe('layer 0: ".wh.a/b": ".wh.a" is a whiteout name, so it cannot be a directory with members');
  });
});

describe("opaque directories", () => {
  test("the marker hides every lower child and keeps the layer's own, wherever it sits in the layer", () => {
    const lower = [dir("d", { uid: 4 }), file("d/old"), dir("d/olddir"), file("d/olddir/x"), file("outside")];
    const own = [file("d/new1"), symlink("d/new2", "new1")];
    for (let pos = 0; pos <= own.length; pos += 1) {
      const upper = [...own.slice(0, pos), wh("d/.wh..wh..opq"), ...own.slice(pos)];
      const m = merge(lower, upper);
      expect(paths(m.root)).toEqual(["d/", "d/new1", "d/new2", "outside"]);
      // The opaque directory itself keeps its (lower) metadata.
      expect(at(m.root, "d")?.uid).toBe(4);
    }
  });

  test("a subdirectory the layer also lists keeps only the layer's children (recursively)", () => {
    const lower = [dir("d"), dir("d/s"), file("d/s/old"), dir("d/s/t"), file("d/s/t/old"), file("d/gone")];
    for (const upper of [
      [dir("d/s", { mode: 0o711 }), file("d/s/t/new"), wh("d/.wh..wh..opq")],
      [wh("d/.wh..wh..opq"), dir("d/s", { mode: 0o711 }), file("d/s/t/new")],
    ]) {
      const m = merge(lower, upper);
      expect(paths(m.root)).toEqual(["d/", "d/s/", "d/s/t/", "d/s/t/new"]);
      expect(at(m.root, "d/s")?.mode).toBe(0o711);
      expect(at(m.root, "d/s/t")?.mode).toBe(0o755);
    }
  });

  test("an opaque marker of a missing directory implies it", () => {
    const m = merge([file("f")], [wh("a/b/.wh..wh..opq")]);
    expect(paths(m.root)).toEqual(["a/", "a/b/", "f"]);
  });

  test("an opaque root hides all of the lower layers", () => {
    const m = merge([dir("etc"), file("etc/a"), file("b")], [file("c"), wh(".wh..wh..opq")]);
    expect(paths(m.root)).toEqual(["c"]);
  });

  test("an opaque directory in an upper layer does not hide what a still higher layer adds", () => {
    const m = merge([dir("d"), file("d/a")], [wh("d/.wh..wh..opq"), file("d/b")], [file("d/c")]);
    expect(paths(m.root)).toEqual(["d/", "d/b", "d/c"]);
  });
});

describe("replacing and merging", () => {
  test("a later entry of another type replaces the earlier one (file, dir, symlink, fifo)", () => {
    const m = merge([file("a"), dir("b"), file("b/x"), symlink("c", "/x"), file("e")], [dir("a"), symlink("b", "a"), file("c"), entry("fifo", "e")]);
    expect(paths(m.root)).toEqual(["a/", "b", "c", "e"]);
    expect(at(m.root, "b")?.target).toBe("a");
    expect(at(m.root, "c")?.kind).toBe("file");
    expect(at(m.root, "e")?.kind).toBe("fifo");
  });

  test("a directory over a directory merges children and takes the new metadata", () => {
    const xattrs = new Map([["user.k", new Uint8Array([1])]]);
    const m = merge([dir("d", { mode: 0o700, uid: 1 }), file("d/a")], [dir("d", { mode: 0o750, uid: 2, gid: 3, xattrs, mtime: { sec: 42, nsec: 0 } }), file("d/b")]);
    const d = at(m.root, "d")!;
    expect(paths(m.root)).toEqual(["d/", "d/a", "d/b"]);
    expect([d.mode, d.uid, d.gid, d.mtime.sec]).toEqual([0o750, 2, 3, 42]);
    expect([...d.xattrs.keys()]).toEqual(["user.k"]);
  });

  test("a file replaced in a later layer references the later layer's data", () => {
    const lower = file("f", { size: 10 });
    const upper = file("f", { size: 20, runs: new Uint32Array([0, 1]) });
    const m = merge([lower], [upper]);
    expect(at(m.root, "f")?.data).toEqual({ source: 1, offset: upper.dataOffset, runs: new Uint32Array([0, 1]) });
    expect(at(m.root, "f")?.size).toBe(20);
  });

  test("the root entry of a layer sets the root's metadata; a non-directory root is refused", () => {
    const m = merge([dir("./", { mode: 0o700 })], [dir(".", { mode: 0o711 }), file("x")]);
    expect(m.root.mode).toBe(0o711);
    expect(mergeError([file("./")]).message).toBe('layer 0: "./": the image root must be a directory, not a file');
  });
});

describe("hardlinks", () => {
  test("a hardlink names a node of the same layer or of a lower layer", () => {
    const m = merge([file("lower")], [file("same"), hardlink("l1", "same"), hardlink("l2", "./lower"), hardlink("l3", "/lower")]);
    expect(at(m.root, "l1")).toBe(at(m.root, "same")!);
    expect(at(m.root, "l2")).toBe(at(m.root, "lower")!);
    expect(at(m.root, "l3")).toBe(at(m.root, "lower")!);
  });

  test("replacing one name of a hardlinked file later breaks the link; the other names keep the old node", () => {
    const m = merge([file("a", { uid: 1 }), hardlink("b", "a"), hardlink("c", "a")], [file("a", { uid: 2 })]);
    expect(at(m.root, "a")?.uid).toBe(2);
    expect(at(m.root, "b")).toBe(at(m.root, "c")!);
    expect(at(m.root, "b")?.uid).toBe(1);
    expect(at(m.root, "b")?.data?.source).toBe(0);
  });

  test("a whiteout of one name leaves the other names of the node", () => {
    const m = merge([file("a"), hardlink("b", "a")], [wh(".wh.a")]);
    expect(paths(m.root)).toEqual(["b"]);
    expect(at(m.root, "b")?.size).toBe(3);
  });

  test("a hardlink placed in the same layer as a whiteout of its target keeps the node when it comes first", () => {
    const m = merge([file("a")], [hardlink("b", "a"), wh(".wh.a")]);
    expect(paths(m.root)).toEqual(["b"]);
    expect(mergeError([file("a")], [wh(".wh.a"), hardlink("b", "a")]).message).toBe(
      'layer 1: "b": hardlink target "a" does not exist (it must appear earlier in this layer or in a lower layer)',
    );
  });

  test("a hardlink to a directory, to a missing path, to the root or out of the root is refused", () => {
    const cases: Array<[string, string]> = [
      ["d", 'layer 1: "l": hardlink target "d" is a directory'],
      ["missing", 'layer 1: "l": hardlink target "missing" does not exist (it must appear earlier in this layer or in a lower layer)'],
      ["d/.wh.x", 'layer 1: "l": hardlink target "d/.wh.x" does not exist (it must appear earlier in this layer or in a lower layer)'],
      ["./", 'layer 1: "l": hardlink target "./" is the root directory'],
      ["../etc/passwd", 'layer 1: "l": hardlink target "../etc/passwd" has a ".." component (it could leave the image root)'],
      ["d/../../x", 'layer 1: "l": hardlink target "d/../../x" has a ".." component (it could leave the image root)'],
    ];
    for (const [target, message] of cases) expect(mergeError([dir("d"), file("f")], [hardlink("l", target)]).message).toBe(message);
  });
});

describe("parents and paths", () => {
  test("parents missing from a layer are implied 0755 root:root with epoch times; existing ones keep their metadata", () => {
    const m = merge([dir("keep", { mode: 0o700, uid: 9 })], [file("keep/x"), file("new/deep/y")]);
    for (const p of ["new", "new/deep"]) {
      const n = at(m.root, p)!;
      expect([n.kind, n.mode, n.uid, n.gid, n.mtime.sec, n.atime.sec, n.ctime.sec]).toEqual(["dir", 0o755, 0, 0, 0, 0, 0]);
    }
    expect([at(m.root, "keep")!.mode, at(m.root, "keep")!.uid]).toEqual([0o700, 9]);
  });

  test("an implied parent listed later in the layer takes its metadata and keeps its children", () => {
    const m = merge([file("a/b"), dir("a", { mode: 0o701 })]);
    expect(paths(m.root)).toEqual(["a/", "a/b"]);
    expect(at(m.root, "a")?.mode).toBe(0o701);
  });

  test("path spellings normalize: ./a, /a, a/, a//b", () => {
    const m = merge([dir("./a/"), file("/a//b"), file("a/./c")], [wh("./a/.wh.b")]);
    expect(paths(m.root)).toEqual(["a/", "a/c"]);
  });

  test("'..' components and NUL bytes are refused", () => {
    expect(mergeError([file("a/../../etc/passwd")]).message).toBe('layer 0: "a/../../etc/passwd": path "a/../../etc/passwd" has a ".." component');
    expect(mergeError([file("a\0b")]).message).toBe('layer 0: "a\\x00b": path contains a NUL byte'); // names are escaped in messages
  });

  test("a member under a symlinked parent lands inside the root, even when the link points outside", () => {
    const m = merge([dir("real"), symlink("abs", "/real"), symlink("up", "../../../real"), symlink("out", "/../../tmp")], [file("abs/a"), file("up/b"), file("out/c")]);
    expect(paths(m.root)).toEqual(["abs", "out", "real/", "real/a", "real/b", "tmp/", "tmp/c", "up"]);
  });

  test("members are placed against the tree as it stands: a symlinked parent whited out later in the layer no longer redirects", () => {
    // l/x goes through the lower symlink into real/; once .wh.l removed the symlink, l/y makes an
    // implied directory l (the merger must not keep using the directory it resolved before).
    const m = merge([dir("real"), symlink("l", "/real")], [file("l/x"), wh(".wh.l"), file("l/y")]);
    expect(paths(m.root)).toEqual(["l/", "l/y", "real/", "real/x"]);
  });

  test("a symlink loop in a parent ends in a clear error", () => {
    const err = mergeError([symlink("a", "b"), symlink("b", "a")], [file("a/x")]);
    expect(err).toBeInstanceOf(MergeError);
    expect(err.message).toBe('layer 1: "a/x": too many levels of symbolic links resolving the parent directory (at "a")');
  });

  test("a file used as a parent is refused", () => {
    expect(mergeError([file("f")], [file("f/x")]).message).toBe('layer 1: "f/x": parent "f" is a file, not a directory');
  });
});

describe("errors and the layer protocol", () => {
  test("MergeError carries the layer label and the raw entry path", () => {
    const m = new LayerMerger();
    m.beginLayer(3, "layer 4/5 (sha256:1234abcd…)");
    const bad = entry("symlink", "caf\xc3\xa9", { linkname: "" });
    let err: unknown;
    try {
      m.add(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MergeError);
    const me = err as MergeError;
    expect(me.layer).toBe("layer 4/5 (sha256:1234abcd…)");
    expect(me.entry).toBe("caf\xc3\xa9");
    expect(me.message).toBe('layer 4/5 (sha256:1234abcd…): "café": symlink with an empty target');
  });

  test("add outside a layer, nested beginLayer and a stray endLayer are programming errors", () => {
    const m = new LayerMerger();
    expect(() => m.add(file("x"))).toThrow("outside a layer");
    expect(() => m.endLayer()).toThrow("without beginLayer");
    m.beginLayer(0, "L0");
    expect(() => m.beginLayer(1, "L1")).toThrow("L0 is still open");
  });

  test("a layer's entries are whiteout-protected only within that layer", () => {
    // Same names, three layers: the middle layer's whiteout deletes the bottom's file, the top
    // layer's whiteout deletes the middle's replacement.
    const m = merge([file("a", { uid: 1 })], [wh(".wh.a"), file("a", { uid: 2 })], [wh(".wh.a")]);
    expect(paths(m.root)).toEqual([]);
  });
});
