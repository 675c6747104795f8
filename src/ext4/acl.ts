// POSIX ACL value conversion between the Linux VFS xattr format (what getxattr returns and what
// tar archives carry in SCHILY.xattr.system.posix_acl_*) and ext4's compact on-disk format.
//
// VFS format ("posix_acl_xattr", version 2):
//   u32 a_version = 2, then entries of 8 bytes {u16 e_tag, u16 e_perm, u32 e_id}.
//   Entries without a qualifier carry e_id = ACL_UNDEFINED_ID (0xFFFFFFFF).
// ext4 on-disk format ("ext4_acl", version 1):
//   u32 a_version = 1, then short entries {u16 e_tag, u16 e_perm} for USER_OBJ, GROUP_OBJ, MASK,
//   OTHER and full entries {u16 e_tag, u16 e_perm, u32 e_id} for USER and GROUP.
// All fields are little-endian.
import {
  ACL_GROUP,
  ACL_GROUP_OBJ,
  ACL_MASK,
  ACL_OTHER,
  ACL_UNDEFINED_ID,
  ACL_USER,
  ACL_USER_OBJ,
  POSIX_ACL_XATTR_VERSION,
} from "../tree/posix-acl.ts";

export const EXT4_ACL_VERSION = 1;

const VFS_HEADER = 4;
const VFS_ENTRY = 8;
const EXT4_HEADER = 4;
const EXT4_SHORT_ENTRY = 4;
const EXT4_ENTRY = 8;

const TAG_NAMES: Record<number, string> = {
  [ACL_USER_OBJ]: "USER_OBJ",
  [ACL_USER]: "USER",
  [ACL_GROUP_OBJ]: "GROUP_OBJ",
  [ACL_GROUP]: "GROUP",
  [ACL_MASK]: "MASK",
  [ACL_OTHER]: "OTHER",
};

/** True for tags whose entries carry a uid/gid qualifier. */
function hasId(tag: number): boolean {
  return tag === ACL_USER || tag === ACL_GROUP;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function hex(n: number, width: number): string {
  return "0x" + n.toString(16).padStart(width, "0");
}

/** Converts a VFS POSIX ACL xattr value (version 2) to ext4's on-disk ACL value (version 1). */
export function vfsAclToExt4(value: Uint8Array): Uint8Array {
  if (value.length < VFS_HEADER) {
    throw new Error(`POSIX ACL value too short: ${value.length} bytes, need at least ${VFS_HEADER}`);
  }
  const v = view(value);
  const version = v.getUint32(0, true);
  if (version !== POSIX_ACL_XATTR_VERSION) {
    throw new Error(
      `POSIX ACL value has version ${version}, expected ${POSIX_ACL_XATTR_VERSION} (VFS xattr format)`,
    );
  }
  const body = value.length - VFS_HEADER;
  if (body % VFS_ENTRY !== 0) {
    throw new Error(
      `POSIX ACL value has bad length ${value.length}: not 4 + a multiple of ${VFS_ENTRY}`,
    );
  }
  const count = body / VFS_ENTRY;
  if (count === 0) throw new Error("POSIX ACL value has no entries");

  let outLen = EXT4_HEADER;
  for (let i = 0; i < count; i++) {
    const off = VFS_HEADER + i * VFS_ENTRY;
    const tag = v.getUint16(off, true);
    if (!(tag in TAG_NAMES)) {
      throw new Error(`POSIX ACL entry ${i} has unknown tag ${hex(tag, 4)}`);
    }
    outLen += hasId(tag) ? EXT4_ENTRY : EXT4_SHORT_ENTRY;
  }

  const out = new Uint8Array(outLen);
  const o = view(out);
  o.setUint32(0, EXT4_ACL_VERSION, true);
  let pos = EXT4_HEADER;
  for (let i = 0; i < count; i++) {
    const off = VFS_HEADER + i * VFS_ENTRY;
    const tag = v.getUint16(off, true);
    o.setUint16(pos, tag, true);
    o.setUint16(pos + 2, v.getUint16(off + 2, true), true);
    if (hasId(tag)) {
      o.setUint32(pos + 4, v.getUint32(off + 4, true), true);
      pos += EXT4_ENTRY;
    } else {
      pos += EXT4_SHORT_ENTRY;
    }
  }
  return out;
}

/**
 * The mode an inode has beside access ACL `value` (VFS format): the kernel keeps the two in
 * step, owner bits = USER_OBJ, group bits = MASK (GROUP_OBJ when there is no mask), other bits
 * = OTHER; setuid, setgid and sticky are kept. Where an archive's mode and ACL disagree, GNU tar
 * sets the mode first and the ACL last, so the ACL decides (measured with GNU tar 1.34 on Linux,
 * both when the mode is wider and narrower than the ACL). A value too malformed to read leaves
 * `mode` as it is (the xattr planner reports it).
 */
export function modeWithAccessAcl(mode: number, value: Uint8Array): number {
  if (value.length < VFS_HEADER || (value.length - VFS_HEADER) % VFS_ENTRY !== 0) return mode;
  const v = view(value);
  let user = -1;
  let group = -1;
  let mask = -1;
  let other = -1;
  for (let off = VFS_HEADER; off < value.length; off += VFS_ENTRY) {
    const perm = v.getUint16(off + 2, true) & 7;
    switch (v.getUint16(off, true)) {
      case ACL_USER_OBJ:
        user = perm;
        break;
      case ACL_GROUP_OBJ:
        group = perm;
        break;
      case ACL_MASK:
        mask = perm;
        break;
      case ACL_OTHER:
        other = perm;
        break;
    }
  }
  const groupClass = mask >= 0 ? mask : group;
  if (user < 0 || groupClass < 0 || other < 0) return mode;
  return (mode & 0o7000) | (user << 6) | (groupClass << 3) | other;
}

/** Converts ext4's on-disk ACL value (version 1) back to the VFS xattr format (version 2).
 *  Entries without a qualifier get e_id = ACL_UNDEFINED_ID, as the kernel reports them. */
export function ext4AclToVfs(value: Uint8Array): Uint8Array {
  if (value.length < EXT4_HEADER) {
    throw new Error(`ext4 ACL value too short: ${value.length} bytes, need at least ${EXT4_HEADER}`);
  }
  const v = view(value);
  const version = v.getUint32(0, true);
  if (version !== EXT4_ACL_VERSION) {
    throw new Error(`ext4 ACL value has version ${version}, expected ${EXT4_ACL_VERSION}`);
  }
  const entries: Array<{ tag: number; perm: number; id: number }> = [];
  let pos = EXT4_HEADER;
  while (pos < value.length) {
    const i = entries.length;
    if (value.length - pos < EXT4_SHORT_ENTRY) {
      throw new Error(`ext4 ACL entry ${i} at byte ${pos} is truncated (value is ${value.length} bytes)`);
    }
    const tag = v.getUint16(pos, true);
    const perm = v.getUint16(pos + 2, true);
    if (!(tag in TAG_NAMES)) {
      throw new Error(`ext4 ACL entry ${i} at byte ${pos} has unknown tag ${hex(tag, 4)}`);
    }
    if (hasId(tag)) {
      if (value.length - pos < EXT4_ENTRY) {
        throw new Error(
          `ext4 ACL entry ${i} (${TAG_NAMES[tag]}) at byte ${pos} is truncated (value is ${value.length} bytes)`,
        );
      }
      entries.push({ tag, perm, id: v.getUint32(pos + 4, true) });
      pos += EXT4_ENTRY;
    } else {
      entries.push({ tag, perm, id: ACL_UNDEFINED_ID });
      pos += EXT4_SHORT_ENTRY;
    }
  }
  if (entries.length === 0) throw new Error("ext4 ACL value has no entries");

  const out = new Uint8Array(VFS_HEADER + entries.length * VFS_ENTRY);
  const o = view(out);
  o.setUint32(0, POSIX_ACL_XATTR_VERSION, true);
  entries.forEach((e, i) => {
    const off = VFS_HEADER + i * VFS_ENTRY;
    o.setUint16(off, e.tag, true);
    o.setUint16(off + 2, e.perm, true);
    o.setUint32(off + 4, e.id, true);
  });
  return out;
}
