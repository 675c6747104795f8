// The ext4 writer on synthetic trees, checked by e2fsck/debugfs and, as root, the kernel.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ext4ImageWriter, Ext4PlanError, planExt4, writeExt4Image } from "../../src/ext4/index.ts";
import { encodeTime } from "../../src/ext4/inode.ts";
import { openExt4Image, type Ext4Image } from "../../src/ext4/read/index.ts";
import { backupGroups, defaultJournalBlocks } from "../../src/ext4/geometry.ts";
import { extentTreeBlockCount } from "../../src/ext4/extents.ts";
import { newDir, newNode, type ByteSource, type FsNode } from "../../src/tree/index.ts";
import { testWith } from "../helpers/env.ts";
import { debugfsStat, dumpe2fs, e2fsckClean, run } from "../helpers/oracles.ts";
import { mountImage } from "../helpers/kernel-compare.ts";

const work = mkdtempSync(join(tmpdir(), "banger-writer-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const E2FS = ["e2fsck", "debugfs", "dumpe2fs"];

/** Deterministic non-zero bytes at any offset: stands in for a huge tar without storing one. */
class PatternSource implements ByteSource {
  readInto(into: Uint8Array, offset: number): void {
    for (let i = 0; i < into.length; i++) {
      const x = offset + i;
      into[i] = ((x * 2654435761) >>> 24) | 1;
    }
  }
  close(): void {}
}

function patternSha(offset: number, size: number, runs?: number[]): string {
  const h = createHash("sha256");
  const src = new PatternSource();
  const chunk = 1 << 20;
  const zero = new Uint8Array(4096);
  const inRun = (block: number) => {
    if (!runs) return true;
    for (let i = 0; i < runs.length; i += 2) if (block >= runs[i]! && block < runs[i]! + runs[i + 1]!) return true;
    return false;
  };
  for (let pos = 0; pos < size; ) {
    const block = Math.floor(pos / 4096);
    const len = Math.min(4096, size - pos);
    if (inRun(block)) {
      const buf = new Uint8Array(len);
      src.readInto(buf, offset + pos);
      h.update(buf);
    } else {
      h.update(zero.subarray(0, len));
    }
    pos += len;
    void chunk;
  }
  return h.digest("hex");
}

/** A sparse file: `count` separated single data blocks, so each becomes one extent. */
function scatteredRuns(count: number): number[] {
  const runs: number[] = [];
  for (let i = 0; i < count; i++) runs.push(i * 2, 1);
  return runs;
}

function image(name: string): string {
  return join(work, name);
}

describe("geometry", () => {
  test("sparse_super backups are in groups 0, 1 and powers of 3, 5, 7", () => {
    expect(backupGroups(100)).toEqual([0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
  });
  test("journal sizes follow mke2fs's table", () => {
    expect(defaultJournalBlocks(262144)).toBe(8192); // 1 GiB → 32 MiB, as mkfs.ext4 makes
    expect(defaultJournalBlocks(32767)).toBe(1024);
    expect(defaultJournalBlocks(1000)).toBe(0);
  });
  test("extent tree block counts: depth 0 up to 4 extents, then leaves of 340, then index blocks", () => {
    expect(extentTreeBlockCount(4)).toBe(0);
    expect(extentTreeBlockCount(5)).toBe(1);
    expect(extentTreeBlockCount(1360)).toBe(4);
    expect(extentTreeBlockCount(1361)).toBe(6); // 5 leaves + 1 index block
  });
});

describe("timestamps", () => {
  test("pre-1970 uses epoch bits 00 with a negative 32-bit value", () => {
    expect(encodeTime({ sec: -1, nsec: 5 })).toEqual({ seconds: 0xffffffff, extra: 5 << 2 });
    expect(encodeTime({ sec: -(2 ** 31), nsec: 0 })).toEqual({ seconds: 0x80000000, extra: 0 });
  });
  test("after 2038 sets the epoch bits", () => {
    expect(encodeTime({ sec: 2 ** 31, nsec: 0 })).toEqual({ seconds: 0x80000000, extra: 1 });
    expect(encodeTime({ sec: 2 ** 32 + 7, nsec: 999_999_999 })).toEqual({ seconds: 7, extra: ((999_999_999 << 2) | 1) >>> 0 });
  });
  test("times beyond ext4's range are clamped, not wrapped", () => {
    expect(encodeTime({ sec: 2 ** 40, nsec: 0 })).toEqual({ seconds: 0x7fffffff, extra: 3 });
    expect(encodeTime({ sec: -(2 ** 40), nsec: 0 })).toEqual({ seconds: 0x80000000, extra: 0 });
  });
});

interface FileCase {
  name: string;
  size: number;
  runs?: number[];
  offset: number;
}

function fileTree(cases: FileCase[]): FsNode {
  const root = newDir();
  for (const c of cases) {
    root.children!.set(c.name, newNode("file", { size: c.size, data: { source: 0, offset: c.offset, runs: c.runs } }));
  }
  return root;
}

describe("regular files and extent trees", () => {
  const MiB = 1 << 20;
  const cases: FileCase[] = [
    { name: "empty", size: 0, offset: 0 },
    { name: "small", size: 100, offset: 0 },
    { name: "one-block", size: 4096, offset: 4096 },
    { name: "three-blocks", size: 3 * 4096, offset: 8192 },
    { name: "depth0-holes", size: 10 * 4096, runs: scatteredRuns(4), offset: 1 << 20 },
    { name: "depth1", size: 2000 * 4096, runs: scatteredRuns(500), offset: 2 << 20 },
    { name: "depth2", size: 4000 * 4096, runs: scatteredRuns(1500), offset: 64 << 20 },
    { name: "over-128MiB", size: 130 * MiB + 5, offset: 128 << 20 },
    { name: "all-zero", size: 50 * 4096, runs: [], offset: 0 },
    { name: "over-4GiB", size: 4.5 * 2 ** 30 + 123, runs: [0, 1, 1_179_000, 648], offset: 7 << 30 },
  ];

  testWith({ tools: E2FS }, "files of every size class pass e2fsck and have the planned extent depth", async () => {
    const out = image("files.img");
    await writeExt4Image(fileTree(cases), [new PatternSource()], { out, metadataCsum: true });
    e2fsckClean(out);
    const depthOf = (name: string) => {
      const ex = run(["/usr/sbin/debugfs", "-R", `ex /${name}`, out]).stdout;
      const levels = [...ex.matchAll(/^\s*(\d+)\/\s*(\d+)/gm)].map((m) => Number(m[2]));
      return levels.length ? Math.max(...levels) : 0;
    };
    expect(depthOf("depth0-holes")).toBe(0);
    expect(depthOf("depth1")).toBe(1);
    expect(depthOf("depth2")).toBe(2);
    const big = debugfsStat(out, "/over-4GiB");
    expect(Number(big.size)).toBe(4.5 * 2 ** 30 + 123);
    // Only the non-zero blocks are allocated (plus no tree blocks: 2 extents).
    expect(Number(big.blockcount)).toBe((1 + 648) * 8);
    expect(Number(debugfsStat(out, "/all-zero").blockcount)).toBe(0);
    expect(Number(debugfsStat(out, "/over-128MiB").blockcount)).toBe(Math.ceil((130 * MiB + 5) / 4096) * 8);
  }, 120_000);

  testWith({ tools: E2FS, root: true }, "the kernel reads back every byte, holes as zeros", async () => {
    const out = image("files-kernel.img");
    await writeExt4Image(fileTree(cases.filter((c) => c.name !== "over-4GiB")), [new PatternSource()], { out, metadataCsum: true });
    await mountImage(out, async (dir) => {
      for (const c of cases) {
        if (c.name === "over-4GiB") continue;
        const bytes = readFileSync(join(dir, c.name));
        expect(bytes.length).toBe(c.size);
        expect(createHash("sha256").update(bytes).digest("hex")).toBe(patternSha(c.offset, c.size, c.runs));
      }
    });
  }, 120_000);
});

describe("directories, links, special files", () => {
  function specialTree(): FsNode {
    const root = newDir({ mtime: { sec: 1_700_000_000, nsec: 1 } });
    const etc = newDir();
    root.children!.set("etc", etc);
    const hosts = newNode("file", { size: 10, bytes: new TextEncoder().encode("127.0.0.1\n"), uid: 70000, gid: 70001 });
    etc.children!.set("hosts", hosts);
    etc.children!.set("hosts.hardlink", hosts);
    const sym = newNode("symlink", { target: "hosts" });
    etc.children!.set("fast", sym);
    etc.children!.set("fast.hardlink", sym);
    etc.children!.set("slow", newNode("symlink", { target: "/".repeat(1) + "a".repeat(300) }));
    const dev = newNode("chardev", { major: 1, minor: 3, mode: 0o666 });
    root.children!.set("null", dev);
    root.children!.set("null.hardlink", dev);
    root.children!.set("nvme", newNode("blockdev", { major: 259, minor: 70000 }));
    root.children!.set("fifo", newNode("fifo", {}));
    root.children!.set("socket", newNode("socket", {}));
    root.children!.set("sticky", newDir({ mode: 0o1777 }));
    root.children!.set("setgid", newNode("file", { mode: 0o2755 }));
    const big = newDir();
    for (let i = 0; i < 20000; i++) big.children!.set(`entry-with-a-longer-name-${i}`, newNode("file", {}));
    root.children!.set("big", big);
    const caps = newNode("file", { mode: 0o755 });
    caps.xattrs.set("security.capability", Uint8Array.from(Buffer.from("0100000200200000000000000000000000000000", "hex")));
    caps.xattrs.set("security.selinux", new TextEncoder().encode("system_u:object_r:bin_t:s0\0"));
    caps.xattrs.set("user.comment", new Uint8Array(2000).fill(0x61));
    caps.xattrs.set("trusted.x", Uint8Array.from([0, 255, 0, 1]));
    root.children!.set("caps", caps);
    // Two inodes with the same block-sized xattrs share one refcounted block.
    for (const name of ["shares-xattr-block-1", "shares-xattr-block-2"]) {
      const shared = newNode("file", {});
      shared.xattrs.set("user.comment", new Uint8Array(3000).fill(0x62));
      root.children!.set(name, shared);
    }
    return root;
  }

  testWith({ tools: E2FS }, "links, devices, htree and xattr blocks pass e2fsck and debugfs", async () => {
    const out = image("special.img");
    await writeExt4Image(specialTree(), [], { out, metadataCsum: true });
    e2fsckClean(out);
    expect(debugfsStat(out, "/etc/hosts").links).toBe(2);
    expect(debugfsStat(out, "/etc/fast").links).toBe(2);
    expect(debugfsStat(out, "/null").links).toBe(2);
    expect(debugfsStat(out, "/").links).toBe(6); // ., .., etc, sticky, big, lost+found
    const htree = run(["/usr/sbin/debugfs", "-R", "htree /big", out]).stdout;
    expect(htree).toContain("Hash Version: 1");
    const caps = debugfsStat(out, "/caps");
    expect(caps.fileAcl).toBeGreaterThan(0);
    const shared = debugfsStat(out, "/shares-xattr-block-1").fileAcl;
    expect(shared).toBeGreaterThan(0);
    expect(debugfsStat(out, "/shares-xattr-block-2").fileAcl).toBe(shared);
    expect(shared).not.toBe(caps.fileAcl);
    const fs = dumpe2fs(out);
    for (const f of ["has_journal", "metadata_csum", "64bit", "flex_bg", "extent", "dir_index", "dir_nlink", "extra_isize", "huge_file", "large_file", "sparse_super", "ext_attr", "filetype"]) {
      expect(fs.features.has(f)).toBe(true);
    }
    expect(fs.features.has("orphan_file")).toBe(false);
    expect(fs.features.has("metadata_csum_seed")).toBe(false);
  }, 120_000);

  testWith({ tools: E2FS, root: true }, "the kernel sees links, devices, modes and owners", async () => {
    const out = image("special-kernel.img");
    await writeExt4Image(specialTree(), [], { out, metadataCsum: true });
    await mountImage(out, async (dir) => {
      const hosts = statSync(join(dir, "etc/hosts"));
      expect(hosts.ino).toBe(statSync(join(dir, "etc/hosts.hardlink")).ino);
      expect([hosts.uid, hosts.gid]).toEqual([70000, 70001]);
      const nvme = statSync(join(dir, "nvme"));
      expect(nvme.isBlockDevice()).toBe(true);
      expect([Math.floor(nvme.rdev / 256) & 0xfff, (nvme.rdev & 0xff) | ((nvme.rdev >> 12) & 0xfff00)]).toEqual([259, 70000]);
      expect(statSync(join(dir, "sticky")).mode & 0o7777).toBe(0o1777);
      expect(statSync(join(dir, "setgid")).mode & 0o7777).toBe(0o2755);
      expect(readdirSync(join(dir, "big")).length).toBe(20000);
    });
  }, 120_000);

  testWith({ tools: E2FS }, "compatibility mode without metadata_csum passes e2fsck", async () => {
    const out = image("nocsum.img");
    await writeExt4Image(specialTree(), [], { out, metadataCsum: false });
    e2fsckClean(out);
    expect(dumpe2fs(out).features.has("metadata_csum")).toBe(false);
  }, 120_000);

  test("same tree, same options: byte-identical images; another UUID changes them", async () => {
    const a = image("det-a.img");
    const b = image("det-b.img");
    const c = image("det-c.img");
    await writeExt4Image(specialTree(), [], { out: a, metadataCsum: true });
    await writeExt4Image(specialTree(), [], { out: b, metadataCsum: true });
    await writeExt4Image(specialTree(), [], { out: c, metadataCsum: true, uuid: "01234567-89ab-4def-8123-456789abcdef" });
    const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
    expect(sha(a)).toBe(sha(b));
    expect(sha(c)).not.toBe(sha(a));
  }, 120_000);
});

describe("dir_nlink", () => {
  testWith({ tools: E2FS }, "a directory with more than 65000 subdirectories records a link count of 1", async () => {
    const out = image("nlink.img");
    const root = newDir();
    const wide = newDir();
    for (let i = 0; i < 65_010; i++) wide.children!.set(`d${i}`, newDir());
    root.children!.set("wide", wide);
    const narrow = newDir();
    for (let i = 0; i < 3; i++) narrow.children!.set(`d${i}`, newDir());
    root.children!.set("narrow", narrow);
    await writeExt4Image(root, [], { out, metadataCsum: true });
    e2fsckClean(out);
    expect(debugfsStat(out, "/wide").links).toBe(1);
    expect(debugfsStat(out, "/narrow").links).toBe(5);
    rmSync(out);
  }, 300_000);
});

describe("sizing", () => {
  test("the default size is max(1 GiB, used x 1.25)", async () => {
    const out = image("default.img");
    const stats = await writeExt4Image(newDir(), [], { out, metadataCsum: true });
    expect(stats.sizeBytes).toBe(2 ** 30);
    const big = image("default-big.img");
    const tree = fileTree([{ name: "f", size: 1.5 * 2 ** 30, offset: 0, runs: [0, 1] }]);
    // Sparse content: used space stays small, so 1 GiB still holds it.
    expect((await writeExt4Image(tree, [new PatternSource()], { out: big, metadataCsum: true })).sizeBytes).toBe(2 ** 30);
    rmSync(out);
    rmSync(big);
  });

  test("a too-small --size is a clear error before anything is written", async () => {
    const out = image("small.img");
    const tree = fileTree([{ name: "f", size: 64 << 20, offset: 0 }]);
    await expect(writeExt4Image(tree, [new PatternSource()], { out, metadataCsum: true, size: 32 << 20 })).rejects.toThrow(/too small.*needs at least \d+ MiB/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work).filter((n) => n.includes("small.img"))).toEqual([]);
  });

  testWith({ tools: E2FS }, "an explicit --size is honoured and spans many groups with backups", async () => {
    const out = image("sized.img");
    const stats = await writeExt4Image(fileTree([{ name: "f", size: 300 << 20, offset: 0 }]), [new PatternSource()], { out, metadataCsum: true, size: 5 * 2 ** 30 });
    expect(stats.sizeBytes).toBe(5 * 2 ** 30);
    e2fsckClean(out);
  }, 120_000);

  testWith({ tools: E2FS }, "a last group of a size that is no multiple of 8 or 32 blocks: free counts and bitmap padding agree with e2fsck", async () => {
    // 73,242 blocks: the last group has 7,706 (7,706 % 32 = 26), some of them in use.
    for (const size of [300_000_000, 3 * 2 ** 27 - 4096 * 3]) {
      const out = image(`odd-${size}.img`);
      const stats = await writeExt4Image(fileTree([{ name: "f", size: 40 << 20, offset: 0 }]), [new PatternSource()], { out, metadataCsum: true, size });
      expect(stats.sizeBytes % (32 * 4096)).not.toBe(0);
      e2fsckClean(out);
    }
  }, 60_000);
});

describe("issue 11: modes as the kernel keeps them, limits refused", () => {
  const vfsAcl = (entries: Array<[number, number, number]>): Uint8Array => {
    const out = new Uint8Array(4 + 8 * entries.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, 2, true);
    entries.forEach(([tag, perm, id], i) => {
      dv.setUint16(4 + 8 * i, tag, true);
      dv.setUint16(6 + 8 * i, perm, true);
      dv.setUint32(8 + 8 * i, id, true);
    });
    return out;
  };
  const U = 0xffffffff;
  const withReader = (img: string, fn: (r: Ext4Image) => void): void => {
    const r = openExt4Image(img);
    try {
      fn(r);
    } finally {
      r.close();
    }
  };

  test("a symlink node of any mode, and every name of it, is written S_IFLNK|0777", async () => {
    const root = newDir();
    const link = newNode("symlink", { mode: 0o644, target: "somewhere" });
    root.children!.set("link", link);
    root.children!.set("hard", link);
    root.children!.set("slow", newNode("symlink", { mode: 0o4600, target: "/" + "x".repeat(100) }));
    const img = image("symlink-modes.img");
    await writeExt4Image(root, [], { out: img, metadataCsum: true });
    withReader(img, (r) => {
      for (const p of ["/link", "/hard", "/slow"]) expect(r.stat(r.lookup(p)).mode).toBe(0o120777);
      expect(r.stat(r.lookup("/hard")).linksCount).toBe(2);
    });
  });

  test("an access ACL sets the owner, group (mask, else group entry) and other bits; special bits stay", async () => {
    const root = newDir();
    // Mode narrower than the ACL's mask, wider than it, and setgid beside a mask.
    const narrower = vfsAcl([[0x01, 6, U], [0x02, 7, 1000], [0x04, 4, U], [0x10, 6, U], [0x20, 4, U]]);
    const wider = vfsAcl([[0x01, 4, U], [0x02, 4, 1000], [0x04, 4, U], [0x10, 4, U], [0x20, 0, U]]);
    root.children!.set("narrower", newNode("file", { mode: 0o644, xattrs: new Map([["system.posix_acl_access", narrower]]) }));
    root.children!.set("wider", newNode("file", { mode: 0o775, xattrs: new Map([["system.posix_acl_access", wider]]) }));
    root.children!.set("setgid", newNode("dir", { mode: 0o2700, xattrs: new Map([["system.posix_acl_access", narrower]]) }));
    // No mask (no named entries): the group entry gives the group bits.
    const base = vfsAcl([[0x01, 7, U], [0x04, 5, U], [0x20, 0, U]]);
    root.children!.set("no-mask", newNode("file", { mode: 0o644, xattrs: new Map([["system.posix_acl_access", base]]) }));
    // A default ACL is a template for new files: it does not touch the directory's mode.
    root.children!.set("default-only", newNode("dir", { mode: 0o750, xattrs: new Map([["system.posix_acl_default", wider]]) }));
    const img = image("acl-modes.img");
    await writeExt4Image(root, [], { out: img, metadataCsum: true });
    withReader(img, (r) => {
      expect(r.stat(r.lookup("/narrower")).mode & 0o7777).toBe(0o664);
      expect(r.stat(r.lookup("/wider")).mode & 0o7777).toBe(0o440);
      expect(r.stat(r.lookup("/setgid")).mode & 0o7777).toBe(0o2664);
      expect(r.stat(r.lookup("/no-mask")).mode & 0o7777).toBe(0o750);
      expect(r.stat(r.lookup("/default-only")).mode & 0o7777).toBe(0o750);
    });
  });

  test("more than 65,000 names for one inode (a file, a symlink) is an Ext4PlanError naming a path", () => {
    for (const kind of ["file", "symlink"] as const) {
      const root = newDir();
      const node = kind === "file" ? newNode("file", { bytes: new Uint8Array(0) }) : newNode("symlink", { target: "t" });
      const dir = newDir();
      root.children!.set("d", dir);
      for (let i = 0; i < 70_000; i++) dir.children!.set(`n${i}`, node);
      const t0 = performance.now();
      let err: unknown;
      try {
        planExt4(root, { metadataCsum: true });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Ext4PlanError);
      expect((err as Error).message).toMatch(/^\/d\/n\d+: more than 65000 names/);
      expect(performance.now() - t0).toBeLessThan(3000);
    }
    // Exactly 65,000 is the kernel's limit and still accepted.
    const root = newDir();
    const node = newNode("file", { bytes: new Uint8Array(0) });
    for (let i = 0; i < 65_000; i++) root.children!.set(`n${i}`, node);
    const plan = planExt4(root, { metadataCsum: true });
    expect(plan.inodes.find((p) => p.node === node)!.linksCount).toBe(65_000);
  });

  test("sizes below one block and tiny sizes are refused as too small, never a crash", () => {
    for (const size of [1, 512, 1024, 4095, 4096, 8192]) {
      let err: unknown;
      try {
        planExt4(newDir(), { size, metadataCsum: true });
      } catch (e) {
        err = e;
      }
      expect(err, `size ${size}`).toBeInstanceOf(Ext4PlanError);
      expect((err as Error).message, `size ${size}`).toMatch(/too small/);
    }
  });

  test("sizes beyond 16 TiB are refused up front, before the image file exists", () => {
    expect(() => planExt4(newDir(), { size: 2 ** 44 + 4096, metadataCsum: true })).toThrow(/too large: images are at most 16 TiB/);
    const out = image("too-large.img");
    const t0 = performance.now();
    expect(() => Ext4ImageWriter.open({ out, size: 2 ** 51, metadataCsum: true })).toThrow(Ext4PlanError);
    expect(performance.now() - t0).toBeLessThan(1000); // sizing the geometry first took seconds and GiBs
    expect(readdirSync(work).filter((f) => f.includes("too-large"))).toEqual([]);
    // 16 TiB itself is a valid geometry (only planned here: writing it needs a host that holds such a file).
    expect(planExt4(newDir(), { size: 2 ** 44, metadataCsum: true }).geometry.blocksCount).toBe(2 ** 32);
  });
});
