// Hash-indexed directories: structure checked by an independent walker in this file, plus
// e2fsprogs (e2fsck, debugfs) and the kernel as oracles on real images.
import { describe, expect, test } from "bun:test";
import { testWith } from "../helpers/env.ts";
import { BLOCK_SIZE, FT_DIR, FT_DIR_CSUM, FT_FIFO, FT_REG_FILE, FT_SYMLINK } from "../../src/ext4/constants.ts";
import { crc32c } from "../../src/ext4/crc32c.ts";
import { ext4DirHash } from "../../src/ext4/dirhash.ts";
import { type DirBuildOptions, type DirChild, direntRecLen } from "../../src/ext4/dirents.ts";
import {
  buildDirectory,
  buildDirectoryWithHash,
  type DirHashFn,
  directoryBlockCount,
  dxNodeLimit,
  dxRootLimit,
  planLeaves,
} from "../../src/ext4/htree.ts";

const enc = new TextEncoder();
// Byte-exact string keys (TextDecoder's "latin1" is really windows-1252).
const latin1 = { decode: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1") };

function options(metadataCsum: boolean, seed: Uint32Array = new Uint32Array([0x11111111, 0x22222222, 0x33333333, 0x44444444])): DirBuildOptions {
  return { metadataCsum, hashVersion: 1, hashSeed: seed, unsignedHash: true, inodeCsumSeed: 0xdeadbeef };
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

/** Names like a real rootfs: mixed lengths, some long, some with bytes >= 0x80. */
function makeChildren(n: number, seed: number, firstIno = 100, minLen = 1, maxLen = 40): DirChild[] {
  const r = rng(seed);
  const out: DirChild[] = [];
  const seen = new Set<string>();
  while (out.length < n) {
    const len = minLen + (r() % (maxLen - minLen + 1));
    const name = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      const x = r() % 100;
      name[i] = x < 5 ? 0x80 + (r() % 128) : x < 70 ? 0x61 + (r() % 26) : x < 90 ? 0x30 + (r() % 10) : 0x2e;
    }
    const key = latin1.decode(name);
    if (key === "." || key === ".." || seen.has(key)) continue;
    seen.add(key);
    out.push({ name, ino: firstIno + out.length, fileType: [FT_REG_FILE, FT_DIR, FT_SYMLINK, FT_FIFO][r() % 4]! });
  }
  return out;
}

interface Verified {
  indexed: boolean;
  levels: number;
  leaves: number;
  collisions: number;
  minLeafFill: number;
  avgLeafFill: number;
}

/**
 * Independent walker: checks every on-disk rule we rely on and that the entries are exactly
 * `children`. Written from the ext4 docs, not from the builder.
 */
function verifyDirectory(
  bytes: Uint8Array,
  selfIno: number,
  parentIno: number,
  children: DirChild[],
  opts: DirBuildOptions,
  hashOf: DirHashFn = (n) => ext4DirHash(n, opts.hashVersion, opts.hashSeed, opts.unsignedHash),
): Verified {
  expect(bytes.length % BLOCK_SIZE).toBe(0);
  const nblocks = bytes.length / BLOCK_SIZE;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const csum = opts.metadataCsum;
  const leafEnd = BLOCK_SIZE - (csum ? 12 : 0);
  const want = new Map(children.map((c) => [latin1.decode(c.name), c]));
  const found = new Set<string>();

  const readLeaf = (b: number, skipDots: boolean) => {
    const base = b * BLOCK_SIZE;
    const names: { name: Uint8Array; hash: number }[] = [];
    let off = 0;
    let used = 0;
    while (off < leafEnd) {
      const ino = v.getUint32(base + off, true);
      const recLen = v.getUint16(base + off + 4, true);
      const nameLen = bytes[base + off + 6]!;
      const ft = bytes[base + off + 7]!;
      if (recLen < 12 || recLen % 4 || off + recLen > leafEnd || 8 + nameLen > recLen)
        throw new Error(`block ${b} offset ${off}: bad rec_len ${recLen} / name_len ${nameLen}`);
      const name = bytes.slice(base + off + 8, base + off + 8 + nameLen);
      if (skipDots && off === 0) {
        expect([ino, recLen, nameLen, name[0], ft]).toEqual([selfIno, 12, 1, 0x2e, FT_DIR]);
      } else if (skipDots && off === 12) {
        expect([ino, nameLen, name[0], name[1], ft]).toEqual([parentIno, 2, 0x2e, 0x2e, FT_DIR]);
      } else if (ino !== 0) {
        const key = latin1.decode(name);
        const c = want.get(key);
        if (!c) throw new Error(`block ${b}: unexpected name ${JSON.stringify(key)}`);
        if (found.has(key)) throw new Error(`block ${b}: duplicate name ${JSON.stringify(key)}`);
        found.add(key);
        if (ino !== c.ino || ft !== c.fileType)
          throw new Error(`block ${b}: ${JSON.stringify(key)} has inode ${ino} type ${ft}, want ${c.ino} type ${c.fileType}`);
        names.push({ name, hash: hashOf(name).hash });
        used += direntRecLen(nameLen);
      }
      off += recLen;
    }
    expect(off).toBe(leafEnd);
    if (csum) {
      const t = base + leafEnd;
      expect([v.getUint32(t, true), v.getUint16(t + 4, true), bytes[t + 6], bytes[t + 7]]).toEqual([0, 12, 0, FT_DIR_CSUM]);
      expect(v.getUint32(t + 8, true)).toBe(crc32c(opts.inodeCsumSeed, bytes, base, t));
    }
    return { names, used };
  };

  const dxTail = (b: number, countOffset: number, limit: number, count: number) => {
    if (!csum) return;
    const base = b * BLOCK_SIZE;
    const t = base + countOffset + limit * 8;
    expect(t + 8).toBe(base + BLOCK_SIZE);
    expect(v.getUint32(t, true)).toBe(0);
    const c = crc32c(crc32c(opts.inodeCsumSeed, bytes, base, base + countOffset + count * 8), new Uint8Array(8));
    expect(v.getUint32(t + 4, true)).toBe(c);
  };

  if (nblocks === 1) {
    readLeaf(0, true);
    expect(found.size).toBe(children.length);
    return { indexed: false, levels: 0, leaves: 1, collisions: 0, minLeafFill: 1, avgLeafFill: 1 };
  }

  // dx_root
  expect([v.getUint32(0, true), v.getUint16(4, true), bytes[6], bytes[7], bytes[8]]).toEqual([selfIno, 12, 1, FT_DIR, 0x2e]);
  expect([v.getUint32(12, true), v.getUint16(16, true), bytes[18], bytes[19], bytes[20], bytes[21]]).toEqual([
    parentIno, BLOCK_SIZE - 12, 2, FT_DIR, 0x2e, 0x2e,
  ]);
  expect(v.getUint32(24, true)).toBe(0);
  expect(bytes[28]).toBe(opts.hashVersion);
  expect(bytes[29]).toBe(8);
  const levels = bytes[30]!;
  expect(levels).toBeLessThanOrEqual(1);
  expect(bytes[31]).toBe(0);

  const refs = new Uint8Array(nblocks);
  refs[0] = 1;
  const readIndex = (b: number, countOffset: number, expectLimit: number) => {
    const at = b * BLOCK_SIZE + countOffset;
    const limit = v.getUint16(at, true);
    const count = v.getUint16(at + 2, true);
    expect(limit).toBe(expectLimit);
    expect(count).toBeGreaterThanOrEqual(1);
    expect(count).toBeLessThanOrEqual(limit);
    const out: { hash: number; block: number }[] = [];
    for (let i = 0; i < count; i++) {
      out.push({ hash: i ? v.getUint32(at + i * 8, true) : 0, block: v.getUint32(at + i * 8 + 4, true) });
    }
    dxTail(b, countOffset, limit, count);
    return out;
  };

  let leaves: { hash: number; block: number }[] = [];
  const root = readIndex(0, 32, dxRootLimit(csum));
  if (levels === 0) {
    leaves = root;
  } else {
    for (let j = 0; j < root.length; j++) {
      const nb = root[j]!.block;
      expect(nb).toBeGreaterThan(0);
      expect(nb).toBeLessThan(nblocks);
      refs[nb]!++;
      const base = nb * BLOCK_SIZE;
      expect([v.getUint32(base, true), v.getUint16(base + 4, true), bytes[base + 6], bytes[base + 7]]).toEqual([0, BLOCK_SIZE, 0, 0]);
      const ents = readIndex(nb, 8, dxNodeLimit(csum));
      // The node's range starts where its root entry says.
      if (j > 0) expect(ents.length > 0 && root[j]!.hash).toBe(root[j]!.hash);
      ents[0]!.hash = j ? root[j]!.hash : 0;
      leaves.push(...ents);
    }
  }
  let collisions = 0;
  let minFill = 1;
  let sumFill = 0;
  for (let i = 0; i < leaves.length; i++) {
    const { hash, block } = leaves[i]!;
    expect(block).toBeGreaterThan(0);
    expect(block).toBeLessThan(nblocks);
    refs[block]!++;
    const lo = (hash & ~1) >>> 0;
    const next = leaves[i + 1]?.hash;
    if (next !== undefined) expect((next & ~1) >>> 0).toBeGreaterThanOrEqual(lo);
    if (hash & 1) collisions++;
    const { names, used } = readLeaf(block, false);
    expect(names.length).toBeGreaterThan(0);
    // The first entry's hash is what the index says (bit 0 aside), all are within range.
    if (i > 0) expect(names[0]!.hash).toBe(lo);
    const hi = next === undefined ? 0xffffffff : (next & ~1) >>> 0;
    for (let k = 0; k < names.length; k++) {
      const nh = names[k]!.hash;
      if (nh < lo || nh > hi) throw new Error(`leaf ${i}: hash ${nh.toString(16)} outside [${lo.toString(16)}, ${hi.toString(16)}]`);
      // An equal hash in this leaf is only reachable when the next index entry says "collision".
      if (next !== undefined && nh === hi && (next & 1) === 0) throw new Error(`leaf ${i}: hash ${nh.toString(16)} equals the next leaf's start without the collision bit`);
      if (k > 0 && nh < names[k - 1]!.hash) throw new Error(`leaf ${i}: entries not in hash order`);
    }
    const fill = used / leafEnd;
    minFill = Math.min(minFill, fill);
    sumFill += fill;
  }
  for (let b = 0; b < nblocks; b++) if (refs[b] !== 1) throw new Error(`block ${b} referenced ${refs[b]} times`);
  expect(found.size).toBe(children.length);
  return { indexed: true, levels, leaves: leaves.length, collisions, minLeafFill: minFill, avgLeafFill: sumFill / leaves.length };
}

function lengths(children: DirChild[]) {
  return children.map((c) => c.name);
}

describe("buildDirectory (htree)", () => {
  for (const csum of [true, false]) {
    test(`2-leaf directory (metadata_csum=${csum})`, () => {
      const kids = makeChildren(300, 1);
      const o = options(csum);
      const r = buildDirectory(12, 2, kids, o);
      expect(r.indexed).toBe(true);
      expect(r.blockCount).toBe(directoryBlockCount(lengths(kids), o));
      expect(r.bytes.length).toBe(r.blockCount * BLOCK_SIZE);
      const res = verifyDirectory(r.bytes, 12, 2, kids, o);
      expect(res.levels).toBe(0);
      expect(res.leaves).toBe(r.blockCount - 1);
    });

    test(`5000 names (metadata_csum=${csum})`, () => {
      const kids = makeChildren(5000, 2);
      const o = options(csum);
      const r = buildDirectory(4000, 3000, kids, o);
      expect(r.blockCount).toBe(directoryBlockCount(lengths(kids), o));
      const res = verifyDirectory(r.bytes, 4000, 3000, kids, o);
      expect(res.levels).toBe(0);
      expect(res.minLeafFill).toBeGreaterThan(0.9);
    });
  }

  test("200000 names use one indirect level", () => {
    const kids = makeChildren(200000, 3, 20);
    const o = options(true);
    const t0 = performance.now();
    const r = buildDirectory(12, 2, kids, o);
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(5000);
    expect(r.blockCount).toBe(directoryBlockCount(lengths(kids), o));
    const res = verifyDirectory(r.bytes, 12, 2, kids, o);
    expect(res.levels).toBe(1);
    expect(res.leaves).toBeGreaterThan(dxRootLimit(true));
    expect(res.avgLeafFill).toBeGreaterThan(0.95);
  }, 60000);

  test("long names (1..255) in a multi-level tree, several seeds and hash versions", () => {
    for (const [k, version] of [[0, 1], [1, 0], [2, 2]] as const) {
      const kids = makeChildren(14000, 10 + k, 20, 100, 255);
      const o = { ...options(true, new Uint32Array([k, 0, 0, 0])), hashVersion: version };
      const r = buildDirectory(12, 2, kids, o);
      expect(r.blockCount).toBe(directoryBlockCount(lengths(kids), o));
      const res = verifyDirectory(r.bytes, 12, 2, kids, o);
      expect(res.levels).toBe(1);
    }
  }, 60000);

  test("duplicate names are rejected in indexed directories too", () => {
    const kids = makeChildren(3000, 6);
    kids.push({ ...kids[1234]!, ino: 99999 });
    expect(() => buildDirectory(12, 2, kids, options(true))).toThrow(/directory 12: duplicate child name/);
  });

  test("forced hash collisions across leaf boundaries get the collision bit", () => {
    // Only 7 distinct hashes: long runs of equal hashes must span leaves.
    const kids = makeChildren(3000, 4);
    const o = options(true);
    const fake: DirHashFn = (n) => ({ hash: ((n.length % 7) * 0x10000000) >>> 0, minorHash: n[0]! });
    const r = buildDirectoryWithHash(12, 2, kids, o, fake);
    const res = verifyDirectory(r.bytes, 12, 2, kids, o, fake);
    expect(res.collisions).toBeGreaterThan(0);
    // All names with one hash: every index entry after the first is a collision continuation.
    const same: DirHashFn = () => ({ hash: 0x12345678, minorHash: 0 });
    const r2 = buildDirectoryWithHash(12, 2, kids, o, same);
    const res2 = verifyDirectory(r2.bytes, 12, 2, kids, o, same);
    expect(res2.collisions).toBe(res2.leaves - 1);
  });

  test("directoryBlockCount matches for many random shapes", () => {
    const r = rng(99);
    for (let k = 0; k < 60; k++) {
      const n = r() % 1200;
      const kids = makeChildren(n, 1000 + k, 100, 1, 1 + (r() % 255));
      const o = options(k % 2 === 0);
      const b = buildDirectory(12, 2, kids, o);
      expect(b.blockCount).toBe(directoryBlockCount(lengths(kids), o));
      expect(directoryBlockCount(kids.map((k) => latin1.decode(k.name)), o)).toBe(b.blockCount); // names as byte strings, as the planner has them
      verifyDirectory(b.bytes, 12, 2, kids, o);
    }
  });

  test("a reused scratch gives the same bytes as fresh memory: stale bytes of a bigger directory never leak", () => {
    // Big, small, linear, big again: each later build lands on the previous one's bytes.
    const shapes = [makeChildren(2000, 21, 100, 1, 60), makeChildren(40, 22), makeChildren(3, 23), makeChildren(900, 24, 100, 200, 255)];
    const scratch = { buf: new Uint8Array(BLOCK_SIZE) };
    for (const csum of [true, false]) {
      for (const kids of shapes) {
        const o = options(csum);
        const fresh = buildDirectory(12, 2, kids, o);
        const reused = buildDirectory(12, 2, kids, { ...o, scratch });
        expect(reused.blockCount).toBe(fresh.blockCount);
        expect(Buffer.compare(reused.bytes, fresh.bytes)).toBe(0);
        expect(reused.bytes.buffer).toBe(scratch.buf.buffer);
      }
    }
    expect(scratch.buf.length).toBeGreaterThan(BLOCK_SIZE);
  });

  test("too many entries for two levels is a clear error", () => {
    // 507 * 510 leaves of 15 maximal entries each would be needed; check the planner directly.
    const name255 = "n".repeat(255);
    const huge = Array.from({ length: 507 * 510 * 15 + 1 }, () => name255);
    expect(() => directoryBlockCount(huge, { metadataCsum: true })).toThrow(/too large for a 2-level htree/);
  });
});

describe("planLeaves", () => {
  test("fills every leaf, respects capacity, covers all entries", () => {
    const r = rng(5);
    for (let k = 0; k < 300; k++) {
      const n = 20 + (r() % 2000);
      const sizes = Array.from({ length: n }, () => direntRecLen(1 + (r() % (1 + (r() % 255)))));
      const total = sizes.reduce((a, b) => a + b, 0);
      const maxS = Math.max(...sizes);
      const cap = 4084;
      const minLeaves = Math.ceil(total / cap);
      const leafCount = Math.max(minLeaves, Math.ceil(total / (cap - maxS + 4)));
      if (leafCount > n) continue;
      const starts = planLeaves(sizes, leafCount, cap);
      expect(starts[0]).toBe(0);
      expect(starts[leafCount]).toBe(n);
      for (let l = 0; l < leafCount; l++) {
        expect(starts[l + 1]!).toBeGreaterThan(starts[l]!);
        let fill = 0;
        for (let i = starts[l]!; i < starts[l + 1]!; i++) fill += sizes[i]!;
        expect(fill).toBeLessThanOrEqual(cap);
      }
    }
  });
});


// ---------------------------------------------------------------------------------------------
// Real oracle: our blocks written over a directory in a mke2fs-made image, then e2fsck (check
// and preen), debugfs (ls, htree_dump) and, as root, the kernel (readdir + lookups by name).

const FT_BY_MODE: Record<number, number> = { 0o040000: 2, 0o100000: 1, 0o120000: 7, 0o010000: 5, 0o020000: 3, 0o060000: 4, 0o140000: 6 };

function sh(argv: string[], what: string): string {
  const p = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${what}: ${argv.join(" ")} exited ${p.exitCode}\n${p.stdout.toString()}\n${p.stderr.toString()}`);
  return p.stdout.toString("latin1");
}

function uuidWords(uuid: string): Uint32Array {
  const b = Buffer.from(uuid.replaceAll("-", ""), "hex");
  return Uint32Array.from({ length: 4 }, (_, i) => b.readUInt32LE(i * 4));
}

interface Fixture {
  dir: string;
  img: string;
  dirIno: number;
  children: DirChild[];
  opts: DirBuildOptions;
  blockCount: number;
  indexed: boolean;
  bytes: Uint8Array;
}

/**
 * mke2fs -d an image holding /big with files named `names` (plus a symlink and a fifo when
 * `extraTypes`), then builds a fresh directory /newdir with OUR code for the same (name, ino,
 * type) set and swaps it in for /big: the files then have exactly one link, from /newdir.
 */
function makeFixture(
  names: Uint8Array[],
  metadataCsum: boolean,
  seedUuid: string,
  distinct = names.length,
  extraTypes = true,
  mutate?: (bytes: Uint8Array) => void,
): Fixture {
  const { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, openSync, writeSync, closeSync } = require("node:fs") as typeof import("node:fs");
  const { join } = require("node:path") as typeof import("node:path");
  const { tmpdir } = require("node:os") as typeof import("node:os");
  const dir = mkdtempSync(join(tmpdir(), "banger-htree-"));
  const src = join(dir, "src");
  const big = join(src, "big");
  mkdirSync(big, { recursive: true });
  // The first `distinct` names get their own inode (mke2fs -d inserts them into a linear /big,
  // which is quadratic); the rest become hard links to one file "shared", fixed up below.
  for (const n of names.slice(0, distinct)) writeFileSync(Buffer.concat([Buffer.from(big + "/"), Buffer.from(n)]), "");
  const linked = names.slice(distinct);
  writeFileSync(join(src, "shared"), "shared");
  if (extraTypes) {
    symlinkSync("some/target", join(big, "a-symlink"));
    sh(["mkfifo", join(big, "a-fifo")], "mkfifo");
  }
  const img = join(dir, "img");
  const features = metadataCsum ? "metadata_csum,64bit" : "^metadata_csum,64bit";
  sh([toolPathOf("mkfs.ext4"), "-q", "-F", "-b", "4096", "-O", features, "-N", String(names.length + 2000), "-d", src, img, "256M"], "mkfs.ext4");
  const debugfs = toolPathOf("debugfs");
  const cmd = (c: string) => sh([debugfs, "-R", c, img], `debugfs ${c}`);
  // Fix the hash seed and use unsigned hashes, as our writer does.
  sh([debugfs, "-w", "-R", `ssv hash_seed ${seedUuid}`, img], "set hash_seed");
  sh([debugfs, "-w", "-R", "ssv flags 2", img], "set unsigned hash flag");

  const children: DirChild[] = [];
  for (const line of cmd("ls -p -r /big").split("\n")) {
    const f = line.split("/");
    if (f.length < 7 || f[0] !== "") continue;
    const name = Buffer.from(f[5]!, "latin1");
    if (name.equals(Buffer.from(".")) || name.equals(Buffer.from(".."))) continue;
    const mode = parseInt(f[2]!, 8);
    children.push({ name: new Uint8Array(name), ino: Number(f[1]), fileType: FT_BY_MODE[mode & 0o170000]! });
  }
  expect(children.length).toBe(distinct + (extraTypes ? 2 : 0));
  const sharedIno = Number(/^\s*(\d+)/.exec(cmd("ls -p /").split("\n").find((l) => l.includes("/shared/"))!.replace(/^\//, ""))![1]);
  for (const n of linked) children.push({ name: n, ino: sharedIno, fileType: FT_REG_FILE });

  const blockCount = directoryBlockCount(lengths(children), { metadataCsum });
  const ph = join(dir, "placeholder");
  writeFileSync(ph, Buffer.alloc(blockCount * BLOCK_SIZE, 0xa5));
  sh([debugfs, "-w", "-R", `write ${ph} newdir`, img], "write placeholder");
  const st = cmd("stat /newdir");
  const dirIno = Number(/Inode: (\d+)/.exec(st)![1]);
  const generation = Number(/Generation: (\d+)/.exec(st)![1]);
  const phys = cmd("blocks /newdir").trim().split(/\s+/).map(Number);
  expect(phys.length).toBe(blockCount);
  const uuid = /Filesystem UUID:\s+(\S+)/.exec(sh([toolPathOf("dumpe2fs"), "-h", img], "dumpe2fs"))![1]!;
  const fsSeed = crc32c(0xffffffff, new Uint8Array(Buffer.from(uuid.replaceAll("-", ""), "hex")));
  const le = (x: number) => new Uint8Array(new Uint32Array([x]).buffer);
  const opts: DirBuildOptions = {
    metadataCsum,
    hashVersion: 1,
    hashSeed: uuidWords(seedUuid),
    unsignedHash: true,
    inodeCsumSeed: crc32c(crc32c(fsSeed, le(dirIno)), le(generation)),
  };
  const built = buildDirectory(dirIno, 2, children, opts);
  expect(built.blockCount).toBe(blockCount);
  mutate?.(built.bytes);
  const fd = openSync(img, "r+");
  try {
    for (let b = 0; b < blockCount; b++) writeSync(fd, built.bytes, b * BLOCK_SIZE, BLOCK_SIZE, phys[b]! * BLOCK_SIZE);
  } finally {
    closeSync(fd);
  }
  const cmds = join(dir, "swap.cmds");
  writeFileSync(
    cmds,
    [
      `sif <${dirIno}> mode 040755`,
      `sif <${dirIno}> flags ${built.indexed ? "0x81000" : "0x80000"}`,
      `sif <${dirIno}> links_count 2`,
      "unlink /newdir",
      `link <${dirIno}> /newdir`,
      "kill_file /big",
      "clri /big",
      "unlink /big",
      ...(linked.length ? ["unlink /shared", `sif <${sharedIno}> links_count ${linked.length}`] : []),
      "",
    ].join("\n"),
  );
  sh([debugfs, "-w", "-f", cmds, img], "swap in the new directory");
  // debugfs created /newdir as a file, so its group's directory count lacks it.
  const full = sh([toolPathOf("dumpe2fs"), img], "dumpe2fs");
  const perGroup = Number(/Inodes per group:\s+(\d+)/.exec(full)![1]);
  const group = Math.floor((dirIno - 1) / perGroup);
  const groupText = full.split(/^Group /m).find((g) => g.startsWith(`${group}:`))!;
  const dirs = Number(/(\d+) directories/.exec(groupText)![1]);
  sh([debugfs, "-w", "-R", `set_bg ${group} used_dirs_count ${dirs + 1}`, img], "fix used_dirs_count");
  sh([debugfs, "-w", "-R", `set_bg ${group} checksum calc`, img], "fix group descriptor checksum");
  return { dir, img, dirIno, children, opts, blockCount, indexed: built.indexed, bytes: built.bytes };
}

function toolPathOf(name: string): string {
  const p = Bun.which(name, { PATH: `${process.env.PATH}:/usr/sbin:/sbin` });
  if (!p) throw new Error(`${name} not found`);
  return p;
}

/** e2fsck -fn passes; e2fsck -fp on a copy neither complains nor rewrites our directory. */
function checkWithE2fsprogs(fx: Fixture): void {
  const { copyFileSync, openSync, readSync, closeSync } = require("node:fs") as typeof import("node:fs");
  const e2fsck = toolPathOf("e2fsck");
  const n = Bun.spawnSync([e2fsck, "-fn", fx.img], { stdout: "pipe", stderr: "pipe" });
  // e2fsck -n can exit 0 after "IGNORED" problems (e.g. group descriptor checksums): any
  // declined fix counts as a failure.
  const nOut = n.stdout.toString() + n.stderr.toString();
  if (n.exitCode !== 0 || /\? no$|IGNORED/m.test(nOut)) throw new Error(`e2fsck -fn exited ${n.exitCode}\n${nOut}`);
  const copy = fx.img + ".preen";
  copyFileSync(fx.img, copy);
  const p = Bun.spawnSync([e2fsck, "-fp", copy], { stdout: "pipe", stderr: "pipe" });
  const out = p.stdout.toString() + p.stderr.toString();
  if (p.exitCode !== 0 || /optimiz/i.test(out)) throw new Error(`e2fsck -fp exited ${p.exitCode}\n${out}`);
  // Our directory's blocks are unchanged after preen.
  const phys = sh([toolPathOf("debugfs"), "-R", `blocks <${fx.dirIno}>`, copy], "blocks").trim().split(/\s+/).map(Number);
  const fd = openSync(copy, "r");
  try {
    const buf = new Uint8Array(BLOCK_SIZE);
    for (let b = 0; b < fx.blockCount; b++) {
      readSync(fd, buf, 0, BLOCK_SIZE, phys[b]! * BLOCK_SIZE);
      if (!Buffer.from(buf).equals(Buffer.from(fx.bytes.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE))))
        throw new Error(`e2fsck -fp rewrote directory block ${b}`);
    }
  } finally {
    closeSync(fd);
  }

  const debugfs = toolPathOf("debugfs");
  // debugfs ls lists every name with the right inode.
  const listed = new Map<string, number>();
  for (const line of sh([debugfs, "-R", "ls -p -r /newdir", fx.img], "ls").split("\n")) {
    const f = line.split("/");
    // dx_node blocks show up as their fake empty entry (inode 0); skip those.
    if (f.length >= 7 && f[0] === "" && f[1] !== "0") listed.set(f[5]!, Number(f[1]));
  }
  const wanted = new Set(fx.children.map((c) => latin1.decode(c.name)));
  const extra = [...listed.keys()].filter((k) => !wanted.has(k) && k !== "." && k !== "..");
  expect(extra).toEqual([]);
  expect(listed.size).toBe(fx.children.length + 2);
  for (const c of fx.children) expect(listed.get(latin1.decode(c.name))).toBe(c.ino);
  // htree_dump walks the index like the kernel does and reports bad hashes/blocks.
  const dump = Bun.spawnSync([debugfs, "-R", "htree_dump /newdir", fx.img], { stdout: "pipe", stderr: "pipe" });
  const dumpOut = dump.stdout.toString("latin1") + dump.stderr.toString();
  if (fx.indexed) {
    expect(dumpOut).toContain(`Number of entries (count):`);
    expect(dumpOut).toMatch(/Indirect levels: [01]/);
    // Every name appears exactly once in the leaf dumps ("ino 0xhash-minor (rec_len) name").
    const leafEntries = [...dumpOut.matchAll(/(?:^|\s)\d+ 0x[0-9a-f]{8}-[0-9a-f]{8} \(\d+\) /g)].length;
    expect(leafEntries).toBe(fx.children.length);
  } else {
    expect(dumpOut).toContain("Not a hash-indexed directory");
  }
}

/** As root: loop-mount read-only, readdir returns every name once, each name resolves by lookup. */
function checkWithKernel(fx: Fixture): void {
  const { mkdirSync, readdirSync, lstatSync, rmSync } = require("node:fs") as typeof import("node:fs");
  const mnt = fx.dir + "/mnt";
  mkdirSync(mnt);
  sh(["mount", "-o", "ro,loop,noload", "-t", "ext4", fx.img, mnt], "mount");
  try {
    const base = mnt + "/newdir/";
    const names = readdirSync(base, { encoding: "buffer" });
    expect(names.length).toBe(fx.children.length);
    const seen = new Set(names.map((b) => b.toString("latin1")));
    for (const c of fx.children) {
      expect(seen.has(latin1.decode(c.name))).toBe(true);
      const st = lstatSync(Buffer.concat([Buffer.from(base), Buffer.from(c.name)]));
      expect(st.ino).toBe(c.ino);
    }
  } finally {
    sh(["umount", mnt], "umount");
    rmSync(mnt, { recursive: true, force: true });
  }
}

/**
 * As root: mount read-write, add `adds` files to /newdir (splitting our nearly full leaves and,
 * with enough of them, index nodes), remove every 7th original name, unmount, then e2fsck -fn
 * must still pass and every remaining name must resolve.
 */
function checkKernelWrites(fx: Fixture, adds: number): void {
  const { mkdirSync, writeFileSync, unlinkSync, lstatSync, rmSync } = require("node:fs") as typeof import("node:fs");
  const mnt = fx.dir + "/mnt-rw";
  mkdirSync(mnt);
  sh(["mount", "-o", "loop", "-t", "ext4", fx.img, mnt], "mount rw");
  const base = mnt + "/newdir/";
  const path = (n: Uint8Array) => Buffer.concat([Buffer.from(base), Buffer.from(n)]);
  try {
    for (let i = 0; i < adds; i++) writeFileSync(`${base}added-${i}`, "");
    fx.children.forEach((c, i) => {
      if (i % 7 === 0) unlinkSync(path(c.name));
    });
  } finally {
    sh(["umount", mnt], "umount");
  }
  const n = Bun.spawnSync([toolPathOf("e2fsck"), "-fn", fx.img], { stdout: "pipe", stderr: "pipe" });
  if (n.exitCode !== 0 || /\? no$|IGNORED/m.test(n.stdout.toString())) throw new Error(`e2fsck -fn after kernel writes exited ${n.exitCode}\n${n.stdout.toString()}${n.stderr.toString()}`);
  sh(["mount", "-o", "ro,loop", "-t", "ext4", fx.img, mnt], "mount ro");
  try {
    fx.children.forEach((c, i) => {
      if (i % 7 !== 0) expect(lstatSync(path(c.name)).ino).toBe(c.ino);
    });
    for (let i = 0; i < adds; i++) lstatSync(`${base}added-${i}`);
  } finally {
    sh(["umount", mnt], "umount");
    rmSync(mnt, { recursive: true, force: true });
  }
}

function cleanup(fx: Fixture | undefined): void {
  if (fx) (require("node:fs") as typeof import("node:fs")).rmSync(fx.dir, { recursive: true, force: true });
}

/** Names safe for a host filesystem: no '/', NUL or newline; some bytes >= 0x80. */
function hostNames(n: number, seed: number, minLen: number, maxLen: number): Uint8Array[] {
  return makeChildren(n, seed, 1, minLen, maxLen).map((c) => c.name.map((b) => (b === 0x0a ? 0x5f : b)));
}

const SEED_UUID = "6b2c58e4-3a1f-4d8e-9c7b-1f2e3d4c5b6a";
const ORACLE_TOOLS = ["debugfs", "e2fsck", "mkfs.ext4", "dumpe2fs", "mkfifo"];

describe("buildDirectory against e2fsprogs and the kernel", () => {
  // [what, names, metadata_csum, how many names get their own inode (the rest are hard links)]
  const cases: [string, () => Uint8Array[], boolean, number][] = [
    ["linear, 20 names", () => hostNames(20, 21, 1, 30), true, 20],
    ["htree, 400 names", () => hostNames(400, 22, 1, 40), true, 400],
    ["htree, 400 names, no metadata_csum", () => hostNames(400, 23, 1, 40), false, 400],
    ["htree, 5000 names incl. bytes >= 0x80", () => hostNames(5000, 24, 1, 60), true, 1000],
    ["htree with an indirect level, 8000 names of 240..255 bytes", () => hostNames(8000, 25, 240, 255), true, 300],
  ];
  for (const [name, names, csum, distinct] of cases) {
    testWith({ tools: ORACLE_TOOLS }, `${name}: e2fsck clean, preen changes nothing, debugfs lists all`, () => {
      let fx: Fixture | undefined;
      try {
        fx = makeFixture(names(), csum, SEED_UUID, distinct);
        if (name.includes("indirect")) expect(fx.bytes[30]).toBe(1);
        checkWithE2fsprogs(fx);
      } finally {
        cleanup(fx);
      }
    }, 120000);
  }

  testWith({ tools: ORACLE_TOOLS, root: true }, "smallest htree (root + 2 leaves): e2fsck, preen, kernel reads and writes", () => {
    let fx: Fixture | undefined;
    try {
      const names = Array.from({ length: 254 }, (_, i) => enc.encode(`n${String(i).padStart(7, "0")}`));
      fx = makeFixture(names, true, SEED_UUID, names.length, false);
      expect(fx.blockCount).toBe(3);
      expect(fx.indexed).toBe(true);
      checkWithE2fsprogs(fx);
      checkWithKernel(fx);
      checkKernelWrites(fx, 500);
    } finally {
      cleanup(fx);
    }
  }, 120000);

  testWith({ tools: ORACLE_TOOLS }, "negative control: a wrong index hash is caught by e2fsck", () => {
    let fx: Fixture | undefined;
    try {
      fx = makeFixture(hostNames(400, 22, 1, 40), false, SEED_UUID, 400, true, (bytes) => {
        const v = new DataView(bytes.buffer);
        v.setUint32(32 + 2 * 8, v.getUint32(32 + 2 * 8, true) + 0x200000, true); // root entry #2's hash
      });
      expect(() => checkWithE2fsprogs(fx!)).toThrow(/e2fsck -fn exited [1-9]/);
    } finally {
      cleanup(fx);
    }
  }, 120000);

  testWith({ tools: ORACLE_TOOLS, root: true }, "a real half_md4 collision split across two leaves (collision bit)", () => {
    const o = options(true, uuidWords(SEED_UUID));
    const h = (n: Uint8Array) => ext4DirHash(n, 1, o.hashSeed, true).hash;
    // Birthday search for two short names with the same major hash under this seed.
    const byHash = new Map<number, number>();
    let pair: [Uint8Array, Uint8Array] | undefined;
    for (let i = 0; !pair && i < 2_000_000; i++) {
      const x = h(enc.encode(`c${i}`));
      const j = byHash.get(x);
      if (j !== undefined) pair = [enc.encode(`c${j}`), enc.encode(`c${i}`)];
      else byHash.set(x, i);
    }
    expect(pair).toBeDefined();
    const H = h(pair![0]);
    // Long fillers below and above H; grow the low set until a leaf boundary falls between the pair.
    const low: Uint8Array[] = [];
    const high: Uint8Array[] = [];
    for (let i = 0; low.length < 600 || high.length < 30; i++) {
      const n = enc.encode(`f${i}-`.padEnd(200, "x"));
      if (h(n) < H) low.push(n);
      else if (h(n) > H && high.length < 30) high.push(n);
    }
    let names: Uint8Array[] | undefined;
    for (let k = 15; k <= low.length && !names; k++) {
      const candidate = [...low.slice(0, k), ...pair!, ...high];
      const kids = candidate.map((name, i) => ({ name, ino: 100 + i, fileType: FT_REG_FILE }));
      const r = buildDirectory(12, 2, kids, o);
      if (verifyDirectory(r.bytes, 12, 2, kids, o).collisions > 0) names = candidate;
    }
    expect(names).toBeDefined();
    let fx: Fixture | undefined;
    try {
      fx = makeFixture(names!, true, SEED_UUID, names!.length, false);
      expect(verifyDirectory(fx.bytes, fx.dirIno, 2, fx.children, fx.opts).collisions).toBeGreaterThan(0);
      checkWithE2fsprogs(fx);
      checkWithKernel(fx);
    } finally {
      cleanup(fx);
    }
  }, 120000);

  testWith({ tools: ORACLE_TOOLS, root: true }, "kernel readdir and lookups (htree with indirect level and high bytes)", () => {
    let fx: Fixture | undefined;
    try {
      const names = [...hostNames(1000, 31, 1, 40), ...hostNames(8000, 32, 240, 255)];
      const uniq = [...new Map(names.map((n) => [latin1.decode(n), n])).values()];
      fx = makeFixture(uniq, true, SEED_UUID, 500);
      expect(fx.bytes[30]).toBe(1);
      checkWithKernel(fx);
      checkKernelWrites(fx, 3000);
    } finally {
      cleanup(fx);
    }
  }, 120000);
});
