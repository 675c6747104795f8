import { utf8ToName } from "../../src/tree/names.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ext4AclToVfs, vfsAclToExt4 } from "../../src/ext4/acl.ts";
import { crc32c } from "../../src/ext4/crc32c.ts";
import {
  planXattrs,
  readInodeXattrs,
  readXattrBlock,
  sealXattrBlock,
  xattrBlockHash,
  xattrEntryHash,
  type XattrEntry,
  type XattrPlan,
} from "../../src/ext4/xattrs.ts";
import { testWith, toolPath } from "../helpers/env.ts";

const INODE_SPACE = 96; // 256-byte inodes, i_extra_isize 32
const hex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const str = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));
const u32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(off, true);

const CAP_NET_RAW = "0100000200200000000000000000000000000000"; // `setcap cap_net_raw+ep`
const ACL_ACCESS_VFS =
  "0200000001000700ffffffff02000700e803000004000500ffffffff080005006400000010000700ffffffff20000500ffffffff";
const ACL_DEFAULT_VFS =
  "0200000001000700ffffffff02000500e803000004000500ffffffff10000500ffffffff20000500ffffffff";

/** All attributes of a plan by full name, ACLs converted back to the VFS form. */
function decodePlanLike(inInode: Uint8Array | null, block: Uint8Array | null): Map<string, string> {
  const entries: XattrEntry[] = [
    ...(inInode ? readInodeXattrs(inInode) : []),
    ...(block ? readXattrBlock(block) : []),
  ];
  const out = new Map<string, string>();
  for (const e of entries) {
    const v = e.nameIndex === 2 || e.nameIndex === 3 ? ext4AclToVfs(e.value) : e.value;
    expect(out.has(e.fullName)).toBe(false);
    out.set(e.fullName, toHex(v));
  }
  return out;
}

function hexMap(m: ReadonlyMap<string, Uint8Array>): Map<string, string> {
  return new Map([...m].map(([k, v]) => [k, toHex(v)]));
}

function sorted(m: Map<string, string>): Array<[string, string]> {
  return [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/** Structural invariants the kernel and e2fsck check. */
function checkLayout(area: Uint8Array, tableStart: number, offsBase: number): void {
  const dv = new DataView(area.buffer, area.byteOffset, area.byteLength);
  let pos = tableStart;
  const regions: Array<[number, number]> = [];
  while (dv.getUint32(pos, true) !== 0) {
    const nameLen = area[pos]!;
    const offs = dv.getUint16(pos + 2, true);
    const size = dv.getUint32(pos + 8, true);
    if (size > 0) {
      expect((offsBase + offs) % 4).toBe(0);
      regions.push([offsBase + offs, offsBase + offs + ((size + 3) & ~3)]);
    }
    pos += (16 + nameLen + 3) & ~3;
  }
  const tableEnd = pos + 4;
  regions.sort((a, b) => a[0] - b[0]);
  let prev = tableEnd;
  for (const [s, e] of regions) {
    expect(s).toBeGreaterThanOrEqual(prev); // no overlap with the table or another value
    expect(e).toBeLessThanOrEqual(area.length);
    prev = e;
  }
}

describe("planXattrs unit", () => {
  test("empty set", () => {
    expect(planXattrs(new Map(), INODE_SPACE)).toEqual({ inInode: null, block: null, blockKey: null });
  });

  test("one small attribute: exact in-inode bytes (as mke2fs writes them)", () => {
    const p = planXattrs(new Map([["user.x", str("hello")]]), INODE_SPACE);
    expect(p.block).toBeNull();
    expect(p.blockKey).toBeNull();
    const expected = new Uint8Array(INODE_SPACE);
    expected.set(hex("000002ea" + "01015400" + "00000000" + "05000000" + "00000000" + "78000000"), 0);
    expected.set(str("hello"), 88);
    expect(toHex(p.inInode!)).toBe(toHex(expected));
  });

  test("entry hashes: known values from a mke2fs block", () => {
    expect(xattrEntryHash(str("big"), new Uint8Array(300).fill(0x61))).toBe(0xe4266160);
    expect(xattrEntryHash(str("capability"), hex(CAP_NET_RAW))).toBe(0x8a6182aa);
    expect(xattrEntryHash(new Uint8Array(0), new Uint8Array(0))).toBe(0);
    // high-bit name bytes are hashed unsigned
    expect(xattrEntryHash(new Uint8Array([0xff]), new Uint8Array(0))).toBe(0xff);
  });

  test("block hash rotates entry hashes and is 0 if any entry hash is 0", () => {
    expect(xattrBlockHash([1])).toBe(1);
    expect(xattrBlockHash([1, 2])).toBe((1 << 16) ^ 2);
    expect(xattrBlockHash([0x12345678, 1])).toBe(((0x56780000 | 0x1234) ^ 1) >>> 0);
    expect(xattrBlockHash([5, 0, 7])).toBe(0);
  });

  test("security.capability and security.selinux go into the inode before anything else", () => {
    const m = new Map<string, Uint8Array>([
      ["user.a", new Uint8Array(20)],
      ["trusted.b", new Uint8Array(20)],
      ["security.selinux", str("u:object_r:x:s0")], // 24 + 16 bytes: with the capability exactly 88
      ["security.capability", hex(CAP_NET_RAW)],
    ]);
    const p = planXattrs(m, INODE_SPACE);
    expect(readInodeXattrs(p.inInode!).map((e) => e.fullName)).toEqual(["security.capability", "security.selinux"]);
    expect(readXattrBlock(p.block!).map((e) => e.fullName)).toEqual(["user.a", "trusted.b"]);
  });

  test("block entries sorted by (index, name length, name); values packed from the end in entry order", () => {
    const m = new Map<string, Uint8Array>([
      ["user.zz", new Uint8Array(100).fill(1)],
      ["trusted.a", new Uint8Array(101).fill(2)],
      ["user.b", new Uint8Array(102).fill(3)],
      ["user.a", new Uint8Array(103).fill(4)],
      ["security.x", new Uint8Array(0)],
      ["system.posix_acl_default", hex(ACL_DEFAULT_VFS)],
    ]);
    const p = planXattrs(m, 0);
    expect(p.inInode).toBeNull();
    const b = p.block!;
    expect(u32(b, 0)).toBe(0xea020000);
    expect(u32(b, 4)).toBe(1);
    expect(u32(b, 8)).toBe(1);
    expect(u32(b, 16)).toBe(0);
    const entries = readXattrBlock(b);
    expect(entries.map((e) => e.fullName)).toEqual([
      "user.a",
      "user.b",
      "user.zz",
      "system.posix_acl_default",
      "trusted.a",
      "security.x",
    ]);
    // values: first entry's value ends at 4096
    const dv = new DataView(b.buffer);
    const offs = (i: number) => {
      let pos = 32;
      for (let k = 0; k < i; k++) pos += (16 + b[pos]! + 3) & ~3;
      return { offs: dv.getUint16(pos + 2, true), size: dv.getUint32(pos + 8, true), hash: dv.getUint32(pos + 12, true) };
    };
    expect(offs(0)).toMatchObject({ offs: 4096 - 104, size: 103 });
    expect(offs(1)).toMatchObject({ offs: 4096 - 104 - 104, size: 102 });
    // empty value: no space, offset = end of the values so far (as mke2fs writes it)
    expect(offs(5)).toMatchObject({ offs: offs(4).offs, size: 0 });
    const hashes = entries.map((_, i) => offs(i).hash);
    entries.forEach((e, i) => expect(hashes[i]).toBe(xattrEntryHash(e.name, e.value)));
    expect(u32(b, 12)).toBe(xattrBlockHash(hashes));
    // the ACL is stored in ext4 format
    expect(toHex(entries[3]!.value)).toBe(toHex(vfsAclToExt4(hex(ACL_DEFAULT_VFS))));
    checkLayout(b, 32, 0);
  });

  test("first fit: a value too big for the inode does not stop smaller ones", () => {
    const m = new Map<string, Uint8Array>([
      ["user.a", new Uint8Array(200)],
      ["user.b", new Uint8Array(8)],
    ]);
    const p = planXattrs(m, INODE_SPACE);
    expect(readInodeXattrs(p.inInode!).map((e) => e.fullName)).toEqual(["user.b"]);
    expect(readXattrBlock(p.block!).map((e) => e.fullName)).toEqual(["user.a"]);
  });

  test("the in-inode area is filled exactly to its end", () => {
    // 96 - 4 magic - 4 end marker = 88 = entry (16 + 4 name) + 68 value
    const p = planXattrs(new Map([["user.abcd", new Uint8Array(68).fill(9)]]), INODE_SPACE);
    expect(p.block).toBeNull();
    checkLayout(p.inInode!, 4, 4);
    const q = planXattrs(new Map([["user.abcd", new Uint8Array(69)]]), INODE_SPACE);
    expect(q.inInode).toBeNull();
    expect(q.block).not.toBeNull();
  });

  test("name indexes and stripped names", () => {
    const m = new Map<string, Uint8Array>([
      ["user.u", str("1")],
      ["system.posix_acl_access", hex(ACL_ACCESS_VFS)],
      ["system.posix_acl_default", hex(ACL_DEFAULT_VFS)],
      ["trusted.t", str("4")],
      ["security.s", str("6")],
      ["system.data", str("7")],
      ["system.richacl", str("8")],
    ]);
    const p = planXattrs(m, 0);
    const got = readXattrBlock(p.block!).map((e) => [e.nameIndex, Buffer.from(e.name).toString()]);
    expect(got).toEqual([
      [1, "u"],
      [2, ""],
      [3, ""],
      [4, "t"],
      [6, "s"],
      [7, "data"],
      [8, ""],
    ]);
  });

  test("equal sets give equal blocks and keys; different sets different keys", () => {
    const big = new Uint8Array(500).fill(7);
    const a = planXattrs(new Map([["user.big", big], ["user.s", str("x")]]), INODE_SPACE);
    const b = planXattrs(new Map([["user.s", str("x")], ["user.big", big.slice()]]), INODE_SPACE);
    const c = planXattrs(new Map([["user.big", big], ["user.s", str("y")]]), INODE_SPACE);
    expect(a.blockKey).not.toBeNull();
    expect(a.blockKey).toBe(b.blockKey);
    expect(toHex(a.block!)).toBe(toHex(b.block!));
    expect(toHex(a.inInode!)).toBe(toHex(b.inInode!));
    // "user.s" lives in the inode, so the block (and its key) is the same for c
    expect(c.blockKey).toBe(a.blockKey);
    const d = planXattrs(new Map([["user.big", new Uint8Array(500).fill(8)]]), INODE_SPACE);
    expect(d.blockKey).not.toBe(a.blockKey);
  });

  test("property: decodes back to the input; layout valid; independent of insertion order", () => {
    const name = fc.tuple(
      fc.constantFrom("user.", "trusted.", "security.", "system."),
      fc.stringMatching(/^[a-z0-9_.]{1,30}$/),
    );
    const attrs = fc.uniqueArray(fc.tuple(name, fc.uint8Array({ maxLength: 300 })), {
      maxLength: 12,
      selector: ([[p, n]]) => p + n,
    });
    fc.assert(
      fc.property(attrs, fc.constantFrom(0, 32, 96, 160), (list, space) => {
        const m = new Map(list.map(([[p, n], v]) => [p + n, v] as [string, Uint8Array]));
        let p: XattrPlan;
        try {
          p = planXattrs(m, space);
        } catch (e) {
          expect((e as Error).message).toMatch(/does not fit/);
          return;
        }
        expect(sorted(decodePlanLike(p.inInode, p.block))).toEqual(sorted(hexMap(m)));
        if (p.inInode) {
          expect(p.inInode.length).toBe(space);
          checkLayout(p.inInode, 4, 4);
        }
        if (p.block) checkLayout(p.block, 32, 0);
        const rev = planXattrs(new Map([...m].reverse()), space);
        expect(rev.inInode && toHex(rev.inInode)).toBe(p.inInode && toHex(p.inInode));
        expect(rev.blockKey).toBe(p.blockKey);
      }),
      { numRuns: 200 },
    );
  });
});

describe("planXattrs errors", () => {
  test("too large a set names the attribute", () => {
    const m = new Map<string, Uint8Array>([
      ["user.one", new Uint8Array(2000)],
      ["user.two", new Uint8Array(2000)],
      ["user.three", new Uint8Array(100)],
    ]);
    expect(() => planXattrs(m, INODE_SPACE)).toThrow(
      /"user\.three" \(100-byte value\) does not fit: .*block has 20 bytes left, the entry needs 124/,
    );
    expect(() => planXattrs(new Map([["user.huge", new Uint8Array(5000)]]), INODE_SPACE)).toThrow(/user\.huge/);
  });
  test("a set that fits exactly in inode + block is accepted", () => {
    // block: 4096 - 32 header - 4 end marker = 4060 = 20 (entry "user.a") + 4040
    const p = planXattrs(new Map([["user.a", new Uint8Array(4040)]]), 0);
    checkLayout(p.block!, 32, 0);
    expect(() => planXattrs(new Map([["user.a", new Uint8Array(4041)]]), 0)).toThrow(/user\.a/);
  });
  test("name longer than 255 bytes", () => {
    expect(() => planXattrs(new Map([["user." + "n".repeat(256), str("v")]]), INODE_SPACE)).toThrow(
      /256 bytes .* max 255/,
    );
    expect(planXattrs(new Map([["user." + "n".repeat(255), str("v")]]), INODE_SPACE).block).not.toBeNull();
  });
  test("unknown namespace and empty names", () => {
    expect(() => planXattrs(new Map([["gnu.x", str("v")]]), INODE_SPACE)).toThrow(/"gnu\.x": unknown namespace/);
    expect(() => planXattrs(new Map([["foo", str("v")]]), INODE_SPACE)).toThrow(/unknown namespace/);
    expect(() => planXattrs(new Map([["user.", str("v")]]), INODE_SPACE)).toThrow(/empty name/);
  });
  test("bad ACL value names the attribute", () => {
    expect(() => planXattrs(new Map([["system.posix_acl_access", hex("01000000")]]), INODE_SPACE)).toThrow(
      /system\.posix_acl_access.*version 1, expected 2/,
    );
    expect(() =>
      planXattrs(new Map([["system.posix_acl_default", hex("0200000001000700ffff")]]), INODE_SPACE),
    ).toThrow(/system\.posix_acl_default.*bad length/);
  });
});

describe("sealXattrBlock", () => {
  test("sets refcount and checksum; checksum covers block number and content", () => {
    const p = planXattrs(new Map([["user.big", new Uint8Array(300).fill(1)]]), INODE_SPACE);
    const b = p.block!.slice();
    sealXattrBlock(b, 1234, 3, null);
    expect(u32(b, 4)).toBe(3);
    expect(u32(b, 16)).toBe(0);
    const seed = crc32c(0xffffffff, new Uint8Array(16).fill(0xab));
    sealXattrBlock(b, 1234, 3, seed);
    const c1 = u32(b, 16);
    // recompute by hand: crc32c(seed, le64 1234, block with checksum zero)
    const z = b.slice();
    new DataView(z.buffer).setUint32(16, 0, true);
    const le64 = new Uint8Array(8);
    new DataView(le64.buffer).setUint32(0, 1234, true);
    expect(c1).toBe(crc32c(crc32c(seed, le64), z));
    sealXattrBlock(b, 1234, 3, seed); // idempotent
    expect(u32(b, 16)).toBe(c1);
    sealXattrBlock(b, 1235, 3, seed);
    expect(u32(b, 16)).not.toBe(c1);
    // 64-bit block numbers
    sealXattrBlock(b, 2 ** 32 + 5, 1, seed);
    new DataView(le64.buffer).setUint32(0, 5, true);
    new DataView(le64.buffer).setUint32(4, 1, true);
    const z2 = b.slice();
    new DataView(z2.buffer).setUint32(16, 0, true);
    expect(u32(b, 16)).toBe(crc32c(crc32c(seed, le64), z2));
  });
  test("rejects bad refcounts and non-xattr blocks", () => {
    const b = planXattrs(new Map([["user.big", new Uint8Array(300)]]), INODE_SPACE).block!;
    expect(() => sealXattrBlock(b, 10, 0, null)).toThrow(/refcount 0/);
    expect(() => sealXattrBlock(b, 10, 1025, null)).toThrow(/refcount 1025/);
    expect(() => sealXattrBlock(new Uint8Array(4096), 10, 1, null)).toThrow(/magic/);
  });
});

// ---------------------------------------------------------------------------------------------
// Golden comparison with mke2fs -d (e2fsprogs) and the kernel.

const TOOLS = ["mkfs.ext4", "debugfs", "e2fsck", "setfattr", "getfattr", "setfacl"];

function run(cmd: string[], okCodes = [0]): string {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (!okCodes.includes(r.exitCode)) {
    throw new Error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}${r.stdout.toString()}`);
  }
  return r.stdout.toString();
}

/** getfattr -d -m - -e hex of one path, as name -> value. */
function getfattr(path: string): Map<string, Uint8Array> {
  const out = run(["getfattr", "--absolute-names", "-d", "-m", "-", "-e", "hex", path]);
  const m = new Map<string, Uint8Array>();
  for (const line of out.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    // Names become byte strings (one char per byte), the tree's convention for xattr names.
    if (eq < 0) m.set(utf8ToName(line), new Uint8Array(0));
    else m.set(utf8ToName(line.slice(0, eq)), hex(line.slice(eq + 1).replace(/^0x/, "")));
  }
  return m;
}

interface ImageXattrs {
  inodeOffset: number; // byte offset of the inode in the image
  inInode: Uint8Array; // the 96-byte area
  blockNr: number;
  block: Uint8Array | null;
}

function imageXattrs(img: string, bytes: Uint8Array, path: string): ImageXattrs {
  const debugfs = toolPath("debugfs");
  const imap = run([debugfs, "-R", `imap ${path}`, img]);
  const loc = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(imap);
  if (!loc) throw new Error(`debugfs imap ${path}: ${imap}`);
  const inodeOffset = Number(loc[1]) * 4096 + parseInt(loc[2]!, 16);
  const inode = bytes.subarray(inodeOffset, inodeOffset + 256);
  expect(new DataView(inode.buffer, inode.byteOffset).getUint16(128, true)).toBe(32); // i_extra_isize
  const stat = run([debugfs, "-R", `stat ${path}`, img]);
  const acl = /File ACL: (\d+)/.exec(stat);
  const blockNr = acl ? Number(acl[1]) : 0;
  return {
    inodeOffset,
    inInode: inode.slice(160, 256),
    blockNr,
    block: blockNr ? bytes.slice(blockNr * 4096, blockNr * 4096 + 4096) : null,
  };
}

/** In-table names of an area, in order. */
const namesOf = (entries: XattrEntry[]) => entries.map((e) => e.fullName);

describe("golden: mke2fs -d", () => {
  let work = "";
  let src = "";
  const files: Record<string, (p: string) => void> = {};
  const setf = (p: string, n: string, v: string) => run(["setfattr", "-n", n, "-v", v, p]);

  // name -> setup of the file (all regular files except "acldir")
  files.small = (p) => setf(p, "user.x", "hello");
  files.big1 = (p) => setf(p, "user.big", "0x" + "61".repeat(300));
  files.cap = (p) => {
    setf(p, "security.capability", "0x" + CAP_NET_RAW);
    setf(p, "user.aaaaaaaa", "0x" + "11".repeat(40));
    setf(p, "user.big", "0x" + "62".repeat(300));
    setf(p, "trusted.t", "0x0102");
  };
  files.empty = (p) => {
    run(["setfattr", "-n", "user.empty", p]);
    setf(p, "trusted.t", "0x0102");
  };
  files.emptyblk = (p) => {
    setf(p, "user.fill", "0x" + "33".repeat(80));
    run(["setfattr", "-n", "user.e", p]);
    setf(p, "trusted.zzzzzzzz", "0x" + "44".repeat(30));
  };
  files.many = (p) => {
    setf(p, "security.selinux", "system_u:object_r:bin_t:s0");
    for (const n of ["user.c", "user.bb", "user.a", "trusted.q", "trusted.pp", "user.longer_name_here"]) {
      setf(p, n, "0x" + Buffer.from(n.repeat(7)).toString("hex"));
    }
  };
  files.full = (p) => {
    setf(p, "user.v1", "0x" + "aa".repeat(1900));
    setf(p, "user.v2", "0x" + "bb".repeat(1900));
  };
  files.utf8 = (p) => {
    // non-ASCII name bytes: mke2fs 1.47 and the kernel (>= 6.2) hash them unsigned
    setf(p, "user.\u00e9\u00e9", "0x" + Buffer.from(Array.from({ length: 200 }, (_, i) => i)).toString("hex"));
  };
  files.aclfile = (p) => {
    const named = Array.from({ length: 12 }, (_, i) => `u:${2000 + i}:r,g:${3000 + i}:rw`).join(",");
    run(["setfacl", "-m", named, p]);
    setf(p, "user.x", "y");
  };
  files.acldir = (p) => {
    run(["setfacl", "-m", "u:1000:rwx,g:100:rx", p]);
    run(["setfacl", "-d", "-m", "u:1000:rx", p]);
  };

  const source = new Map<string, Map<string, Uint8Array>>();
  let imgCsum = "";
  let imgNoCsum = "";

  beforeAll(() => {
    if (!TOOLS.every((t) => Bun.which(t, { PATH: `${process.env.PATH}:/usr/sbin:/sbin` }))) return;
    if (process.getuid?.() !== 0) return;
    work = mkdtempSync(join(tmpdir(), "banger-xattrs-"));
    src = join(work, "src");
    mkdirSync(src);
    for (const [name, setup] of Object.entries(files)) {
      const p = join(src, name);
      if (name === "acldir") mkdirSync(p);
      else writeFileSync(p, name);
      setup(p);
      source.set(name, getfattr(p));
    }
    imgCsum = join(work, "csum.img");
    imgNoCsum = join(work, "nocsum.img");
    const mkfs = toolPath("mkfs.ext4");
    run([mkfs, "-q", "-F", "-b", "4096", "-I", "256", "-O", "metadata_csum", "-d", src, imgCsum, "64M"]);
    run([mkfs, "-q", "-F", "-b", "4096", "-I", "256", "-O", "^metadata_csum", "-d", src, imgNoCsum, "64M"]);
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  testWith({ tools: TOOLS, root: true }, "source xattrs were set as intended", () => {
    expect(toHex(source.get("acldir")!.get("system.posix_acl_access")!)).toBe(ACL_ACCESS_VFS);
    expect(toHex(source.get("acldir")!.get("system.posix_acl_default")!)).toBe(ACL_DEFAULT_VFS);
    expect(source.get("empty")!.get("user.empty")!.length).toBe(0);
    expect(toHex(source.get("cap")!.get("security.capability")!)).toBe(CAP_NET_RAW);
  });

  testWith({ tools: TOOLS, root: true }, "same content as mke2fs; bytes equal where placement agrees", () => {
    const bytes = new Uint8Array(readFileSync(imgCsum));
    const byteEqual = { inode: [] as string[], block: [] as string[] };
    for (const [name, attrs] of source) {
      const theirs = imageXattrs(imgCsum, bytes, "/" + name);
      const ours = planXattrs(attrs, INODE_SPACE);
      const want = sorted(hexMap(attrs));
      expect(sorted(decodePlanLike(theirs.inInode, theirs.block))).toEqual(want);
      expect(sorted(decodePlanLike(ours.inInode, ours.block))).toEqual(want);

      // mke2fs's entry hashes agree with ours (in-inode: 0 or the real hash).
      const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
      const tIn = readInodeXattrs(theirs.inInode);
      let pos = 4;
      for (const e of tIn) {
        const h = dv(theirs.inInode).getUint32(pos + 12, true);
        expect(h === 0 || h === xattrEntryHash(e.name, e.value)).toBe(true);
        pos += (16 + e.name.length + 3) & ~3;
      }
      const tBlk = theirs.block ? readXattrBlock(theirs.block) : [];
      pos = 32;
      for (const e of tBlk) {
        expect(dv(theirs.block!).getUint32(pos + 12, true)).toBe(xattrEntryHash(e.name, e.value));
        pos += (16 + e.name.length + 3) & ~3;
      }

      const oIn = ours.inInode ? readInodeXattrs(ours.inInode) : [];
      if (JSON.stringify(namesOf(oIn)) === JSON.stringify(namesOf(tIn)) && oIn.length) {
        expect(toHex(ours.inInode!)).toBe(toHex(theirs.inInode));
        byteEqual.inode.push(name);
      }
      const oBlk = ours.block ? readXattrBlock(ours.block) : [];
      if (JSON.stringify(namesOf(oBlk)) === JSON.stringify(namesOf(tBlk)) && oBlk.length) {
        // mke2fs 1.47 leaves h_hash 0 and sets the checksum; everything else must match.
        const t = theirs.block!.slice();
        const o = ours.block!.slice();
        t.fill(0, 12, 20);
        o.fill(0, 12, 20);
        expect(toHex(o)).toBe(toHex(t));
        byteEqual.block.push(name);
      }
    }
    // Placements that must agree with mke2fs (its rule: insertion order, first fit, block sorted).
    expect(byteEqual.inode).toEqual(expect.arrayContaining(["small", "empty", "acldir"]));
    expect(byteEqual.block).toEqual(expect.arrayContaining(["big1", "full", "acldir", "aclfile", "utf8"]));
  });

  testWith({ tools: TOOLS, root: true }, "sealXattrBlock reproduces mke2fs's metadata_csum checksums", () => {
    const bytes = new Uint8Array(readFileSync(imgCsum));
    const sb = bytes.subarray(1024, 2048);
    const incompat = u32(sb, 0x60);
    expect(incompat & 0x2000).toBe(0); // no csum_seed feature: seed derives from the UUID
    const seed = crc32c(0xffffffff, sb.subarray(0x68, 0x78));
    let checked = 0;
    for (const name of source.keys()) {
      const t = imageXattrs(imgCsum, bytes, "/" + name);
      if (!t.block) continue;
      const mine = t.block.slice();
      mine.fill(0xee, 16, 20);
      sealXattrBlock(mine, t.blockNr, u32(t.block, 4), seed);
      expect(toHex(mine)).toBe(toHex(t.block));
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(5);
  });

  testWith(
    { tools: [...TOOLS, "mount", "umount"], root: true },
    "our areas written over mke2fs's: e2fsck -fn clean, kernel reads the same xattrs",
    () => {
      const bytes = new Uint8Array(readFileSync(imgNoCsum));
      const fd = openSync(imgNoCsum, "r+");
      let replaced = 0;
      try {
        for (const [name, attrs] of source) {
          const t = imageXattrs(imgNoCsum, bytes, "/" + name);
          const ours = planXattrs(attrs, INODE_SPACE);
          if ((ours.block === null) !== (t.block === null)) continue; // would need (de)allocation
          writeSync(fd, ours.inInode ?? new Uint8Array(INODE_SPACE), 0, INODE_SPACE, t.inodeOffset + 160);
          if (ours.block) {
            const b = ours.block.slice();
            sealXattrBlock(b, t.blockNr, 1, null);
            writeSync(fd, b, 0, 4096, t.blockNr * 4096);
          }
          replaced++;
        }
      } finally {
        closeSync(fd);
      }
      expect(replaced).toBeGreaterThanOrEqual(9);
      const fsck = Bun.spawnSync([toolPath("e2fsck"), "-fn", imgNoCsum], { stdout: "pipe", stderr: "pipe" });
      expect(fsck.stdout.toString()).not.toMatch(/\? no/); // -n answers "no" to every problem
      expect(fsck.exitCode).toBe(0);

      const mnt = join(work, "mnt");
      mkdirSync(mnt, { recursive: true });
      run(["mount", "-o", "loop,ro", "-t", "ext4", imgNoCsum, mnt]);
      try {
        for (const [name, attrs] of source) {
          expect([name, sorted(hexMap(getfattr(join(mnt, name))))]).toEqual([name, sorted(hexMap(attrs))]);
        }
      } finally {
        run(["umount", mnt]);
      }
    },
    30_000,
  );
});
