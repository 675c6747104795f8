// The Linux VFS POSIX ACL xattr format ("posix_acl_xattr", version 2), which tar archives carry in
// SCHILY.xattr.system.posix_acl_* and which the tree holds: u32 version, then 8-byte entries
// {u16 tag, u16 perm, u32 id}, little-endian. Shared by the tar reader (text ACLs) and the ext4
// writer and reader (ext4's own on-disk format).

export const POSIX_ACL_XATTR_VERSION = 2;

export const ACL_USER_OBJ = 0x01;
export const ACL_USER = 0x02;
export const ACL_GROUP_OBJ = 0x04;
export const ACL_GROUP = 0x08;
export const ACL_MASK = 0x10;
export const ACL_OTHER = 0x20;

/** e_id of entries that have no qualifier (the kernel's ACL_UNDEFINED_ID, (u32)-1). */
export const ACL_UNDEFINED_ID = 0xffffffff;
