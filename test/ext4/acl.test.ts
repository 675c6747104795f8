import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ext4AclToVfs, vfsAclToExt4 } from "../../src/ext4/acl.ts";
import {
  ACL_GROUP,
  ACL_GROUP_OBJ,
  ACL_MASK,
  ACL_OTHER,
  ACL_UNDEFINED_ID,
  ACL_USER,
  ACL_USER_OBJ,
} from "../../src/tree/posix-acl.ts";

const hex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// Vectors taken from a real system: `setfacl -m u:1000:rwx,g:100:rx d; setfacl -d -m u:1000:rx d`,
// read with `getfattr -e hex` (VFS form) and `debugfs stat` on a mke2fs -d image (ext4 form).
const ACCESS_VFS =
  "0200000001000700ffffffff02000700e803000004000500ffffffff080005006400000010000700ffffffff20000500ffffffff";
const ACCESS_EXT4 = "010000000100070002000700e80300000400050008000500640000001000070020000500";
const DEFAULT_VFS =
  "0200000001000700ffffffff02000500e803000004000500ffffffff10000500ffffffff20000500ffffffff";
const DEFAULT_EXT4 = "010000000100070002000500e8030000040005001000050020000500";

describe("vfsAclToExt4 / ext4AclToVfs known vectors", () => {
  test("access ACL with named user and group", () => {
    expect(toHex(vfsAclToExt4(hex(ACCESS_VFS)))).toBe(ACCESS_EXT4);
    expect(toHex(ext4AclToVfs(hex(ACCESS_EXT4)))).toBe(ACCESS_VFS);
  });
  test("default ACL", () => {
    expect(toHex(vfsAclToExt4(hex(DEFAULT_VFS)))).toBe(DEFAULT_EXT4);
    expect(toHex(ext4AclToVfs(hex(DEFAULT_EXT4)))).toBe(DEFAULT_VFS);
  });
  test("minimal ACL: short entries only", () => {
    // user::rw- group::r-- other::r--
    const vfs = "02000000" + "01000600ffffffff" + "04000400ffffffff" + "20000400ffffffff";
    const ext4 = "01000000" + "01000600" + "04000400" + "20000400";
    expect(toHex(vfsAclToExt4(hex(vfs)))).toBe(ext4);
    expect(toHex(ext4AclToVfs(hex(ext4)))).toBe(vfs);
  });
  test("ids of short entries are dropped (any value)", () => {
    const vfs = "02000000" + "0100060000000000" + "2000040012345678";
    expect(toHex(vfsAclToExt4(hex(vfs)))).toBe("01000000" + "01000600" + "20000400");
  });
  test("input view with a byte offset is read correctly", () => {
    const buf = new Uint8Array(3 + hex(DEFAULT_VFS).length);
    buf.set(hex(DEFAULT_VFS), 3);
    expect(toHex(vfsAclToExt4(buf.subarray(3)))).toBe(DEFAULT_EXT4);
  });
});

describe("round trips", () => {
  const TAGS = [ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER];
  const entry = fc.record({
    tag: fc.constantFrom(...TAGS),
    perm: fc.integer({ min: 0, max: 0xffff }),
    id: fc.integer({ min: 0, max: 0xffffffff }),
  });
  function vfs(entries: Array<{ tag: number; perm: number; id: number }>, canonical: boolean): Uint8Array {
    const out = new Uint8Array(4 + 8 * entries.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, 2, true);
    entries.forEach((e, i) => {
      dv.setUint16(4 + i * 8, e.tag, true);
      dv.setUint16(6 + i * 8, e.perm, true);
      const named = e.tag === ACL_USER || e.tag === ACL_GROUP;
      dv.setUint32(8 + i * 8, named || !canonical ? e.id : ACL_UNDEFINED_ID, true);
    });
    return out;
  }
  test("vfs -> ext4 -> vfs is the identity for kernel-canonical values", () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 40 }), (entries) => {
        const v = vfs(entries, true);
        const e = vfsAclToExt4(v);
        const named = entries.filter((x) => x.tag === ACL_USER || x.tag === ACL_GROUP).length;
        expect(e.length).toBe(4 + 4 * entries.length + 4 * named);
        expect(toHex(ext4AclToVfs(e))).toBe(toHex(v));
      }),
    );
  });
  test("ext4 -> vfs -> ext4 is the identity", () => {
    fc.assert(
      fc.property(fc.array(entry, { minLength: 1, maxLength: 40 }), (entries) => {
        const e = vfsAclToExt4(vfs(entries, false));
        expect(toHex(vfsAclToExt4(ext4AclToVfs(e)))).toBe(toHex(e));
      }),
    );
  });
});

describe("malformed values", () => {
  test("wrong VFS version (ext4's 1 given to the VFS decoder)", () => {
    expect(() => vfsAclToExt4(hex(DEFAULT_EXT4))).toThrow(/version 1, expected 2/);
  });
  test("bad VFS length", () => {
    expect(() => vfsAclToExt4(hex("0200000001000700ffffff"))).toThrow(/bad length 11/);
    expect(() => vfsAclToExt4(hex("0200"))).toThrow(/too short/);
  });
  test("no entries", () => {
    expect(() => vfsAclToExt4(hex("02000000"))).toThrow(/no entries/);
    expect(() => ext4AclToVfs(hex("01000000"))).toThrow(/no entries/);
  });
  test("unknown tag names the entry", () => {
    expect(() => vfsAclToExt4(hex("02000000" + "01000600ffffffff" + "40000400ffffffff"))).toThrow(
      /entry 1 has unknown tag 0x0040/,
    );
    expect(() => ext4AclToVfs(hex("01000000" + "01000600" + "03000400"))).toThrow(/entry 1 .*unknown tag 0x0003/);
  });
  test("wrong ext4 version and truncated ext4 entries", () => {
    expect(() => ext4AclToVfs(hex(DEFAULT_VFS))).toThrow(/version 2, expected 1/);
    expect(() => ext4AclToVfs(hex("01000000" + "02000700e803"))).toThrow(/entry 0 \(USER\).*truncated/);
    expect(() => ext4AclToVfs(hex("01000000" + "010006"))).toThrow(/entry 0 .*truncated/);
  });
});
