// The ext4 reader against images made by the real mke2fs (`mkfs.ext4 -d`), with the kernel
// (lstat/getxattr on the source directory and on a read-only loop mount of the image),
// debugfs and dumpe2fs as oracles.
import { afterAll, describe, expect } from "bun:test";
import { closeSync, copyFileSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { Ext4Reader, dirHash, verifyChecksums, verifyDirIndex, type Inode } from "../../src/ext4/read/index.ts";
import { parseDxRootInfo } from "../../src/ext4/read/dir.ts";
import type { FsNode, Timestamp } from "../../src/tree/types.ts";
import { testWith, toolPath } from "../helpers/env.ts";
import {
  BIG_DIR_ENTRIES,
  CAPABILITY,
  SLOW_TARGET,
  debugfs,
  kernelXattrs,
  kernelXattrsTree,
  makeImage,
  populateFixture,
  run,
  type MkfsImage,
} from "../helpers/mkfs-fixtures.ts";

const TOOLS = { tools: ["mkfs.ext4", "debugfs", "e2fsck", "dumpe2fs", "setfattr", "setfacl", "getfattr"], root: true };
const FUTURE = { sec: 4102542245, nsec: 500_000_000 }; // 2100-01-02 03:04:05.5 UTC
const NANOS_MTIME = { sec: 1580702706, nsec: 987_654_321 };
const OLD = { sec: -304707111, nsec: 123_456_789 }; // 1960-05-06 07:08:09.123456789 UTC

// ---- fixtures (built lazily, once per variant) ----

const built = new Map<string, MkfsImage>();
afterAll(() => {
  for (const im of built.values()) im.cleanup();
}, 60_000);

function extraOf(t: Timestamp): number {
  // The kernel's encoding: epoch = (sec - (s32)sec) >> 32, so pre-1970 gets 00 and 2038..2106 gets 01.
  const epoch = (t.sec - (t.sec | 0)) / 2 ** 32;
  return ((t.nsec << 2) | (epoch & 3)) >>> 0;
}

/**
 * mke2fs 1.47.0 -d drops nanoseconds and wraps times after 2038 to 32 bits, so those are set
 * afterwards with `debugfs -w set_inode_field` (which writes the epoch bits itself).
 */
function fixTimes(img: string): void {
  run([toolPath("debugfs"), "-w", "-R", `sif /future mtime @${FUTURE.sec}`, img]);
  run([toolPath("debugfs"), "-w", "-R", `sif /future mtime_extra ${extraOf(FUTURE)}`, img]);
  run([toolPath("debugfs"), "-w", "-R", `sif /nanos mtime_extra ${extraOf(NANOS_MTIME)}`, img]);
  run([toolPath("debugfs"), "-w", "-R", `sif /old mtime_extra ${extraOf(OLD)}`, img]);
}

/** Unwritten (uninit) extent over logical blocks 400..409 of /sparse, its blocks filled with garbage. */
function addUninitExtent(img: string): void {
  run([toolPath("debugfs"), "-w", "-R", "fallocate /sparse 400 409", img]);
  const ext = withReader(img, (r) => r.extents(r.lookup("/sparse")).find((e) => e.uninit));
  if (!ext) throw new Error("debugfs fallocate made no unwritten extent");
  const fd = openSync(img, "r+");
  try {
    writeSync(fd, new Uint8Array(ext.length * 4096).fill(0xab), 0, ext.length * 4096, ext.physical * 4096);
  } finally {
    closeSync(fd);
  }
}

type Variant = "4k" | "4k-nocsum" | "1k" | "blockmap";
const VARIANTS: Record<Variant, { blockSize: 1024 | 4096; extraOpts: string[]; bigDir: number }> = {
  "4k": { blockSize: 4096, extraOpts: [], bigDir: BIG_DIR_ENTRIES },
  "4k-nocsum": { blockSize: 4096, extraOpts: ["-O", "^metadata_csum,^64bit"], bigDir: 300 },
  // 1 KiB blocks: 3000 entries need an htree with one level of interior dx nodes.
  "1k": { blockSize: 1024, extraOpts: [], bigDir: BIG_DIR_ENTRIES },
  // ext2/3-style block maps (direct, single and double indirect blocks), 128-bit-free descriptors.
  blockmap: { blockSize: 1024, extraOpts: ["-O", "^extent,^flex_bg,^metadata_csum,^64bit,^huge_file"], bigDir: 300 },
};

function image(variant: Variant): MkfsImage {
  let im = built.get(variant);
  if (im) return im;
  const { bigDir, ...opts } = VARIANTS[variant];
  im = makeImage({ ...opts, populate: (src) => populateFixture(src, { bigDir }), optimizeDirs: true });
  built.set(variant, im);
  return im;
}

/** The image as the 4k variant with post-2038 and nanosecond times patched in. */
function timedImage(): MkfsImage {
  let im = built.get("4k-times");
  if (im) return im;
  im = makeImage({ populate: (src) => populateFixture(src, { bigDir: 10 }) });
  fixTimes(im.img);
  addUninitExtent(im.img);
  built.set("4k-times", im);
  return im;
}

function withReader<T>(img: string, fn: (r: Ext4Reader) => T): T {
  const r = Ext4Reader.open(img);
  try {
    return fn(r);
  } finally {
    r.close();
  }
}

// ---- oracles ----

interface Flat {
  path: string;
  kind: string;
  mode: string;
  uid: number;
  gid: number;
  size: number;
  bytes?: string;
  target?: string;
  dev?: string;
  xattrs: Record<string, string>;
  mtime: string;
  atime?: string;
  ctime?: string;
  /** Index of the first path with the same inode (hardlinks). */
  link: string;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const ts = (t: Timestamp, withNsec: boolean): string => (withNsec ? `${t.sec}.${String(t.nsec).padStart(9, "0")}` : `${t.sec}`);

function flattenTree(root: FsNode, opts: { nsec: boolean; allTimes: boolean }): Flat[] {
  const out: Flat[] = [];
  const seen = new Map<FsNode, string>();
  const walk = (n: FsNode, path: string): void => {
    const first = seen.get(n) ?? path;
    seen.set(n, first);
    const xattrs: Record<string, string> = {};
    for (const [k, v] of [...n.xattrs].sort()) xattrs[k] = hex(v);
    out.push({
      path,
      kind: n.kind,
      mode: n.mode.toString(8),
      uid: n.uid,
      gid: n.gid,
      size: n.size,
      ...(n.bytes ? { bytes: new Bun.CryptoHasher("sha256").update(n.bytes).digest("hex") } : {}),
      ...(n.target !== undefined ? { target: n.target } : {}),
      ...(n.major !== undefined ? { dev: `${n.major}:${n.minor}` } : {}),
      xattrs,
      mtime: ts(n.mtime, opts.nsec),
      ...(opts.allTimes ? { atime: ts(n.atime, opts.nsec), ctime: ts(n.ctime, opts.nsec) } : {}),
      link: first,
    });
    if (n.children) for (const name of [...n.children.keys()].sort()) walk(n.children.get(name)!, `${path}/${name}`);
  };
  walk(root, "");
  return out;
}

function bigTs(ns: bigint): Timestamp {
  const sec = ns / 1_000_000_000n - (ns % 1_000_000_000n < 0n ? 1n : 0n);
  return { sec: Number(sec), nsec: Number(ns - sec * 1_000_000_000n) };
}

/** The tree as the kernel shows it under `dir` (lstat, readlink, getxattr). */
function kernelTree(dir: string, skip: (rel: string) => boolean): FsNode {
  const byIno = new Map<bigint, FsNode>();
  const allXattrs = kernelXattrsTree(dir);
  const node = (path: string): FsNode => {
    const st = lstatSync(path, { bigint: true });
    const known = byIno.get(st.ino);
    if (known && !st.isDirectory()) return known;
    const kind = st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : st.isCharacterDevice() ? "chardev" : st.isBlockDevice() ? "blockdev" : st.isFIFO() ? "fifo" : "socket";
    const n: FsNode = {
      kind,
      mode: Number(st.mode) & 0o7777,
      uid: Number(st.uid),
      gid: Number(st.gid),
      atime: bigTs(st.atimeNs),
      mtime: bigTs(st.mtimeNs),
      ctime: bigTs(st.ctimeNs),
      xattrs: allXattrs.get(path) ?? new Map(),
      size: kind === "file" ? Number(st.size) : 0,
    };
    if (kind === "file") n.bytes = readFileSync(path);
    if (kind === "symlink") n.target = readlinkSync(path, { encoding: "latin1" });
    if (kind === "chardev" || kind === "blockdev") {
      const rdev = st.rdev;
      n.major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
      n.minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    }
    byIno.set(st.ino, n);
    return n;
  };
  const walk = (path: string, rel: string): FsNode => {
    const n = node(path);
    if (n.kind === "dir") {
      n.children = new Map();
      for (const name of readdirSync(path, { encoding: "latin1" })) {
        const childRel = `${rel}/${name}`;
        if (skip(childRel)) continue;
        n.children.set(name, walk(join(path, name), childRel));
      }
    }
    return n;
  };
  return walk(dir, "");
}

function withMount<T>(img: string, fn: (mnt: string) => T): T {
  const mnt = `${img}.mnt`;
  mkdirSync(mnt, { recursive: true });
  run(["mount", "-o", "ro,loop", img, mnt]);
  try {
    return fn(mnt);
  } finally {
    run(["umount", mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
}

/** Fields of `debugfs -R "stat <ino>"`. */
function debugfsStat(img: string, ino: number): Record<string, string> {
  const text = debugfs(img, `stat <${ino}>`);
  const f: Record<string, string> = {};
  const grab = (key: string, re: RegExp): void => {
    const m = re.exec(text);
    if (m) f[key] = m[1]!;
  };
  grab("mode", /Mode:\s+(\d+)/);
  grab("flags", /Flags: (0x[0-9a-f]+)/);
  grab("generation", /Generation: (\d+)/);
  grab("uid", /User:\s+(\d+)/);
  grab("gid", /Group:\s+(\d+)/);
  grab("size", /Size: (\d+)/);
  grab("fileAcl", /File ACL: (\d+)/);
  grab("links", /Links: (\d+)/);
  grab("blockcount", /Blockcount: (\d+)/);
  grab("checksum", /Inode checksum: (0x[0-9a-f]+)/);
  grab("extra", /Size of extra inode fields: (\d+)/);
  for (const t of ["atime", "mtime", "ctime", "crtime"]) grab(t, new RegExp(`${t}: (0x[0-9a-f]+:[0-9a-f]+)`));
  return f;
}

function rawTime(t: Timestamp): string {
  const lo = (t.sec | 0) >>> 0;
  return `0x${lo.toString(16).padStart(8, "0")}:${extraOf(t).toString(16).padStart(8, "0")}`;
}

function expectInodeMatchesDebugfs(img: string, inode: Inode): void {
  const d = debugfsStat(img, inode.ino);
  const mine: Record<string, string> = {
    mode: (inode.mode & 0o7777).toString(8).padStart(4, "0"),
    flags: "0x" + inode.flags.toString(16),
    generation: String(inode.generation),
    uid: String(inode.uid),
    gid: String(inode.gid),
    size: String(inode.size),
    fileAcl: String(inode.fileAcl),
    links: String(inode.linksCount),
    blockcount: String(inode.blocks),
    ...(d.checksum !== undefined ? { checksum: "0x" + inode.checksum.toString(16).padStart(8, "0") } : {}),
    extra: String(inode.extraIsize),
    atime: rawTime(inode.atime),
    mtime: rawTime(inode.mtime),
    ctime: rawTime(inode.ctime),
    crtime: rawTime(inode.crtime!),
  };
  expect(mine).toEqual(d);
}

/** Leaf extents as `debugfs -R "ex"` prints them (logical, physical, length, uninit). */
function debugfsExtents(img: string, path: string): { depth: number; leaves: string[] } {
  const leaves: string[] = [];
  let depth = 0;
  for (const line of debugfs(img, `ex ${path}`).split("\n")) {
    const m = /^\s*(\d+)\/\s*(\d+)\s+\d+\/\s*\d+\s+(\d+)\s*-\s*\d+\s+(\d+)(?:\s*-\s*\d+)?\s+(\d+)\s*(Uninit)?/.exec(line);
    if (!m) continue;
    depth = Number(m[2]);
    if (m[1] === m[2]) leaves.push(`${m[3]}->${m[4]}+${m[5]}${m[6] ? " uninit" : ""}`);
  }
  return { depth, leaves };
}

function dumpe2fsHeader(img: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of run([toolPath("dumpe2fs"), "-h", img]).split("\n")) {
    const m = /^([^:]+):\s+(.*?)\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

// ---- tests ----

for (const variant of Object.keys(VARIANTS) as Variant[]) {
  describe(`mkfs.ext4 -d image (${variant})`, () => {
    testWith(TOOLS, "superblock and group descriptors match dumpe2fs", () => {
      const im = image(variant);
      withReader(im.img, (r) => {
        const h = dumpe2fsHeader(im.img);
        const sb = r.superblock;
        expect(String(sb.inodesCount)).toBe(h["Inode count"]!);
        expect(String(sb.blocksCount)).toBe(h["Block count"]!);
        expect(String(sb.freeBlocksCount)).toBe(h["Free blocks"]!);
        expect(String(sb.freeInodesCount)).toBe(h["Free inodes"]!);
        expect(String(sb.firstDataBlock)).toBe(h["First block"]!);
        expect(String(r.blockSize)).toBe(h["Block size"]!);
        expect(String(sb.blocksPerGroup)).toBe(h["Blocks per group"]!);
        expect(String(sb.inodesPerGroup)).toBe(h["Inodes per group"]!);
        expect(String(sb.inodeSize)).toBe(h["Inode size"]!);
        expect(String(sb.firstIno)).toBe(h["First inode"]!);
        expect(String(sb.descSize)).toBe(h["Group descriptor size"] ?? "32");
        expect(sb.magic).toBe(0xef53);
        const uuid = hex(sb.uuid);
        expect(`${uuid.slice(0, 8)}-${uuid.slice(8, 12)}-${uuid.slice(12, 16)}-${uuid.slice(16, 20)}-${uuid.slice(20)}`).toBe(h["Filesystem UUID"]!);
        if (h["Flex block group size"]) expect(String(2 ** sb.logGroupsPerFlex)).toBe(h["Flex block group size"]);
        if (h["Checksum"]) expect("0x" + sb.checksum.toString(16).padStart(8, "0")).toBe(h["Checksum"]);
        const seedHex = [...sb.hashSeed].map((w) => Buffer.from(Uint32Array.of(w).buffer).toString("hex")).join("");
        expect(`${seedHex.slice(0, 8)}-${seedHex.slice(8, 12)}-${seedHex.slice(12, 16)}-${seedHex.slice(16, 20)}-${seedHex.slice(20)}`).toBe(h["Directory Hash Seed"]!);
        expect(sb.defHashVersion).toBe(1); // half_md4
        expect(h["Default directory hash"]).toBe("half_md4");

        const full = run([toolPath("dumpe2fs"), im.img]);
        const groups = full.split(/\nGroup \d+: /).slice(1);
        expect(groups.length).toBe(r.groupCount);
        groups.forEach((text, g) => {
          const gd = r.groupDescriptor(g);
          expect(Number(/Block bitmap at (\d+)/.exec(text)![1])).toBe(gd.blockBitmap);
          expect(Number(/Inode bitmap at (\d+)/.exec(text)![1])).toBe(gd.inodeBitmap);
          expect(Number(/Inode table at (\d+)/.exec(text)![1])).toBe(gd.inodeTable);
          const counts = /(\d+) free blocks, (\d+) free inodes, (\d+) directories(?:, (\d+) unused inodes)?/.exec(text)!;
          expect([gd.freeBlocksCount, gd.freeInodesCount, gd.usedDirsCount]).toEqual([Number(counts[1]), Number(counts[2]), Number(counts[3])]);
          if (counts[4] !== undefined) expect(gd.itableUnused).toBe(Number(counts[4]));
          const csum = /csum (0x[0-9a-f]+)/.exec(text);
          if (csum) expect("0x" + gd.checksum.toString(16).padStart(4, "0")).toBe(csum[1]!);
          const bbm = /Block bitmap at \d+ \([^)]*\), csum (0x[0-9a-f]+)/.exec(text);
          if (bbm) expect(gd.blockBitmapCsum).toBe((Number(bbm[1]) & (sb.descSize >= 64 ? 0xffffffff : 0xffff)) >>> 0);
        });
      });
    }, 120_000);

    testWith(TOOLS, "readTree equals the source directory as the kernel sees it", () => {
      const im = image(variant);
      const tree = withReader(im.img, (r) => r.readTree());
      const kernel = kernelTree(im.src, () => false);
      // mke2fs 1.47.0 -d keeps only whole seconds and wraps post-2038 times: compare mtime
      // seconds except for /future (checked against debugfs below and on the patched image).
      const a = flattenTree(tree, { nsec: false, allTimes: false }).map((f) => (f.path === "/future" ? { ...f, mtime: "-" } : f));
      const b = flattenTree(kernel, { nsec: false, allTimes: false }).map((f) => (f.path === "/future" ? { ...f, mtime: "-" } : f));
      expect(a).toEqual(b);
    }, 120_000);

    testWith(TOOLS, "inodes match debugfs stat; mke2fs wraps the post-2038 mtime", () => {
      const im = image(variant);
      withReader(im.img, (r) => {
        for (const path of ["/", "/small", "/multi-mib", "/many-extents", "/big", "/fast-link", "/slow-link", "/null", "/bigdev", "/bigids", "/xattrs", "/bigxattr", "/old", "/future", "/acl-dir"]) {
          const inode = r.inode(r.lookup(path));
          expectInodeMatchesDebugfs(im.img, inode);
        }
        const future = r.inode(r.lookup("/future"));
        expect(future.mtime.sec).toBe(FUTURE.sec - 2 ** 32); // wrapped by mke2fs -d (e2fsprogs 1.47.0)
        expect(r.inode(r.lookup("/old")).mtime).toEqual({ sec: OLD.sec, nsec: 0 });
        expect(r.inode(r.lookup("/small")).linksCount).toBe(3);
      });
    }, 120_000);

    testWith(TOOLS, "extents, block maps and file contents", () => {
      const im = image(variant);
      withReader(im.img, (r) => {
        for (const name of ["empty", "small", "exact-block", "multi-mib", "sparse", "many-extents"]) {
          const ino = r.lookup(`/${name}`);
          expect(hex(r.readFile(ino))).toBe(hex(readFileSync(join(im.src, name))));
          if (variant !== "blockmap") {
            const ex = debugfsExtents(im.img, `/${name}`);
            expect(r.extents(ino).map((e) => `${e.logical}->${e.physical}+${e.length}${e.uninit ? " uninit" : ""}`)).toEqual(ex.leaves);
            if (ex.leaves.length) expect(r.extentTreeDepth(ino)).toBe(ex.depth);
          }
        }
        if (variant === "blockmap") {
          expect(() => r.extentTreeDepth(r.lookup("/small"))).toThrow(/no extent tree/);
        } else {
          // 400 separated blocks: depth 1 with 4 KiB blocks, depth 2 with 1 KiB (84 per leaf).
          expect(r.extentTreeDepth(r.lookup("/many-extents"))).toBe(variant === "1k" ? 2 : 1);
        }
        // Holes read as zeros and are not mapped.
        const sparse = r.lookup("/sparse");
        const mapped = r.extents(sparse).reduce((n, e) => n + e.length, 0) * r.blockSize;
        expect(mapped).toBeLessThan(64 * 1024);
      });
    }, 120_000);

    testWith(TOOLS, "htree directory and path lookup", () => {
      const im = image(variant);
      withReader(im.img, (r) => {
        const big = r.lookup("/big");
        expect(r.inode(big).flags & 0x1000).toBe(0x1000); // EXT4_INDEX_FL after e2fsck -D
        const entries = r.readDir(big);
        const count = VARIANTS[variant].bigDir;
        expect(entries.length).toBe(count + 2);
        const names = new Set(entries.map((e) => e.name));
        for (let i = 0; i < count; i++) expect(names.has(`entry-with-a-longish-name-${i}`)).toBe(true);
        expect(entries.find((e) => e.name === "..")!.ino).toBe(2);
        const last = `entry-with-a-longish-name-${count - 1}`;
        expect(r.lookup(`/big/${last}`)).toBe(entries.find((e) => e.name === last)!.ino);
        expect(r.lookup("/sub/deeper/another-hardlink")).toBe(r.lookup("/small"));
        expect(() => r.lookup("/sub/nope")).toThrow(/no "nope" in directory "\/sub"/);
        expect(r.readLink(r.lookup("/slow-link"))).toBe(SLOW_TARGET);
        expect(r.readLink(r.lookup("/fast-link"))).toBe("small");
        const tree = r.readTree({ includeLostFound: true });
        expect(tree.children!.get("lost+found")?.kind).toBe("dir");
        expect(tree.children!.get("small")).toBe(tree.children!.get("sub")!.children!.get("deeper")!.children!.get("another-hardlink")!);
      });
    }, 120_000);

    testWith(TOOLS, "xattrs match getfattr on the source and debugfs ea_get", () => {
      const im = image(variant);
      withReader(im.img, (r) => {
        let inInode = 0;
        let inBlock = 0;
        for (const name of ["xattrs", "bigxattr", "acl-file", "acl-dir"]) {
          const ino = r.lookup(`/${name}`);
          const mine = r.xattrs(ino);
          expect([...mine].map(([k, v]) => [k, hex(v)]).sort()).toEqual([...kernelXattrs(join(im.src, name))].map(([k, v]) => [k, hex(v)]).sort());
          const raw = r.xattrEntries(ino);
          inInode += raw.inInode.length;
          inBlock += raw.block.length;
          for (const [k, v] of mine) {
            const out = join(im.dir, "ea.bin");
            debugfs(im.img, `ea_get -f ${out} <${ino}> ${k}`);
            let theirs: Uint8Array = readFileSync(out);
            // libext2fs writes id 0, the kernel 0xffffffff (ACL_UNDEFINED_ID), for entries without an id.
            if (k.startsWith("system.posix_acl")) theirs = undefinedIds(theirs);
            expect(hex(v)).toBe(hex(theirs));
          }
        }
        expect(hex(r.xattrs(r.lookup("/xattrs")).get("security.capability")!)).toBe(hex(CAPABILITY));
        expect(r.xattrs(r.lookup("/bigxattr")).get("user.large")!.length).toBe(800);
        if (variant !== "blockmap") expect(inInode).toBeGreaterThan(0);
        expect(inBlock).toBeGreaterThan(0);
      });
    }, 120_000);

    testWith(TOOLS, "verifyChecksums finds nothing wrong, and e2fsck agrees", () => {
      const im = image(variant);
      run([toolPath("e2fsck"), "-fn", im.img]);
      expect(withReader(im.img, (r) => verifyChecksums(r))).toEqual([]);
      expect(withReader(im.img, (r) => verifyDirIndex(r))).toEqual([]);
    }, 120_000);
  });
}

function undefinedIds(vfsAcl: Uint8Array): Uint8Array {
  const out = vfsAcl.slice();
  const dv = new DataView(out.buffer);
  for (let off = 4; off + 8 <= out.length; off += 8) {
    const tag = dv.getUint16(off, true);
    if (tag !== 0x02 && tag !== 0x08) dv.setUint32(off + 4, 0xffffffff, true);
  }
  return out;
}

describe("times beyond 32 bits, nanoseconds, unwritten extents (patched with debugfs -w)", () => {
  testWith(TOOLS, "reader equals a read-only kernel mount of the image, all times to the nanosecond", () => {
    const im = timedImage();
    const tree = withReader(im.img, (r) => {
      expect(r.inode(r.lookup("/future")).mtime).toEqual(FUTURE);
      expect(r.inode(r.lookup("/nanos")).mtime).toEqual(NANOS_MTIME);
      expect(r.inode(r.lookup("/old")).mtime).toEqual(OLD);
      expect(verifyChecksums(r)).toEqual([]);
      const sparse = r.lookup("/sparse");
      expect(r.extents(sparse).filter((e) => e.uninit).map((e) => [e.logical, e.length])).toEqual([[400, 10]]);
      expect(r.readFile(sparse).subarray(400 * 4096, 410 * 4096).every((b) => b === 0)).toBe(true);
      return r.readTree({ includeLostFound: true });
    });
    const kernel = withMount(im.img, (mnt) => kernelTree(mnt, () => false));
    expect(flattenTree(tree, { nsec: true, allTimes: true })).toEqual(flattenTree(kernel, { nsec: true, allTimes: true }));
  }, 120_000);
});

describe("verifyChecksums catches corruption", () => {
  for (const variant of ["4k", "1k"] as const)
  testWith(TOOLS, `one flipped byte in each kind of checksummed metadata (${variant})`, () => {
    const im = image(variant);
    const copy = join(im.dir, "flip.img");
    copyFileSync(im.img, copy);
    const targets = withReader(copy, (r) => {
      const bs = r.blockSize;
      const gd0 = r.groupDescriptor(0);
      const big = r.lookup("/big");
      const many = r.lookup("/many-extents");
      const small = r.inode(r.lookup("/small"));
      const dirLeaf = r.dirBlocks(big).find(([l]) => l !== 0)!;
      const bigBlocks = r.blockMap(big);
      const list = [
        { what: /superblock: s_checksum/, at: 1024 + 0x78 }, // volume name
        { what: /group 0: bg_checksum/, at: (r.superblock.firstDataBlock + 1) * bs + 0x10 }, // used dirs
        { what: /group 0: block bitmap/, at: gd0.blockBitmap * bs + 100 },
        { what: /group 0: inode bitmap/, at: gd0.inodeBitmap * bs + 1 },
        { what: new RegExp(`inode ${small.ino}: checksum`), at: r.inodeLocation(small.ino).offset + 0x10 }, // mtime
        { what: new RegExp(`inode ${many}: extent block \\d+ tail checksum`), at: r.extentNodes(many)[0]!.node.block * bs + 30 },
        { what: new RegExp(`directory inode ${big}: leaf block ${dirLeaf[0]} tail checksum`), at: bigBlocks.get(dirLeaf[0])! * bs + 20 },
        { what: new RegExp(`directory inode ${big}: dx block 0 dx_tail checksum`), at: bigBlocks.get(0)! * bs + 0x24 + 4 },
        { what: /xattr block \d+ checksum/, at: r.inode(r.lookup("/bigxattr")).fileAcl * bs + 200 },
      ];
      const root = bigBlocks.get(0)!;
      const info = parseDxRootInfo(r.readBlock(root), "dx_root");
      if (info.indirectLevels > 0) {
        // First interior dx node: the block the root's first entry points at.
        const node = new DataView(r.readBlock(root).buffer).getUint32(0x24, true);
        list.push({ what: new RegExp(`directory inode ${big}: dx block ${node} dx_tail checksum`), at: bigBlocks.get(node)! * bs + 0x10 });
      } else if (variant === "1k") {
        throw new Error("expected an htree with interior nodes in the 1k image");
      }
      return list;
    });
    const fd = openSync(copy, "r+");
    try {
      for (const t of targets) {
        const byte = new Uint8Array(1);
        readSync(fd, byte, 0, 1, t.at);
        const flipped = Uint8Array.of(byte[0]! ^ 0x40);
        writeSync(fd, flipped, 0, 1, t.at);
        const problems = withReader(copy, (r) => verifyChecksums(r));
        writeSync(fd, byte, 0, 1, t.at);
        expect(problems.some((p) => t.what.test(p)), `${t.what} in ${JSON.stringify(problems)}`).toBe(true);
      }
    } finally {
      closeSync(fd);
    }
    expect(withReader(copy, (r) => verifyChecksums(r))).toEqual([]);
  }, 120_000);
});

describe("directory hashes", () => {
  testWith(TOOLS, "all six hash variants equal debugfs dx_hash, names with high bytes included", () => {
    const im = image("4k");
    const seed = new Uint32Array(Uint8Array.from(Buffer.from("112233445566778899aabbccddeeff00", "hex")).buffer);
    const names = ["a", "hello", "entry-with-a-longish-name-123", "x".repeat(40), "\u00e9t\u00e9-\u00ff", "\u00fc".repeat(70), "n".repeat(255)];
    for (const name of names) {
      const bytes = Buffer.from(name, "utf8"); // what debugfs receives on its command line
      for (let version = 0; version < 6; version++) {
        const out = debugfs(im.img, `dx_hash -h ${version} -s 11223344-5566-7788-99aa-bbccddeeff00 ${name}`);
        const m = /Hash of .* is (0x[0-9a-f]+) \(minor (0x[0-9a-f]+)\)/.exec(out)!;
        expect({ name, version, ...dirHash(bytes, version, seed) }).toEqual({ name, version, hash: Number(m[1]), minor: Number(m[2]) });
      }
    }
  }, 60_000);

  testWith(TOOLS, "verifyDirIndex notices a name in the wrong leaf", () => {
    const im = image("4k");
    const copy = join(im.dir, "dx.img");
    copyFileSync(im.img, copy);
    const at = withReader(copy, (r) => {
      const big = r.lookup("/big");
      return r.blockMap(big).get(0)! * r.blockSize + 0x20 + 8 + 3; // high byte of dx_root entry 1's hash
    });
    const fd = openSync(copy, "r+");
    try {
      const b = new Uint8Array(1);
      readSync(fd, b, 0, 1, at);
      writeSync(fd, Uint8Array.of(b[0]! ^ 0x08), 0, 1, at);
    } finally {
      closeSync(fd);
    }
    const problems = withReader(copy, (r) => verifyDirIndex(r));
    expect(problems.some((p) => /in leaf block \d+, which holds hashes|out of order/.test(p)), JSON.stringify(problems.slice(0, 3))).toBe(true);
    rmSync(copy);
  }, 60_000);
});
