// The superblock (kernel docs: "Super Block"): 1024 bytes at byte 1024 of the filesystem,
// copied at the start of every backup group with s_block_group_nr set to that group.
import { crc32c } from "./crc32c.ts";
import * as C from "./constants.ts";
import type { Geometry } from "./geometry.ts";

export interface SuperblockFields {
  geometry: Geometry;
  freeBlocksCount: number;
  freeInodesCount: number;
  uuid: Uint8Array;
  hashSeed: Uint8Array;
  volumeName: Uint8Array;
  metadataCsum: boolean;
  journalBlocks: number;
  /** Journal inode's i_block (60 bytes) and size, backed up in s_jnl_blocks. */
  journalIBlock: Uint8Array | null;
  journalSize: number;
  /** Filesystem timestamps (s_mkfs_time, s_wtime, s_lastcheck): fixed for reproducible output. */
  timestamp: number;
}

export const SUPERBLOCK_SIZE = 1024;

export function featureFlags(metadataCsum: boolean, journal: boolean) {
  return {
    compat: (journal ? C.COMPAT_HAS_JOURNAL : 0) | C.COMPAT_EXT_ATTR | C.COMPAT_DIR_INDEX,
    incompat: C.INCOMPAT_FILETYPE | C.INCOMPAT_EXTENTS | C.INCOMPAT_64BIT | C.INCOMPAT_FLEX_BG,
    roCompat:
      C.RO_COMPAT_SPARSE_SUPER |
      C.RO_COMPAT_LARGE_FILE |
      C.RO_COMPAT_HUGE_FILE |
      C.RO_COMPAT_DIR_NLINK |
      C.RO_COMPAT_EXTRA_ISIZE |
      (metadataCsum ? C.RO_COMPAT_METADATA_CSUM : 0),
  };
}

/** Encodes the superblock copy for `groupNr` (0 = primary). */
export function encodeSuperblock(s: SuperblockFields, groupNr: number): Uint8Array {
  const g = s.geometry;
  const buf = new Uint8Array(SUPERBLOCK_SIZE);
  const v = new DataView(buf.buffer);
  const lo = (n: number) => n >>> 0;
  const hi = (n: number) => Math.floor(n / 2 ** 32);
  const features = featureFlags(s.metadataCsum, s.journalBlocks > 0);

  v.setUint32(0x00, g.inodesPerGroup * g.groupCount, true); // s_inodes_count
  v.setUint32(0x04, lo(g.blocksCount), true); // s_blocks_count_lo
  v.setUint32(0x08, 0, true); // s_r_blocks_count_lo: no root reservation in a VM image
  v.setUint32(0x0c, lo(s.freeBlocksCount), true);
  v.setUint32(0x10, s.freeInodesCount, true);
  v.setUint32(0x14, 0, true); // s_first_data_block: 0 with 4 KiB blocks
  v.setUint32(0x18, C.LOG_BLOCK_SIZE, true);
  v.setUint32(0x1c, C.LOG_BLOCK_SIZE, true); // s_log_cluster_size
  v.setUint32(0x20, C.BLOCKS_PER_GROUP, true);
  v.setUint32(0x24, C.BLOCKS_PER_GROUP, true); // s_clusters_per_group
  v.setUint32(0x28, g.inodesPerGroup, true);
  v.setUint32(0x2c, 0, true); // s_mtime
  v.setUint32(0x30, s.timestamp, true); // s_wtime
  v.setUint16(0x34, 0, true); // s_mnt_count
  v.setUint16(0x36, 0xffff, true); // s_max_mnt_count = -1: no forced checks
  v.setUint16(0x38, C.EXT4_MAGIC, true);
  v.setUint16(0x3a, 1, true); // s_state: cleanly unmounted
  v.setUint16(0x3c, 1, true); // s_errors: continue
  v.setUint32(0x40, s.timestamp, true); // s_lastcheck
  v.setUint32(0x44, 0, true); // s_checkinterval
  v.setUint32(0x48, 0, true); // s_creator_os: Linux
  v.setUint32(0x4c, 1, true); // s_rev_level: dynamic
  v.setUint32(0x54, C.FIRST_INO, true);
  v.setUint16(0x58, C.INODE_SIZE, true);
  v.setUint16(0x5a, groupNr, true); // s_block_group_nr
  v.setUint32(0x5c, features.compat, true);
  v.setUint32(0x60, features.incompat, true);
  v.setUint32(0x64, features.roCompat, true);
  buf.set(s.uuid, 0x68);
  buf.set(s.volumeName.subarray(0, 16), 0x78);
  v.setUint16(0xce, 0, true); // s_reserved_gdt_blocks: no resize_inode
  v.setUint32(0xe0, s.journalBlocks > 0 ? C.JOURNAL_INO : 0, true);
  buf.set(s.hashSeed, 0xec);
  v.setUint8(0xfc, C.HASH_HALF_MD4);
  v.setUint8(0xfd, s.journalBlocks > 0 ? 1 : 0); // s_jnl_backup_type: EXT3_JNL_BACKUP_BLOCKS
  v.setUint16(0xfe, g.descSize, true);
  v.setUint32(0x100, 0x000c, true); // s_default_mount_opts: user_xattr, acl
  v.setUint32(0x108, s.timestamp, true); // s_mkfs_time
  if (s.journalIBlock) {
    buf.set(s.journalIBlock, 0x10c);
    v.setUint32(0x10c + 15 * 4, hi(s.journalSize), true);
    v.setUint32(0x10c + 16 * 4, lo(s.journalSize), true);
  }
  v.setUint32(0x150, hi(g.blocksCount), true);
  v.setUint32(0x158, hi(s.freeBlocksCount), true);
  v.setUint16(0x15c, C.EXTRA_ISIZE, true); // s_min_extra_isize
  v.setUint16(0x15e, C.EXTRA_ISIZE, true); // s_want_extra_isize
  v.setUint32(0x160, C.FLAGS_UNSIGNED_HASH, true);
  v.setUint8(0x174, 4); // s_log_groups_per_flex: 16, as mke2fs
  v.setUint8(0x175, s.metadataCsum ? 1 : 0); // s_checksum_type: crc32c
  // s_overhead_clusters (0x248) stays 0: the kernel computes it.
  if (s.metadataCsum) v.setUint32(0x3fc, crc32c(0xffffffff, buf, 0, 0x3fc), true);
  return buf;
}
