// Property: any tree written by writeExt4Image reads back unchanged through the independent
// reader (src/ext4/read/), every metadata checksum verifies, and a sample passes e2fsck -fn.
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeExt4Image } from "../../src/ext4/index.ts";
import { Ext4Reader, verifyChecksums, verifyDirIndex } from "../../src/ext4/read/index.ts";
import type { FsNode, NodeKind, Timestamp } from "../../src/tree/types.ts";
import { testWith, toolPath } from "../helpers/env.ts";
import { run } from "../helpers/mkfs-fixtures.ts";

const work = mkdtempSync(join(tmpdir(), "banger-roundtrip-"));
afterAll(() => rmSync(work, { recursive: true, force: true }), 30_000);

// ---- arbitraries ----

const BS = 4096;
// ext4 time range: signed 32-bit seconds plus 2 epoch bits.
const timeArb: fc.Arbitrary<Timestamp> = fc.record({
  sec: fc.oneof(
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    fc.integer({ min: -(2 ** 31), max: 3 * 2 ** 32 + 2 ** 31 - 1 }),
    fc.constantFrom(-1, 0, 2 ** 31 - 1, 2 ** 31, 2 ** 32, -(2 ** 31)),
  ),
  nsec: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999_999_999 })),
});

// Names: byte strings (one char per byte), no "/" or NUL, never "." or "..".
const nameByte = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-_.ABC".split("")) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.constantFrom(" ", "\n", "\\", "\x01", "\x7f") },
);
const nameArb = fc.oneof(
  { weight: 10, arbitrary: fc.array(nameByte, { minLength: 1, maxLength: 16 }).map((a) => a.join("")) },
  { weight: 1, arbitrary: fc.array(nameByte, { minLength: 200, maxLength: 255 }).map((a) => a.join("")) },
).filter((n) => n !== "." && n !== ".." && n !== "lost+found");

const contentArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  {
    weight: 3,
    arbitrary: fc
      .array(
        fc.oneof(
          fc.constant(new Uint8Array(BS)), // an all-zero block: a hole
          fc.uint8Array({ minLength: 1, maxLength: 6000 }),
          fc.integer({ min: 1, max: 3 }).map((n) => new Uint8Array(n * BS).fill(0x5a)),
        ),
        { maxLength: 5 },
      )
      .map((parts) => Buffer.concat(parts)),
  },
  {
    // Data blocks separated by holes: more than 4 extents, so the tree needs depth >= 1.
    weight: 1,
    arbitrary: fc.integer({ min: 5, max: 40 }).map((n) => {
      const b = new Uint8Array(2 * n * BS + 17);
      for (let i = 0; i < n; i++) b.fill(i + 1, 2 * i * BS, 2 * i * BS + BS);
      return b;
    }),
  },
);

function vfsAcl(entries: Array<[number, number, number]>): Uint8Array {
  const out = new Uint8Array(4 + 8 * entries.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 2, true);
  entries.forEach(([tag, perm, id], i) => {
    dv.setUint16(4 + 8 * i, tag, true);
    dv.setUint16(6 + 8 * i, perm, true);
    dv.setUint32(8 + 8 * i, id, true);
  });
  return out;
}

// A valid POSIX ACL in VFS order: USER_OBJ, USERs, GROUP_OBJ, GROUPs, MASK, OTHER.
const aclArb = fc
  .record({
    perms: fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 4, maxLength: 4 }),
    users: fc.uniqueArray(fc.nat(), { maxLength: 3 }),
    groups: fc.uniqueArray(fc.nat(), { maxLength: 2 }),
  })
  .map(({ perms, users, groups }) => {
    const U = 0xffffffff;
    const e: Array<[number, number, number]> = [[0x01, perms[0]!, U]];
    for (const id of [...users].sort((a, b) => a - b)) e.push([0x02, 6, id]);
    e.push([0x04, perms[1]!, U]);
    for (const id of [...groups].sort((a, b) => a - b)) e.push([0x08, 4, id]);
    if (users.length || groups.length) e.push([0x10, perms[2]!, U]);
    e.push([0x20, perms[3]!, U]);
    return vfsAcl(e);
  });

const xattrsArb = (kind: NodeKind): fc.Arbitrary<Map<string, Uint8Array>> =>
  fc
    .record({
      user: fc.uniqueArray(fc.tuple(fc.array(nameByte, { minLength: 1, maxLength: 20 }).map((a) => "user." + a.join("")), fc.uint8Array({ maxLength: 120 })), {
        maxLength: 3,
        selector: (t) => t[0],
      }),
      big: fc.option(fc.uint8Array({ minLength: 500, maxLength: 1500 }), { freq: 6 }),
      cap: fc.option(fc.uint8Array({ minLength: 20, maxLength: 20 }), { freq: 6 }),
      trusted: fc.option(fc.uint8Array({ maxLength: 40 }), { freq: 8 }),
      acl: fc.option(aclArb, { freq: 4 }),
      defAcl: kind === "dir" ? fc.option(aclArb, { freq: 6 }) : fc.constant(null),
    })
    .map(({ user, big, cap, trusted, acl, defAcl }) => {
      const m = new Map<string, Uint8Array>(user);
      if (big) m.set("user.big-value", big);
      if (cap) m.set("security.capability", cap);
      if (trusted) m.set("trusted.t", trusted);
      if (acl) m.set("system.posix_acl_access", acl);
      if (defAcl) m.set("system.posix_acl_default", defAcl);
      return m;
    });

function metaArb(kind: NodeKind): fc.Arbitrary<Omit<FsNode, "kind">> {
  return fc.record({
    mode: fc.integer({ min: 0, max: 0o7777 }),
    uid: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
    gid: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
    atime: timeArb,
    mtime: timeArb,
    ctime: timeArb,
    xattrs: xattrsArb(kind),
    size: fc.constant(0),
  });
}

const targetByte = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(..."abc/./..xyz-_".split("")) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 0xff }).map((c) => String.fromCharCode(c)) },
);

const leafArb: fc.Arbitrary<FsNode> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(metaArb("file"), contentArb).map(([m, bytes]): FsNode => ({ ...m, kind: "file", size: bytes.length, bytes })) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(metaArb("symlink"), fc.oneof(fc.array(targetByte, { minLength: 1, maxLength: 59 }), fc.array(targetByte, { minLength: 60, maxLength: 400 })))
      .map(([m, t]): FsNode => ({ ...m, kind: "symlink", target: t.join("") })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(metaArb("chardev"), fc.constantFrom<NodeKind>("chardev", "blockdev"), fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 4095 })), fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xfffff })))
      .map(([m, kind, major, minor]): FsNode => ({ ...m, kind, major, minor })),
  },
  { weight: 1, arbitrary: fc.tuple(metaArb("fifo"), fc.constantFrom<NodeKind>("fifo", "socket")).map(([m, kind]): FsNode => ({ ...m, kind })) },
);

const dirArb = (depth: number): fc.Arbitrary<FsNode> => {
  const child = depth <= 0 ? leafArb : fc.oneof({ weight: 3, arbitrary: leafArb }, { weight: 1, arbitrary: dirArb(depth - 1) });
  return fc
    .tuple(metaArb("dir"), fc.uniqueArray(fc.tuple(nameArb, child), { maxLength: 6, selector: (t) => t[0] }))
    .map(([m, kids]): FsNode => ({ ...m, kind: "dir", children: new Map(kids) }));
};

/** A directory too big for one block (htree), with names of every byte value. */
const wideDirArb: fc.Arbitrary<FsNode> = fc
  .tuple(metaArb("dir"), fc.integer({ min: 100, max: 600 }), fc.array(nameByte, { minLength: 1, maxLength: 10 }))
  .map(([m, n, stem]): FsNode => {
    const children = new Map<string, FsNode>();
    const file: FsNode = { kind: "file", mode: 0o644, uid: 0, gid: 0, atime: m.atime, mtime: m.mtime, ctime: m.ctime, xattrs: new Map(), size: 0, bytes: new Uint8Array(0) };
    for (let i = 0; i < n; i++) children.set(`${stem.join("")}-${String.fromCharCode(0x80 + (i % 128))}-${i}-with-some-length`, i % 7 === 0 ? file : { ...file, xattrs: new Map() });
    return { ...m, kind: "dir", children };
  });

const treeArb: fc.Arbitrary<FsNode> = fc
  .tuple(
    dirArb(3),
    fc.option(wideDirArb, { freq: 5 }),
    fc.array(fc.tuple(fc.nat(), fc.nat(), nameArb), { maxLength: 4 }),
    fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 4 }),
  )
  .map(([root, wide, links, sameXattrs]) => {
    if (wide) root.children!.set("wide", wide);
    // Hardlinks: the same non-directory node under further names.
    const dirs: FsNode[] = [];
    const others: FsNode[] = [];
    const walk = (n: FsNode): void => {
      if (n.kind === "dir") {
        dirs.push(n);
        for (const c of n.children!.values()) walk(c);
      } else if (!others.includes(n)) others.push(n);
    };
    walk(root);
    for (const [a, b, name] of links) {
      if (!others.length) break;
      const dir = dirs[b % dirs.length]!;
      if (!dir.children!.has(name)) dir.children!.set(name, others[a % others.length]!);
    }
    // Equal xattr sets on different inodes (a shared, refcounted xattr block is allowed).
    const all = [...dirs, ...others];
    for (const [a, b] of sameXattrs) all[b % all.length]!.xattrs = new Map(all[a % all.length]!.xattrs);
    return root;
  });

// ---- comparison ----

interface Flat {
  path: string;
  link: string;
  kind: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  times: string;
  bytes?: string;
  target?: string;
  dev?: string;
  xattrs: string[];
}

/**
 * The mode the kernel shows beside an access ACL: owner bits from USER_OBJ, group bits from MASK
 * (GROUP_OBJ without a mask), other bits from OTHER; setuid/setgid/sticky kept.
 */
function modeAgreeingWith(mode: number, acl: Uint8Array): number {
  const dv = new DataView(acl.buffer, acl.byteOffset, acl.byteLength);
  const perm = new Map<number, number>();
  for (let o = 4; o < acl.length; o += 8) perm.set(dv.getUint16(o, true), dv.getUint16(o + 2, true));
  return (mode & 0o7000) | (perm.get(0x01)! << 6) | ((perm.get(0x10) ?? perm.get(0x04)!) << 3) | perm.get(0x20)!;
}

/** The tree flattened; `asWritten`: as the kernel would show the input (symlinks 0777, modes agreeing with access ACLs). */
function flatten(root: FsNode, asWritten = false): Flat[] {
  const out: Flat[] = [];
  const first = new Map<FsNode, string>();
  const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
  const t = (x: Timestamp): string => `${x.sec}.${x.nsec}`;
  const walk = (n: FsNode, path: string): void => {
    if (!first.has(n)) first.set(n, path);
    out.push({
      path: JSON.stringify(path),
      link: JSON.stringify(first.get(n)!),
      kind: n.kind,
      mode: !asWritten ? n.mode : n.kind === "symlink" ? 0o777 : n.xattrs.has("system.posix_acl_access") ? modeAgreeingWith(n.mode, n.xattrs.get("system.posix_acl_access")!) : n.mode,
      uid: n.uid,
      gid: n.gid,
      size: n.kind === "file" ? n.size : 0,
      times: `${t(n.atime)} ${t(n.mtime)} ${t(n.ctime)}`,
      ...(n.kind === "file" ? { bytes: n.bytes!.length > 64 ? new Bun.CryptoHasher("sha256").update(n.bytes!).digest("hex") : hex(n.bytes!) } : {}),
      ...(n.kind === "symlink" ? { target: JSON.stringify(n.target!) } : {}),
      ...(n.kind === "chardev" || n.kind === "blockdev" ? { dev: `${n.major}:${n.minor}` } : {}),
      xattrs: [...n.xattrs].map(([k, v]) => `${JSON.stringify(k)}=${hex(v)}`).sort(),
    });
    if (n.kind === "dir") for (const name of [...n.children!.keys()].sort()) walk(n.children!.get(name)!, `${path}/${name}`);
  };
  walk(root, "");
  return out;
}

let runNo = 0;
async function roundTrip(tree: FsNode, e2fsck: boolean, metadataCsum = true): Promise<void> {
  const out = join(work, `rt-${runNo++}.img`);
  try {
    await writeExt4Image(tree, [], { out, metadataCsum });
    const r = Ext4Reader.open(out);
    try {
      expect(verifyChecksums(r)).toEqual([]);
      expect(verifyDirIndex(r)).toEqual([]);
      expect(flatten(r.readTree())).toEqual(flatten(tree, true));
    } finally {
      r.close();
    }
    if (e2fsck) {
      run([toolPath("e2fsck"), "-fn", out]);
      // Same input, same options: a second build is byte-identical.
      const again = `${out}.again`;
      try {
        await writeExt4Image(tree, [], { out: again, metadataCsum });
        run(["cmp", out, again]);
      } finally {
        rmSync(again, { force: true });
      }
    }
  } finally {
    rmSync(out, { force: true });
  }
}

describe("writeExt4Image → Ext4Reader round trip", () => {
  testWith({ tools: ["e2fsck"] }, "arbitrary trees read back unchanged; checksums verify; every 10th passes e2fsck -fn and rebuilds byte-identically", async () => {
    let i = 0;
    await fc.assert(
      fc.asyncProperty(treeArb, fc.boolean(), async (tree, csumOff) => {
        // Also without metadata_csum (the old-kernel compatibility option).
        await roundTrip(tree, i++ % 10 === 0, !csumOff);
      }),
      { numRuns: Number(process.env.ROUNDTRIP_RUNS ?? 40), seed: process.env.ROUNDTRIP_SEED ? Number(process.env.ROUNDTRIP_SEED) : undefined, verbose: 1 },
    );
  }, 120_000);

  test("fixed corner cases", async () => {
    const t0: Timestamp = { sec: -(2 ** 31), nsec: 999_999_999 };
    const t1: Timestamp = { sec: 3 * 2 ** 32 + 2 ** 31 - 1, nsec: 1 };
    const file = (bytes: Uint8Array): FsNode => ({ kind: "file", mode: 0o644, uid: 0, gid: 0, atime: t0, mtime: t1, ctime: t0, xattrs: new Map(), size: bytes.length, bytes });
    const root: FsNode = {
      kind: "dir", mode: 0o755, uid: 0, gid: 0, atime: t1, mtime: t0, ctime: t1, xattrs: new Map(), size: 0,
      children: new Map<string, FsNode>([
        ["zeros", file(new Uint8Array(3 * BS))],
        ["empty", file(new Uint8Array(0))],
        ["\xff\x80name", file(Uint8Array.of(1, 2, 3))],
      ]),
    };
    await roundTrip(root, false);
  }, 30_000);

  testWith({ tools: ["e2fsck"] }, "htree with interior dx nodes (indirect levels >= 1)", async () => {
    const t: Timestamp = { sec: 1_700_000_000, nsec: 0 };
    const node = (kind: NodeKind): FsNode => ({ kind, mode: 0o644, uid: 0, gid: 0, atime: t, mtime: t, ctime: t, xattrs: new Map(), size: 0, ...(kind === "file" ? { bytes: new Uint8Array(0) } : {}) });
    const big = { ...node("dir"), mode: 0o755, children: new Map<string, FsNode>() };
    const shared = node("file");
    for (let i = 0; i < 12000; i++) big.children.set(`${String(i).padStart(6, "0")}-${"\xe9".repeat(i % 50)}${"n".repeat(180)}`, i % 3 === 0 ? shared : node("fifo"));
    const root = { ...node("dir"), mode: 0o755, children: new Map<string, FsNode>([["big", big]]) };
    const out = join(work, "wide-htree.img");
    await writeExt4Image(root, [], { out, metadataCsum: true });
    const r = Ext4Reader.open(out);
    try {
      const ino = r.lookup("/big");
      const [, block0] = r.dirBlocks(ino)[0]!;
      expect(block0[0x1e]).toBeGreaterThanOrEqual(1); // dx_root_info.indirect_levels
      expect(verifyChecksums(r)).toEqual([]);
      expect(verifyDirIndex(r)).toEqual([]);
      expect(flatten(r.readTree())).toEqual(flatten(root));
    } finally {
      r.close();
    }
    run([toolPath("e2fsck"), "-fn", out]);
    rmSync(out, { force: true });
  }, 60_000);
});
