// PAX extended headers, per member ('x') and global ('g'), against a model: global records apply
// to every later member, a member's own records win (an empty value unsets, falling back to the
// header field), and global headers are bounded in keys and bytes however many there are.
import { expect, test } from "bun:test";
import fc from "fast-check";
import { TarError, TarParser, type TarEntry } from "../../src/tar/index.ts";
import { concat, endMarker, member, paxMember } from "../helpers/tarwriter.ts";

function parse(tar: Uint8Array, options: ConstructorParameters<typeof TarParser>[1] = {}): TarEntry[] {
  const entries: TarEntry[] = [];
  const p = new TarParser((e) => entries.push(e), options);
  p.push(tar);
  p.end();
  return entries;
}

// Keys the model tracks: numeric ids, the mtime, and two xattrs (one that is a binary xattr record).
const KEYS = ["uid", "gid", "mtime", "SCHILY.xattr.user.a", "SCHILY.xattr.user.b"] as const;
type Key = (typeof KEYS)[number];
const value = (key: Key) => (key.startsWith("SCHILY") ? fc.constantFrom("", "v1", "v2\nwith newline") : fc.constantFrom("", "0", "7", "123456"));
const records = fc.array(fc.constantFrom(...KEYS).chain((k) => value(k).map((v) => [k, v] as [Key, string])), { maxLength: 4 });
const step = fc.oneof(
  records.map((r) => ({ kind: "global" as const, records: r })),
  fc.record({ kind: fc.constant("member" as const), records: fc.option(records, { nil: undefined }), uid: fc.nat({ max: 99 }), mtime: fc.nat({ max: 99 }) }),
);

test("property: global PAX records apply to all later members; member records win; empty values unset", () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 12 }), (steps) => {
      const parts: Uint8Array[] = [];
      const expected: Array<{ uid: number; gid: number; mtime: number; xattrs: Record<string, string> }> = [];
      const global = new Map<string, string>();
      let n = 0;
      for (const s of steps) {
        if (s.kind === "global") {
          parts.push(paxMember(s.records, "g"));
          for (const [k, v] of s.records) {
            if (v === "") global.delete(k);
            else global.set(k, v);
          }
          continue;
        }
        const own = new Map<string, string>(s.records ?? []);
        if (s.records) parts.push(paxMember(s.records));
        parts.push(member({ name: `f${n++}`, uid: s.uid, gid: 5, mtime: s.mtime }));
        // The model: a member's own record (even empty) decides; else the global one; else the header.
        const lookup = (k: Key): string | undefined => (own.has(k) ? own.get(k) : global.get(k));
        const num = (k: Key, header: number): number => {
          const v = lookup(k);
          return v === undefined || v === "" ? header : Number(v);
        };
        const xattrs: Record<string, string> = {};
        for (const k of ["SCHILY.xattr.user.a", "SCHILY.xattr.user.b"] as const) {
          const v = lookup(k);
          if (v !== undefined) xattrs[k.slice("SCHILY.xattr.".length)] = v; // an empty xattr record is an empty xattr
        }
        expected.push({ uid: num("uid", s.uid), gid: num("gid", 5), mtime: num("mtime", s.mtime), xattrs });
      }
      const entries = parse(concat([...parts, endMarker()]));
      expect(
        entries.map((e) => ({ uid: e.uid, gid: e.gid, mtime: e.mtime.sec, xattrs: Object.fromEntries([...e.xattrs].map(([k, v]) => [k, Buffer.from(v).toString()])) })),
      ).toEqual(expected);
    }),
    { numRuns: 1000 },
  );
});

test("counter-example kept: an empty member record unsets a global value for that member only", () => {
  const tar = concat([paxMember({ uid: "42" }, "g"), paxMember({ uid: "" }), member({ name: "a", uid: 3 }), member({ name: "b", uid: 3 }), endMarker()]);
  expect(parse(tar).map((e) => e.uid)).toEqual([3, 42]);
});

test("one global header of 1,000,000 keys (13 MB) is refused in well under a second", () => {
  // Records "<len> k<i>=v\n" written as one string (paxMember's per-record arrays are slow at this size).
  const lines: string[] = [];
  for (let i = 0; i < 1_000_000; i++) {
    const body = ` k${i}=v\n`;
    const len = body.length + String(body.length + 2).length;
    lines.push(`${len}${body}`);
  }
  const payload = Buffer.from(lines.join(""), "latin1");
  const tar = concat([member({ name: "pax_global_header", typeflag: "g" }, payload), member({ name: "f" }), endMarker()]);
  expect(tar.length).toBeGreaterThan(12_000_000);
  const t0 = performance.now();
  expect(() => parse(tar)).toThrow(TarError);
  expect(() => parse(tar)).toThrow(/more than 1000 records/);
  expect(performance.now() - t0).toBeLessThan(3000);
});

test("global headers are bounded in total: keys over many headers, and bytes", () => {
  const many: Uint8Array[] = [];
  for (let i = 0; i < 11; i++) many.push(paxMember(Array.from({ length: 100 }, (_, j): [string, string] => [`k${i}-${j}`, "v"]), "g"));
  expect(() => parse(concat([...many, member({ name: "f" }), endMarker()]))).toThrow(/global PAX headers set 1100 keys, over the limit of 1000/);
  // Replacing and deleting keys does not count twice.
  const same = Array.from({ length: 50 }, () => paxMember(Array.from({ length: 100 }, (_, j): [string, string] => [`k${j}`, "v"]), "g"));
  expect(parse(concat([...same, paxMember({ k0: "" }, "g"), member({ name: "f" }), endMarker()]))).toHaveLength(1);
  const big = paxMember({ comment: "c".repeat(600_000) }, "g");
  expect(() => parse(concat([big, big, paxMember({ other: "c".repeat(600_000) }, "g"), member({ name: "f" }), endMarker()]))).toThrow(/over the 1048576-byte limit/);
  expect(() => parse(concat([big, member({ name: "f" }), endMarker()]), { maxGlobalPaxBytes: 1000 })).toThrow(TarError);
});

test("members with their own records do not pay for the global records: 20,000 members after a 1,000-key global header", () => {
  const parts: Uint8Array[] = [paxMember(Array.from({ length: 1000 }, (_, j): [string, string] => [`k${j}`, "v"]), "g")];
  for (let i = 0; i < 20_000; i++) parts.push(paxMember({ uid: String(i) }), member({ name: `f${i}` }));
  const tar = concat([...parts, endMarker()]);
  const t0 = performance.now();
  const entries = parse(tar);
  expect(entries).toHaveLength(20_000);
  expect(entries[19_999]!.uid).toBe(19_999);
  // Copying the 1,000 global records into each member's map took ~2.5 s here.
  expect(performance.now() - t0).toBeLessThan(1500);
});

test("consecutive per-member headers are bounded together", () => {
  const x = paxMember({ comment: "c".repeat(3000) });
  expect(() => parse(concat([x, x, x, member({ name: "f" }), endMarker()]), { maxExtensionSize: 8000 })).toThrow(/consecutive PAX extended headers total/);
});
