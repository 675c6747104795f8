// On-disk constants, named as in the kernel's ext4 documentation (Documentation/filesystems/ext4).

export const BLOCK_SIZE = 4096;
export const LOG_BLOCK_SIZE = 2; // s_log_block_size: block size = 1024 << 2
export const INODE_SIZE = 256;
export const EXTRA_ISIZE = 32; // i_extra_isize: covers every field up to i_projid
export const BLOCKS_PER_GROUP = 32768; // 8 * BLOCK_SIZE: one bitmap block per group
/** EXT4_LINK_MAX: the most names one inode may have (i_links_count is 16 bits). */
export const LINK_MAX = 65000;
export const DESC_SIZE = 64; // 64bit feature: 64-byte group descriptors
export const SUPERBLOCK_OFFSET = 1024;
export const EXT4_MAGIC = 0xef53;

// Reserved inode numbers.
export const ROOT_INO = 2;
export const JOURNAL_INO = 8;
export const FIRST_INO = 11; // s_first_ino; lost+found takes it
export const LOST_FOUND_INO = 11;

// s_feature_compat
export const COMPAT_HAS_JOURNAL = 0x4;
export const COMPAT_EXT_ATTR = 0x8;
export const COMPAT_DIR_INDEX = 0x20;
// s_feature_incompat
export const INCOMPAT_FILETYPE = 0x2;
export const INCOMPAT_EXTENTS = 0x40;
export const INCOMPAT_64BIT = 0x80;
export const INCOMPAT_FLEX_BG = 0x200;
// s_feature_ro_compat
export const RO_COMPAT_SPARSE_SUPER = 0x1;
export const RO_COMPAT_LARGE_FILE = 0x2;
export const RO_COMPAT_HUGE_FILE = 0x8;
export const RO_COMPAT_DIR_NLINK = 0x20;
export const RO_COMPAT_EXTRA_ISIZE = 0x40;
export const RO_COMPAT_METADATA_CSUM = 0x400;

// s_flags
export const FLAGS_SIGNED_HASH = 0x1;
export const FLAGS_UNSIGNED_HASH = 0x2;

// s_def_hash_version / dx_root_info.hash_version
export const HASH_LEGACY = 0;
export const HASH_HALF_MD4 = 1;
export const HASH_TEA = 2;

// i_mode file-type bits
export const S_IFIFO = 0x1000;
export const S_IFCHR = 0x2000;
export const S_IFDIR = 0x4000;
export const S_IFBLK = 0x6000;
export const S_IFREG = 0x8000;
export const S_IFLNK = 0xa000;
export const S_IFSOCK = 0xc000;

// i_flags
export const INODE_FLAG_INDEX = 0x1000; // EXT4_INDEX_FL: hash-indexed directory
export const INODE_FLAG_HUGE_FILE = 0x40000;
export const INODE_FLAG_EXTENTS = 0x80000;
export const INODE_FLAG_EA_INODE = 0x200000;

// Directory entry file types (ext4_dir_entry_2.file_type)
export const FT_UNKNOWN = 0;
export const FT_REG_FILE = 1;
export const FT_DIR = 2;
export const FT_CHRDEV = 3;
export const FT_BLKDEV = 4;
export const FT_FIFO = 5;
export const FT_SOCK = 6;
export const FT_SYMLINK = 7;
export const FT_DIR_CSUM = 0xde; // file_type of the 12-byte checksum tail entry

export const EXTENT_MAGIC = 0xf30a;
export const MAX_EXTENT_LEN = 32768; // initialized extents
export const XATTR_MAGIC = 0xea020000;
export const JBD2_MAGIC = 0xc03b3998;
