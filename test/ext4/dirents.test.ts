// Linear directory blocks and entry encoding.
import { describe, expect, test } from "bun:test";
import { BLOCK_SIZE, FT_DIR, FT_DIR_CSUM, FT_REG_FILE, FT_SYMLINK } from "../../src/ext4/constants.ts";
import { crc32c } from "../../src/ext4/crc32c.ts";
import {
  type DirBuildOptions,
  type DirChild,
  direntRecLen,
  fitsOneBlock,
  leafCapacity,
  MAX_REC_LEN,
  validateChildren,
} from "../../src/ext4/dirents.ts";
import { buildDirectory, directoryBlockCount } from "../../src/ext4/htree.ts";

const enc = new TextEncoder();
const SEED = 0x1234abcd;
const opts = (metadataCsum: boolean): DirBuildOptions => ({
  metadataCsum,
  hashVersion: 1,
  hashSeed: new Uint32Array([1, 2, 3, 4]),
  unsignedHash: true,
  inodeCsumSeed: SEED,
});

interface Ent { ino: number; recLen: number; name: Uint8Array; fileType: number; offset: number }
function walk(block: Uint8Array): Ent[] {
  const v = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const out: Ent[] = [];
  let off = 0;
  while (off < block.length) {
    const recLen = v.getUint16(off + 4, true);
    expect(recLen).toBeGreaterThanOrEqual(12);
    expect(recLen % 4).toBe(0);
    const nameLen = block[off + 6]!;
    expect(8 + nameLen).toBeLessThanOrEqual(recLen);
    out.push({ ino: v.getUint32(off, true), recLen, name: block.slice(off + 8, off + 8 + nameLen), fileType: block[off + 7]!, offset: off });
    off += recLen;
  }
  expect(off).toBe(block.length); // ends exactly at the block end
  return out;
}

function child(name: string | Uint8Array, ino: number, fileType = FT_REG_FILE): DirChild {
  return { name: typeof name === "string" ? enc.encode(name) : name, ino, fileType };
}

describe("direntRecLen", () => {
  test("8 + name length rounded up to 4", () => {
    expect([1, 2, 3, 4, 5, 8, 9, 255].map(direntRecLen)).toEqual([12, 12, 12, 12, 16, 16, 20, 264]);
    expect(MAX_REC_LEN).toBe(264);
  });
});

describe("linear directories", () => {
  for (const csum of [true, false]) {
    test(`empty directory (metadata_csum=${csum})`, () => {
      const r = buildDirectory(12, 2, [], opts(csum));
      expect(r.blockCount).toBe(1);
      expect(r.indexed).toBe(false);
      expect(r.bytes.length).toBe(BLOCK_SIZE);
      const ents = walk(r.bytes);
      const live = csum ? ents.slice(0, -1) : ents;
      expect(live.map((e) => [e.ino, e.recLen, new TextDecoder().decode(e.name), e.fileType])).toEqual([
        [12, 12, ".", FT_DIR],
        [2, BLOCK_SIZE - 12 - (csum ? 12 : 0), "..", FT_DIR],
      ]);
      if (csum) {
        const t = ents.at(-1)!;
        expect([t.ino, t.recLen, t.name.length, t.fileType, t.offset]).toEqual([0, 12, 0, FT_DIR_CSUM, BLOCK_SIZE - 12]);
        const v = new DataView(r.bytes.buffer);
        expect(v.getUint32(BLOCK_SIZE - 4, true)).toBe(crc32c(SEED, r.bytes, 0, BLOCK_SIZE - 12));
      }
      expect(directoryBlockCount([], { metadataCsum: csum })).toBe(1);
    });
  }

  test("children in the given order, last rec_len covers the slack, types and inodes kept", () => {
    const kids = [child("a", 20), child("bb", 21, FT_DIR), child("link", 22, FT_SYMLINK), child("x".repeat(255), 23)];
    const r = buildDirectory(12, 5, kids, opts(true));
    const ents = walk(r.bytes);
    expect(ents.length).toBe(7);
    expect(ents.slice(2, 6).map((e) => [e.ino, new TextDecoder().decode(e.name), e.fileType])).toEqual(
      kids.map((k) => [k.ino, new TextDecoder().decode(k.name), k.fileType]),
    );
    expect(ents[5]!.offset + ents[5]!.recLen).toBe(BLOCK_SIZE - 12);
    expect(ents[1]!.recLen).toBe(12);
  });

  for (const csum of [true, false]) {
    test(`exactly full block stays linear, one more entry goes indexed (metadata_csum=${csum})`, () => {
      const cap = leafCapacity(csum) - 24; // after "." and ".."
      // Fill with 16-byte entries (8-char names) and one final entry that takes the rest exactly.
      const kids: DirChild[] = [];
      let used = 0;
      let i = 0;
      while (cap - used > 260) {
        kids.push(child(`n${String(i).padStart(7, "0")}`, 100 + i));
        used += 16;
        i++;
      }
      const lastLen = cap - used - 8; // rec_len = 8 + lastLen, a multiple of 4
      expect(lastLen % 4).toBe(0);
      kids.push(child("z".repeat(lastLen), 100 + i));
      expect(fitsOneBlock(used + direntRecLen(lastLen), csum)).toBe(true);
      const r = buildDirectory(12, 2, kids, opts(csum));
      expect(r.blockCount).toBe(1);
      expect(r.indexed).toBe(false);
      const ents = walk(r.bytes);
      const last = ents[ents.length - (csum ? 2 : 1)]!;
      expect(last.recLen).toBe(direntRecLen(lastLen)); // no slack at all
      expect(directoryBlockCount(kids.map((k) => k.name), { metadataCsum: csum })).toBe(1);

      const more = [...kids, child("q", 99999)];
      const r2 = buildDirectory(12, 2, more, opts(csum));
      expect(r2.blockCount).toBe(3); // dx_root + 2 leaves
      expect(r2.indexed).toBe(true);
      expect(directoryBlockCount(more.map((k) => k.name), { metadataCsum: csum })).toBe(3);
    });
  }

  test("names of every length 1..255 round-trip", () => {
    for (let len = 1; len <= 255; len++) {
      const name = new Uint8Array(len).map((_, j) => 0x41 + ((j + len) % 26));
      name[0] = 0x80 + (len % 128); // high bytes are fine in names
      const r = buildDirectory(12, 2, [child(name, 77)], opts(true));
      const e = walk(r.bytes)[2]!;
      expect(e.name).toEqual(name);
      expect(e.ino).toBe(77);
    }
  });
});

describe("validation", () => {
  const bad: [string, DirChild[], RegExp][] = [
    ["empty name", [child("", 20)], /name length 0/],
    ["too long", [child("a".repeat(256), 20)], /name length 256/],
    ["slash", [child("a/b", 20)], /'\/' or NUL/],
    ["NUL", [child(Uint8Array.of(0x61, 0), 20)], /'\/' or NUL/],
    ["dot", [child(".", 20)], /"\."/],
    ["dotdot", [child("..", 20)], /"\.\."/],
    ["inode 0", [child("a", 0)], /invalid inode number 0/],
    ["duplicate", [child("a", 20), child("b", 21), child("a", 22)], /duplicate child name "a"/],
    ["file type", [child("a", 20, 9)], /invalid file type 9/],
  ];
  for (const [what, kids, re] of bad) {
    test(`rejects ${what}`, () => {
      expect(() => validateChildren(kids, 12)).toThrow(re);
      expect(() => buildDirectory(12, 2, kids, opts(true))).toThrow(/directory 12/);
    });
  }
});
