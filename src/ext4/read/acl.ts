// POSIX ACL conversion: ext4 stores ACLs in its own format (header version 1; 4-byte short
// entries for USER_OBJ/GROUP_OBJ/MASK/OTHER, 8-byte entries with an id for USER/GROUP); the
// Linux VFS (getxattr, and tar) uses version 2 with 8-byte entries everywhere.
import { u16, u32 } from "./bytes.ts";

export const EXT4_ACL_VERSION = 1;
export const POSIX_ACL_XATTR_VERSION = 2;
const ACL_USER_OBJ = 0x01;
const ACL_USER = 0x02;
const ACL_GROUP_OBJ = 0x04;
const ACL_GROUP = 0x08;
const ACL_MASK = 0x10;
const ACL_OTHER = 0x20;
const ACL_UNDEFINED_ID = 0xffffffff;

export function ext4AclToVfs(b: Uint8Array, where: string): Uint8Array {
  if (b.length < 4 || u32(b, 0) !== EXT4_ACL_VERSION)
    throw new Error(`${where}: ext4 ACL header version ${b.length >= 4 ? u32(b, 0) : "(short)"} (want 1)`);
  const entries: Array<[number, number, number]> = [];
  let off = 4;
  while (off < b.length) {
    if (off + 4 > b.length) throw new Error(`${where}: truncated ACL entry at ${off}`);
    const tag = u16(b, off);
    const perm = u16(b, off + 2);
    if (tag === ACL_USER || tag === ACL_GROUP) {
      if (off + 8 > b.length) throw new Error(`${where}: truncated ACL entry with id at ${off}`);
      entries.push([tag, perm, u32(b, off + 4)]);
      off += 8;
    } else if (tag === ACL_USER_OBJ || tag === ACL_GROUP_OBJ || tag === ACL_MASK || tag === ACL_OTHER) {
      entries.push([tag, perm, ACL_UNDEFINED_ID]);
      off += 4;
    } else {
      throw new Error(`${where}: unknown ACL tag 0x${tag.toString(16)} at ${off}`);
    }
  }
  const out = new Uint8Array(4 + entries.length * 8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, POSIX_ACL_XATTR_VERSION, true);
  entries.forEach(([tag, perm, id], i) => {
    dv.setUint16(4 + i * 8, tag, true);
    dv.setUint16(6 + i * 8, perm, true);
    dv.setUint32(8 + i * 8, id, true);
  });
  return out;
}
