// Hand-made tars (test/helpers/tarwriter.ts) for what GNU tar will not write: odd orders,
// duplicates, bad names, bad checksums, truncation, binary xattrs, PAX/GNU corner cases.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadRootfsTar, TarError, type LoadedRootfs } from "../../src/tar/index.ts";
import { utf8ToName } from "../../src/tree/names.ts";
import { concat, member, paxMember, TarBuilder, toBytes } from "../helpers/tarwriter.ts";
import { nodeAt, readNodeData, removeDir, tempDir } from "./util.ts";

let work = "";
let counter = 0;
beforeAll(() => {
  work = tempDir("torture");
});
afterAll(() => removeDir(work));

async function load(tar: Uint8Array): Promise<LoadedRootfs> {
  const path = join(work, `t${(counter += 1)}.tar`);
  writeFileSync(path, tar);
  return loadRootfsTar(path, { spoolNear: join(work, "out.img") });
}

async function loadError(tar: Uint8Array): Promise<TarError> {
  try {
    const l = await load(tar);
    l.cleanup();
  } catch (e) {
    expect(e).toBeInstanceOf(TarError);
    return e as TarError;
  }
  throw new Error("expected a TarError");
}

const text = (l: LoadedRootfs, path: string) => Buffer.from(readNodeData(l.sources, nodeAt(l.root, path)!)).toString("latin1");

describe("tree building", () => {
  test("children before parents; parents never listed are implied 0755 root:root at the epoch", async () => {
    const t = new TarBuilder();
    t.file("a/b/c", "hello", { mode: 0o600, uid: 7, gid: 8, mtime: 1234 });
    t.dir("a", { mode: 0o700, uid: 5, gid: 6, mtime: 99 });
    const l = await load(t.end());
    const a = nodeAt(l.root, "a")!;
    expect(a).toMatchObject({ kind: "dir", mode: 0o700, uid: 5, gid: 6, mtime: { sec: 99, nsec: 0 } });
    expect([...a.children!.keys()]).toEqual(["b"]);
    expect(nodeAt(l.root, "a/b")).toMatchObject({ kind: "dir", mode: 0o755, uid: 0, gid: 0, mtime: { sec: 0, nsec: 0 } });
    expect(nodeAt(l.root, "a/b/c")).toMatchObject({ kind: "file", mode: 0o600, uid: 7, gid: 8, size: 5, mtime: { sec: 1234, nsec: 0 } });
    expect(text(l, "a/b/c")).toBe("hello");
    expect(l.root).toMatchObject({ kind: "dir", mode: 0o755, uid: 0, gid: 0 });
    l.cleanup();
  });

  test("path normalization: ./a, /a, a/, a//b; the root entry sets the root's metadata", async () => {
    const t = new TarBuilder();
    t.dir("./", { mode: 0o750, uid: 3, gid: 4, mtime: 77 });
    t.file("./x", "1");
    t.file("/y", "2");
    t.dir("d/", { mode: 0o711 });
    t.file("d//e", "3");
    t.file("d/./f", "4");
    const l = await load(t.end());
    expect(l.root).toMatchObject({ mode: 0o750, uid: 3, gid: 4, mtime: { sec: 77, nsec: 0 } });
    expect([...l.root.children!.keys()].sort()).toEqual(["d", "x", "y"]);
    expect(nodeAt(l.root, "d")!.mode).toBe(0o711);
    expect([...nodeAt(l.root, "d")!.children!.keys()].sort()).toEqual(["e", "f"]);
    expect(text(l, "d/e") + text(l, "d/f") + text(l, "x") + text(l, "y")).toBe("3412");
    l.cleanup();
  });

  test("duplicates: later file wins; dir over dir merges; file over dir and dir over file replace", async () => {
    const t = new TarBuilder();
    t.file("f", "first");
    const second = t.file("f", "second!");
    t.dir("d", { mode: 0o700, uid: 1 });
    t.file("d/child", "c");
    t.dir("d", { mode: 0o755, uid: 2, mtime: 5 });
    t.dir("g");
    t.file("g/child", "c");
    t.file("g", "now a file");
    t.file("h", "was a file");
    t.dir("h", { mode: 0o701 });
    t.symlink("s", "target");
    t.file("s", "replaces the symlink");
    const l = await load(t.end());
    expect(nodeAt(l.root, "f")!.data!.offset).toBe(second);
    expect(text(l, "f")).toBe("second!");
    expect(nodeAt(l.root, "d")).toMatchObject({ kind: "dir", mode: 0o755, uid: 2, mtime: { sec: 5, nsec: 0 } });
    expect([...nodeAt(l.root, "d")!.children!.keys()]).toEqual(["child"]);
    expect(nodeAt(l.root, "g")!.kind).toBe("file");
    expect(nodeAt(l.root, "h")).toMatchObject({ kind: "dir", mode: 0o701 });
    expect(nodeAt(l.root, "s")!.kind).toBe("file");
    l.cleanup();
  });

  test("hardlinks are the same node; replacing one name breaks the link; links to symlinks work", async () => {
    const t = new TarBuilder();
    t.file("a", "data", { mode: 0o4755 });
    t.hardlink("b", "a");
    t.hardlink("dir/c", "./a");
    t.symlink("s", "a");
    t.hardlink("s2", "s");
    t.hardlink("a2", "a");
    t.file("a2", "replaced");
    const l = await load(t.end());
    const a = nodeAt(l.root, "a")!;
    expect(nodeAt(l.root, "b")).toBe(a);
    expect(nodeAt(l.root, "dir/c")).toBe(a);
    expect(nodeAt(l.root, "s2")).toBe(nodeAt(l.root, "s")!);
    expect(nodeAt(l.root, "a2")).not.toBe(a);
    expect(a.mode).toBe(0o4755);
    l.cleanup();
  });

  test("hardlink to a missing target names both paths; hardlink to a directory is refused", async () => {
    const t = new TarBuilder();
    t.hardlink("link", "nowhere/file");
    const e = await loadError(t.end());
    expect(e.message).toContain("link");
    expect(e.message).toContain("nowhere/file");
    const t2 = new TarBuilder();
    t2.dir("d");
    t2.hardlink("l", "d");
    expect((await loadError(t2.end())).message).toContain("is a directory");
    const t3 = new TarBuilder();
    t3.hardlink("l", "later");
    t3.file("later", "x");
    expect((await loadError(t3.end())).message).toContain("later");
  });

  test("parents through symlinks resolve inside the tree; loops and non-directory parents are errors", async () => {
    const t = new TarBuilder();
    t.dir("usr/lib");
    t.symlink("lib", "usr/lib");
    t.symlink("abs", "/usr/lib");
    t.symlink("up", "../../../usr");
    t.file("lib/x", "1");
    t.file("abs/y", "2");
    t.file("up/lib/z", "3");
    const l = await load(t.end());
    expect([...nodeAt(l.root, "usr/lib")!.children!.keys()].sort()).toEqual(["x", "y", "z"]);
    expect(nodeAt(l.root, "lib")!.kind).toBe("symlink");
    l.cleanup();
    const loop = new TarBuilder();
    loop.symlink("a", "b");
    loop.symlink("b", "a");
    loop.file("a/f", "x");
    expect((await loadError(loop.end())).message).toContain("too many levels of symbolic links");
    const notDir = new TarBuilder();
    notDir.file("f", "x");
    notDir.file("f/g", "y");
    expect((await loadError(notDir.end())).message).toContain("not a directory");
  });

  test("bad names: '..', NUL, a 256-byte component; 255 bytes is fine", async () => {
    const dots = new TarBuilder();
    dots.file("a/../../etc/passwd", "x");
    const e1 = await loadError(dots.end());
    expect(e1.message).toContain('".."');
    expect(e1.message).toContain("a/../../etc/passwd");
    const nul = new TarBuilder();
    nul.file("ignored", "x", { pax: { path: toBytes("a\0b") } });
    expect((await loadError(nul.end())).message).toContain("NUL");
    const long = new TarBuilder();
    long.file(`d/${"n".repeat(256)}`, "x", { gnuLong: true });
    expect((await loadError(long.end())).message).toContain("256 bytes exceeds 255");
    const ok = new TarBuilder();
    ok.file(`d/${"n".repeat(255)}`, "x", { gnuLong: true });
    const l = await load(ok.end());
    expect(nodeAt(l.root, `d/${"n".repeat(255)}`)!.size).toBe(1);
    l.cleanup();
    const rootFile = new TarBuilder();
    rootFile.symlink(".", "x");
    expect((await loadError(rootFile.end())).message).toContain("root must be a directory");
  });

  test("mode keeps 07777 only; numeric ids win over names; devices, fifos, symlink targets as written", async () => {
    const t = new TarBuilder();
    t.file("f", "", { mode: 0o107755, uid: 1000, gid: 1001, uname: "root", gname: "root" });
    t.device("null", "char", 1, 3, { mode: 0o666 });
    t.device("sda", "block", 259, 65536);
    t.fifo("p", { mode: 0o600 });
    t.symlink("s", toBytes(new Uint8Array([0x2f, 0xff, 0xfe, 0x2f, 0x2f, 0x2e])));
    const l = await load(t.end());
    expect(nodeAt(l.root, "f")).toMatchObject({ kind: "file", mode: 0o7755, uid: 1000, gid: 1001, size: 0 });
    expect(nodeAt(l.root, "f")!.data).toBeUndefined();
    expect(nodeAt(l.root, "null")).toMatchObject({ kind: "chardev", major: 1, minor: 3, mode: 0o666 });
    expect(nodeAt(l.root, "sda")).toMatchObject({ kind: "blockdev", major: 259, minor: 65536 });
    expect(nodeAt(l.root, "p")).toMatchObject({ kind: "fifo", mode: 0o600 });
    expect(nodeAt(l.root, "s")!.target).toBe("/\xff\xfe//.");
    l.cleanup();
  });
});

describe("PAX and GNU extensions", () => {
  test("binary xattr values (invalid UTF-8, NUL, '=', newline) are kept byte for byte", async () => {
    const value = new Uint8Array([0xff, 0x00, 0x3d, 0x0a, 0xc3, 0x28, 0x80, 0x00]);
    const t = new TarBuilder();
    t.file("f", "x", {
      pax: [
        ["SCHILY.xattr.user.bin", value],
        ["SCHILY.xattr.user.empty", ""],
        ["SCHILY.xattr.security.capability", new Uint8Array([1, 0, 0, 2, 0x20, 0, 0, 0])],
        [`LIBARCHIVE.xattr.user.b64%3Dname`, Buffer.from([0xde, 0xad, 0xbe, 0xef]).toString("base64")],
      ],
    });
    const l = await load(t.end());
    const x = nodeAt(l.root, "f")!.xattrs;
    expect([...x.get("user.bin")!]).toEqual([...value]);
    expect(x.get("user.empty")!.length).toBe(0);
    expect([...x.get("security.capability")!]).toEqual([1, 0, 0, 2, 0x20, 0, 0, 0]);
    expect([...x.get("user.b64=name")!]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    l.cleanup();
  });

  test("PAX path/linkpath/size/uid/gid/times override the header; fractional and negative times", async () => {
    const t = new TarBuilder();
    const long = `${"p".repeat(150)}/${"q".repeat(150)}`;
    t.file("short", "content", {
      pax: { path: long, uid: "4294967295", gid: "3000000", mtime: "-1.25", atime: "1700000000.5", ctime: "4102444800.000000001", uname: "someone" },
    });
    t.symlink("s", "short-target", { pax: { linkpath: "t".repeat(300) } });
    t.file("neg", "", { pax: { mtime: "-86400" } });
    t.file("frac", "", { pax: { mtime: "12.1234567891" } });
    t.file("ü", "", {});
    const l = await load(t.end());
    const f = nodeAt(l.root, long)!;
    expect(f).toMatchObject({ uid: 4294967295, gid: 3000000, size: 7 });
    expect(f.mtime).toEqual({ sec: -2, nsec: 750_000_000 });
    expect(f.atime).toEqual({ sec: 1700000000, nsec: 500_000_000 });
    expect(f.ctime).toEqual({ sec: 4102444800, nsec: 1 });
    expect(text(l, long)).toBe("content");
    expect(nodeAt(l.root, "s")!.target).toBe("t".repeat(300));
    expect(nodeAt(l.root, "neg")!.mtime).toEqual({ sec: -86400, nsec: 0 });
    expect(nodeAt(l.root, "neg")!.atime).toEqual({ sec: -86400, nsec: 0 });
    expect(nodeAt(l.root, "frac")!.mtime).toEqual({ sec: 12, nsec: 123456789 });
    expect(nodeAt(l.root, utf8ToName("ü"))).toBeDefined();
    l.cleanup();
  });

  test("PAX size overrides the header size field", async () => {
    const data = toBytes("0123456789");
    const tar = concat([paxMember({ size: "10" }), member({ name: "f", size: 0 }, new Uint8Array(0)).subarray(0, 512), data, new Uint8Array(502), new Uint8Array(1024)]);
    const l = await load(tar);
    expect(text(l, "f")).toBe("0123456789");
    l.cleanup();
  });

  test("global PAX headers apply to later members; per-member records win; empty values unset", async () => {
    const t = new TarBuilder();
    t.file("before", "");
    t.globalPax({ uid: "500", gid: "600", mtime: "42.5" });
    t.file("a", "", { uid: 1 });
    t.file("b", "", { pax: { uid: "700" } });
    t.globalPax({ uid: "" });
    t.file("c", "", { uid: 9 });
    const l = await load(t.end());
    expect(nodeAt(l.root, "before")).toMatchObject({ uid: 0, gid: 0 });
    expect(nodeAt(l.root, "a")).toMatchObject({ uid: 500, gid: 600, mtime: { sec: 42, nsec: 500_000_000 } });
    expect(nodeAt(l.root, "b")).toMatchObject({ uid: 700, gid: 600 });
    expect(nodeAt(l.root, "c")).toMatchObject({ uid: 9, gid: 600 });
    l.cleanup();
  });

  test("text ACLs (SCHILY.acl.*) become VFS v2 xattrs, sorted; the binary xattr wins when both exist", async () => {
    const t = new TarBuilder();
    t.file("f", "", { pax: { "SCHILY.acl.access": "user::rw-\nuser:1000:rw-\nuser:0:r--\ngroup::r--\ngroup:100:r--\nmask::rwx\nother::r--\n" } });
    t.dir("d", { pax: { "SCHILY.acl.default": "user::rwx,group::r-x,other::---,user:7:rwx:7,mask::rwx" } });
    t.file("both", "", { pax: [["SCHILY.acl.access", "user::rwx,user:5:rwx,group::rwx,mask::rwx,other::rwx"], ["SCHILY.xattr.system.posix_acl_access", new Uint8Array([2, 0, 0, 0, 9])]] });
    t.file("minimal", "", { pax: { "SCHILY.acl.access": "user::rw-,group::r--,other::r--" } });
    const l = await load(t.end());
    const hex = (p: string, k: string) => Buffer.from(nodeAt(l.root, p)!.xattrs.get(k) ?? []).toString("hex");
    // The exact bytes the kernel returned for `setfacl -m u:1000:rw-,g:100:r--,u:0:r -m m::rwx` on a 0644 file.
    expect(hex("f", "system.posix_acl_access")).toBe(
      "0200000001000600ffffffff020004000000000002000600e803000004000400ffffffff080004006400000010000700ffffffff20000400ffffffff",
    );
    expect(hex("d", "system.posix_acl_default")).toBe("0200000001000700ffffffff020007000700000004000500ffffffff10000700ffffffff20000000ffffffff");
    expect(hex("both", "system.posix_acl_access")).toBe("0200000009");
    expect(nodeAt(l.root, "minimal")!.xattrs.size).toBe(0);
    l.cleanup();
    const bad = new TarBuilder();
    bad.file("f", "", { pax: { "SCHILY.acl.access": "user::rw-,user:no-such-user-here:rw-,group::r--,mask::rw-,other::r--" } });
    expect((await loadError(bad.end())).message).toContain("no-such-user-here");
  });

  test("GNU long names and links, base-256 numbers (big sizes, negative mtime)", async () => {
    const t = new TarBuilder();
    const long = `${"l".repeat(120)}/${"m".repeat(120)}`;
    t.file(long, "data", { gnuLong: true, format: "gnu" });
    t.symlink("sym", "k".repeat(200), { gnuLong: true });
    t.file("neg", "z", { format: "gnu", mtime: -1_000_000_000, uid: 2 ** 32 - 1, gid: 70000, base256: true });
    const l = await load(t.end());
    expect(text(l, long)).toBe("data");
    expect(nodeAt(l.root, "sym")!.target).toBe("k".repeat(200));
    expect(nodeAt(l.root, "neg")).toMatchObject({ mtime: { sec: -1_000_000_000, nsec: 0 }, uid: 2 ** 32 - 1, gid: 70000 });
    expect(text(l, "neg")).toBe("z");
    l.cleanup();
    const big = new TarBuilder();
    big.file("f", "", { format: "gnu", uid: 2 ** 40 });
    expect((await loadError(big.end())).message).toContain("uid 1099511627776 is out of range");
  });

  test("v7 directories by trailing slash; ustar prefix field", async () => {
    const tar = concat([
      member({ name: "olddir/", format: "v7", typeflag: "\0", mode: 0o40755 }),
      member({ name: "olddir/file", format: "v7", typeflag: "\0" }, "v7"),
      member({ name: "name", prefix: "pre/fix", typeflag: "0" }, "u"),
      new Uint8Array(1024),
    ]);
    const l = await load(tar);
    expect(nodeAt(l.root, "olddir")).toMatchObject({ kind: "dir", mode: 0o755 });
    expect(text(l, "olddir/file")).toBe("v7");
    expect(text(l, "pre/fix/name")).toBe("u");
    l.cleanup();
  });
});

describe("issue 11", () => {
  test("a symlink's mode is 0777 whatever its header says, also through a hardlink to it", async () => {
    const t = new TarBuilder();
    t.file("target", "x");
    t.symlink("link", "target", { mode: 0o644 });
    t.hardlink("hard", "link");
    const l = await load(t.end());
    expect(nodeAt(l.root, "link")).toMatchObject({ kind: "symlink", mode: 0o777 });
    expect(nodeAt(l.root, "hard")).toBe(nodeAt(l.root, "link"));
    l.cleanup();
  });

  test("'./', '/' and '././' as a regular file are refused like '.' (not taken as the root directory)", async () => {
    for (const name of [".", "./", "/", "//", "././"]) {
      const t = new TarBuilder();
      t.file("etc", "x");
      t.file(name, "", { mode: 0o644 });
      const err = await loadError(t.end());
      expect(err.message, name).toContain("the archive root must be a directory, not a file");
    }
    // A v7-style directory (a regular-file entry with a trailing slash) elsewhere is still a directory.
    const t = new TarBuilder();
    t.file("./etc/", "", { mode: 0o750 });
    const l = await load(t.end());
    expect(nodeAt(l.root, "etc")).toMatchObject({ kind: "dir", mode: 0o750 });
    l.cleanup();
  });
});
