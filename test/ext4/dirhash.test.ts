// ext4DirHash against debugfs's dx_hash (e2fsprogs' own implementation) as the oracle.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ext4DirHash } from "../../src/ext4/dirhash.ts";
import { hasTool, testWith, toolPath } from "../helpers/env.ts";

const enc = new TextEncoder();

/** Deterministic xorshift32 so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Bytes that survive debugfs's command-line parser unquoted: no space, quote, backslash, control. */
function safeByte(r: () => number, highBytes: boolean): number {
  for (;;) {
    const b = highBytes && r() % 3 === 0 ? 0x80 + (r() % 128) : 0x21 + (r() % 94);
    if (b !== 0x22 && b !== 0x5c && b !== 0x23 && b !== 0x27) return b;
  }
}

function makeNames(): Uint8Array[] {
  const r = rng(12345);
  const names: Uint8Array[] = [];
  for (const s of ["a", "hello", "lost+found", "..a", "file.txt", "abcd", "abcdefghijklmnopqrstuvwxyz0123456789"])
    names.push(enc.encode(s));
  // Lengths around the 4-byte word, 16-byte TEA and 32-byte half-MD4 chunk boundaries, and up to 255.
  const lengths = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 100, 127, 128, 200, 254, 255];
  for (const len of lengths) {
    for (const high of [false, true]) {
      const n = new Uint8Array(len);
      for (let i = 0; i < len; i++) n[i] = safeByte(r, high);
      if (n[0] === 0x2d) n[0] = 0x41; // no leading '-' (getopt)
      names.push(n);
    }
  }
  for (let k = 0; k < 40; k++) {
    const len = 1 + (r() % 40);
    const n = new Uint8Array(len);
    for (let i = 0; i < len; i++) n[i] = safeByte(r, k % 2 === 1);
    if (n[0] === 0x2d) n[0] = 0x41;
    names.push(n);
  }
  return names;
}

const SEEDS: { uuid: string | null; words: Uint32Array }[] = [
  { uuid: null, words: new Uint32Array(4) },
  { uuid: "4e2fb1ca-f9c6-40b7-8bae-f7a5c9d654ac", words: new Uint32Array(4) },
  { uuid: "00000001-0000-0000-0000-000000000000", words: new Uint32Array(4) },
];
for (const s of SEEDS) {
  if (!s.uuid) continue;
  const bytes = Uint8Array.from(Buffer.from(s.uuid.replaceAll("-", ""), "hex"));
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < 4; i++) s.words[i] = dv.getUint32(i * 4, true);
}

// debugfs's HASHALG_n numbering: 0-2 signed, 3-5 unsigned flavours of legacy/half_md4/tea.
const ALGS = [0, 1, 2];

describe("ext4DirHash", () => {
  let dir = "";
  let img = "";
  beforeAll(() => {
    if (!hasTool("mkfs.ext4") || !hasTool("debugfs")) return;
    dir = mkdtempSync(join(tmpdir(), "banger-dirhash-"));
    img = join(dir, "img");
    const r = Bun.spawnSync([toolPath("mkfs.ext4"), "-q", "-F", "-b", "4096", img, "8M"]);
    if (r.exitCode !== 0) throw new Error(`mkfs.ext4 failed: ${r.stderr.toString()}`);
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  testWith({ tools: ["debugfs", "mkfs.ext4"] }, "matches debugfs dx_hash for all algorithms, signedness and seeds", () => {
    const names = makeNames();
    const cases: { name: Uint8Array; version: number; unsigned: boolean; seed: (typeof SEEDS)[number] }[] = [];
    const lines: Buffer[] = [];
    for (const seed of SEEDS) {
      for (const version of ALGS) {
        for (const unsigned of [false, true]) {
          for (const name of names) {
            cases.push({ name, version, unsigned, seed });
            const alg = `HASHALG_${version + (unsigned ? 3 : 0)}`;
            const s = seed.uuid ? ` -s ${seed.uuid}` : "";
            lines.push(Buffer.concat([Buffer.from(`dx_hash -h ${alg}${s} `), Buffer.from(name), Buffer.from("\n")]));
          }
        }
      }
    }
    const cmdFile = join(dir, "cmds");
    writeFileSync(cmdFile, Buffer.concat(lines));
    const r = Bun.spawnSync([toolPath("debugfs"), "-f", cmdFile, img]);
    expect(r.exitCode).toBe(0);
    const out = r.stdout.toString("latin1");
    const got = [...out.matchAll(/ is 0x([0-9a-f]+) \(minor 0x([0-9a-f]+)\)/g)].map((m) => ({
      hash: parseInt(m[1]!, 16),
      minorHash: parseInt(m[2]!, 16),
    }));
    expect(got.length).toBe(cases.length);
    let mismatches = 0;
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i]!;
      const mine = ext4DirHash(c.name, c.version, c.seed.words, c.unsigned);
      if (mine.hash !== got[i]!.hash || mine.minorHash !== got[i]!.minorHash) {
        if (mismatches++ < 5)
          console.error(
            `mismatch v${c.version} unsigned=${c.unsigned} seed=${c.seed.uuid} name=${Buffer.from(c.name).toString("hex")}: ` +
              `mine ${mine.hash.toString(16)}/${mine.minorHash.toString(16)} debugfs ${got[i]!.hash.toString(16)}/${got[i]!.minorHash.toString(16)}`,
          );
      }
    }
    expect(mismatches).toBe(0);
  });
});

describe("ext4DirHash (pure)", () => {
  test("lowest bit is always clear and values are unsigned 32-bit", () => {
    const r = rng(7);
    for (let k = 0; k < 2000; k++) {
      const n = new Uint8Array(1 + (r() % 255));
      for (let i = 0; i < n.length; i++) n[i] = r() & 0xff;
      for (const v of ALGS) {
        const h = ext4DirHash(n, v, new Uint32Array([r(), r(), r(), r()]), (k & 1) === 1);
        expect(h.hash & 1).toBe(0);
        expect(h.hash).toBeGreaterThanOrEqual(0);
        expect(h.hash).toBeLessThan(0xfffffffe);
        expect(h.minorHash).toBeGreaterThanOrEqual(0);
        expect(h.minorHash).toBeLessThanOrEqual(0xffffffff);
      }
    }
  });

  test("signed and unsigned agree on ASCII, differ on high bytes", () => {
    const seed = new Uint32Array(4);
    for (const v of ALGS) {
      expect(ext4DirHash(enc.encode("plain-ascii"), v, seed, true)).toEqual(ext4DirHash(enc.encode("plain-ascii"), v, seed, false));
      const high = Uint8Array.from([0x68, 0xe9, 0x6c, 0x6c, 0x6f]);
      expect(ext4DirHash(high, v, seed, true)).not.toEqual(ext4DirHash(high, v, seed, false));
    }
  });

  test("rejects unknown hash versions", () => {
    expect(() => ext4DirHash(enc.encode("x"), 7, new Uint32Array(4), true)).toThrow(/hash version 7/);
  });
});
