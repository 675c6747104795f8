// Hash-indexed directories: structure checked by an independent walker in this file, plus
// e2fsprogs (e2fsck, debugfs) and the kernel as oracles on real images.
import { describe, expect, test } from "bun:test";
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
const latin1 = new TextDecoder("latin1");

export function options(metadataCsum: boolean, seed = new Uint32Array([0x11111111, 0x22222222, 0x33333333, 0x44444444])): DirBuildOptions {
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
export function verifyDirectory(
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
        expect([ino, ft]).toEqual([c.ino, c.fileType]);
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
    for (const n of names) {
      expect(n.hash).toBeGreaterThanOrEqual(lo);
      if (next !== undefined) {
        const hi = (next & ~1) >>> 0;
        expect(n.hash).toBeLessThanOrEqual(hi);
        // An equal hash in this leaf is only reachable when the next index entry says "collision".
        if (n.hash === hi) expect(next & 1).toBe(1);
      }
    }
    for (let k = 1; k < names.length; k++) expect(names[k]!.hash).toBeGreaterThanOrEqual(names[k - 1]!.hash);
    const fill = used / leafEnd;
    minFill = Math.min(minFill, fill);
    sumFill += fill;
  }
  for (let b = 0; b < nblocks; b++) if (refs[b] !== 1) throw new Error(`block ${b} referenced ${refs[b]} times`);
  expect(found.size).toBe(children.length);
  return { indexed: true, levels, leaves: leaves.length, collisions, minLeafFill: minFill, avgLeafFill: sumFill / leaves.length };
}

function lengths(children: DirChild[]) {
  return children.map((c) => ({ nameLength: c.name.length }));
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
      verifyDirectory(b.bytes, 12, 2, kids, o);
    }
  });

  test("too many entries for two levels is a clear error", () => {
    // 507 * 510 leaves of 15 maximal entries each would be needed; check the planner directly.
    const huge = Array.from({ length: 507 * 510 * 15 + 1 }, () => ({ nameLength: 255 }));
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

void enc;
