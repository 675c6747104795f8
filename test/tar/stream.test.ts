// The stream parser on its own: checksums, truncation, end markers, unsupported members,
// zero-run detection, and independence from how the stream is cut into chunks.

import { describe, expect, test } from "bun:test";
import { TarError, TarParser, type TarEntry } from "../../src/tar/index.ts";
import { parseNumeric } from "../../src/tar/headers.ts";
import { paxTime } from "../../src/tar/pax.ts";
import { concat, endMarker, header, member, paxMember, putNumeric, TarBuilder, toBytes } from "../helpers/tarwriter.ts";
import { expectedRuns } from "./util.ts";

function parse(tar: Uint8Array, chunk = tar.length || 1): { entries: TarEntry[]; identity: string } {
  const entries: TarEntry[] = [];
  const p = new TarParser((e) => entries.push(e));
  for (let i = 0; i < tar.length; i += chunk) p.push(tar.subarray(i, Math.min(i + chunk, tar.length)));
  p.end();
  return { entries, identity: Buffer.from(p.identity()).toString("hex") };
}

function parseError(tar: Uint8Array): TarError {
  try {
    parse(tar);
  } catch (e) {
    expect(e).toBeInstanceOf(TarError);
    return e as TarError;
  }
  throw new Error("expected a TarError");
}

function withBlocks(spec: Array<number | "data">, seed = 1): Uint8Array {
  // Each element: a block of data, or 0 for a zero block; last element may be a partial length.
  const parts = spec.map((s, i) => {
    const b = new Uint8Array(4096);
    if (s === "data") for (let j = 0; j < 4096; j += 1) b[j] = ((j * 31 + i * 7 + seed) & 0xff) | 1;
    return b;
  });
  return concat(parts);
}

describe("header fields", () => {
  test("octal and base-256 numbers", () => {
    const b = new Uint8Array(12);
    putNumeric(b, 0, 12, 0o777);
    expect(parseNumeric(b, 0, 12)).toBe(0o777);
    for (const v of [0, 1, 2 ** 33 + 5, 2 ** 52, -1, -(2 ** 40) - 3]) {
      putNumeric(b, 0, 12, v, true);
      expect(parseNumeric(b, 0, 12)).toBe(v);
    }
    expect(parseNumeric(toBytes("  0755 \0"), 0, 8)).toBe(0o755);
    expect(parseNumeric(toBytes("\0\0\0\0\0\0\0\0"), 0, 8)).toBe(0);
    expect(parseNumeric(toBytes("0000o55\0"), 0, 8)).toBeNaN();
  });

  test("PAX times", () => {
    const t = (s: string) => paxTime(toBytes(s), "mtime", null);
    expect(t("0")).toEqual({ sec: 0, nsec: 0 });
    expect(t("-0.5")).toEqual({ sec: -1, nsec: 500_000_000 });
    expect(t("-1.000000001")).toEqual({ sec: -2, nsec: 999_999_999 });
    expect(t("1.")).toEqual({ sec: 1, nsec: 0 });
    expect(t("17000000000.1")).toEqual({ sec: 17_000_000_000, nsec: 100_000_000 });
    expect(() => t("1e5")).toThrow(TarError);
  });
});

describe("archive structure", () => {
  test("a bad header checksum is a TarError naming the entry", () => {
    const h = header({ name: "etc/passwd", size: 0, checksum: 1234 });
    const e = parseError(concat([h, endMarker()]));
    expect(e.message).toContain("etc/passwd");
    expect(e.message).toContain("checksum");
    expect(parseError(new TextEncoder().encode("this is not a tar file".repeat(40))).message).toContain("checksum");
    expect(parseError(new Uint8Array(0)).message).toContain("empty");
    const gz = (data: Uint8Array) => new Uint8Array(Bun.gzipSync(new Uint8Array(data)));
    expect(parseError(gz(concat([member({ name: "f" }, "x"), endMarker()]))).message).toContain("gzip-compressed");
    const noisy = new Uint8Array(20000).map((_, i) => (i * 7919) % 251);
    expect(parseError(gz(concat([member({ name: "f" }, noisy), endMarker()]))).message).toContain("gzip-compressed");
  });

  test("data cut short is 'truncated' (naming the entry); a cut header or extension too", () => {
    const t = new TarBuilder();
    t.file("ok", "fine");
    t.file("big/file", new Uint8Array(5000).fill(1));
    const full = t.bytes();
    const e = parseError(full.subarray(0, full.length - 1000));
    expect(e.message).toContain("big/file");
    expect(e.message).toContain("truncated");
    expect(parseError(full.subarray(0, 1024 + 100)).message).toContain("truncated");
    const ext = paxMember({ path: "x".repeat(600) });
    expect(parseError(ext.subarray(0, 700)).message).toContain("truncated");
    expect(parseError(ext).message).toContain("truncated");
  });

  test("end marker: two zero blocks, one, or none after a complete member; padding may be missing; trailing bytes ignored", () => {
    const t = new TarBuilder();
    t.file("a", "abc");
    const body = t.bytes();
    const base = parse(concat([body, endMarker()]));
    expect(base.entries.map((e) => e.path)).toEqual(["a"]);
    expect(parse(body).entries.length).toBe(1);
    expect(parse(concat([body, new Uint8Array(512)])).entries.length).toBe(1);
    expect(parse(body.subarray(0, 512 + 3)).entries.length).toBe(1);
    expect(parse(concat([body, endMarker(), toBytes("garbage after the end")])).entries.length).toBe(1);
    expect(parse(body).identity).toBe(base.identity);
  });

  test("unsupported members: GNU sparse (type S and PAX GNU.sparse.*), unknown types", () => {
    expect(parseError(concat([member({ name: "sparse", typeflag: "S", format: "gnu" }), endMarker()])).message).toContain("sparse");
    const pax = new TarBuilder();
    pax.file("s", "", { pax: { "GNU.sparse.major": "1", "GNU.sparse.minor": "0" } });
    expect(parseError(pax.end()).message).toContain("sparse");
    expect(parseError(concat([member({ name: "weird", typeflag: "Z" }), endMarker()])).message).toContain("unsupported entry type 'Z'");
    // A volume label is skipped.
    expect(parse(concat([member({ name: "label", typeflag: "V", format: "gnu" }), member({ name: "f" }, "1"), endMarker()])).entries.map((e) => e.path)).toEqual(["f"]);
  });

  test("offsets, sizes and types of members after PAX and GNU extension headers", () => {
    const t = new TarBuilder();
    const o1 = t.file("a", "12345");
    const o2 = t.file("long/".repeat(30) + "b", "x".repeat(513), { gnuLong: true });
    const o3 = t.file("c", "y", { pax: { "SCHILY.xattr.user.a": "1" } });
    t.dir("d");
    t.symlink("s", "t");
    t.device("n", "char", 1, 3, { size: 99 } as never);
    t.fifo("f");
    const o4 = t.file("z", "last");
    const { entries } = parse(t.end());
    expect(entries.map((e) => [e.type, e.dataOffset, e.size])).toEqual([
      ["file", o1, 5],
      ["file", o2, 513],
      ["file", o3, 1],
      ["dir", entries[3]!.dataOffset, 0],
      ["symlink", entries[4]!.dataOffset, 0],
      ["chardev", entries[5]!.dataOffset, 0],
      ["fifo", entries[6]!.dataOffset, 0],
      ["file", o4, 4],
    ]);
  });

  test("chunk boundaries do not matter (entries, runs and identity identical for any chunk size)", () => {
    const t = new TarBuilder();
    t.file("zeros-mixed", withBlocks(["data", 0, 0, "data", 0, "data"]));
    t.file("long/".repeat(40) + "x", withBlocks([0, "data"]).subarray(0, 4096 + 77), { gnuLong: true, pax: { "SCHILY.xattr.user.q": "v".repeat(700) } });
    t.file("tail-zero", concat([withBlocks(["data"]), new Uint8Array(300)]));
    t.file("all-zero", new Uint8Array(3 * 4096 + 5));
    t.file("no-zero", withBlocks(["data", "data"]).subarray(0, 8000));
    t.hardlink("h", "no-zero");
    const tar = t.end();
    const one = parse(tar);
    const strip = (r: ReturnType<typeof parse>) => JSON.stringify(r.entries.map((e) => ({ ...e, xattrs: [...e.xattrs].map(([k, v]) => [k, [...v]]), runs: e.runs ? [...e.runs] : null })));
    for (const chunk of [1, 7, 511, 512, 513, 4095, 4096, 4097, 65536]) {
      const r = parse(tar, chunk);
      expect(strip(r)).toBe(strip(one));
      expect(r.identity).toBe(one.identity);
    }
    const runs = Object.fromEntries(one.entries.map((e) => [e.path.slice(-11), e.runs ? [...e.runs] : undefined]));
    expect(runs["zeros-mixed"]).toEqual([0, 1, 3, 1, 5, 1]);
    expect(runs["long/long/x"]).toEqual([1, 1]);
    expect(runs["tail-zero"]).toEqual([0, 1]);
    expect(runs["all-zero"]).toEqual([]);
    expect(runs["no-zero"]).toBeUndefined();
  });

  test("members beyond 8 GiB (PAX size, GNU base-256 size) stream through with exact offsets", () => {
    const entries: TarEntry[] = [];
    const p = new TarParser((e) => entries.push(e));
    const zeros = new Uint8Array(8 << 20);
    const feedZeros = (n: number) => {
      for (let left = n; left > 0; left -= zeros.length) p.push(zeros.subarray(0, Math.min(left, zeros.length)));
    };
    const tenG = 10 * 2 ** 30 + 3;
    p.push(paxMember({ size: String(tenG) }));
    p.push(header({ name: "pax-big", size: 0 }));
    const firstData = p.offset;
    feedZeros(tenG);
    p.push(new Uint8Array(512 - (tenG % 512)));
    const twelveG = 12 * 2 ** 30;
    p.push(header({ name: "gnu-big", size: twelveG, format: "gnu" }));
    const secondData = p.offset;
    feedZeros(twelveG - 4096);
    const tail = new Uint8Array(4096);
    tail[4095] = 1;
    p.push(tail);
    p.push(member({ name: "after" }, "x"));
    p.push(endMarker());
    p.end();
    expect(entries.map((e) => [e.path, e.size, e.dataOffset, e.runs ? [...e.runs] : null])).toEqual([
      ["pax-big", tenG, firstData, []],
      ["gnu-big", twelveG, secondData, [twelveG / 4096 - 1, 1]],
      ["after", 1, secondData + twelveG + 512, null],
    ]);
  }, 60_000);

  test("zero detection matches a byte-by-byte reference on random block patterns", () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let round = 0; round < 40; round += 1) {
      const len = Math.floor(rand() * 40000);
      const content = new Uint8Array(len);
      for (let b = 0; b * 4096 < len; b += 1) {
        if (rand() < 0.5) continue;
        const at = b * 4096 + Math.floor(rand() * 4096);
        if (at < len) content[at] = 1 + Math.floor(rand() * 255);
      }
      const t = new TarBuilder();
      t.file("f", content);
      const tar = t.end();
      const e = parse(tar, 1 + Math.floor(rand() * 9000)).entries[0]!;
      expect({ round, runs: e.runs ? [...e.runs] : undefined }).toEqual({ round, runs: len === 0 ? undefined : expectedRuns(content) });
    }
  });
});
