// Parses the ext4 superblock (1024 bytes at byte offset 1024), fields named as in the kernel
// documentation (Documentation/filesystems/ext4/super.rst) without the `s_` prefix.
import { cString, hiLo, u16, u32, u8 } from "./bytes.ts";

export const SUPERBLOCK_SIZE = 1024;
export const SB_CHECKSUM_OFFSET = 0x3fc;

export interface Superblock {
  inodesCount: number;
  /** s_blocks_count_lo + s_blocks_count_hi (hi only with the 64bit feature). */
  blocksCount: number;
  rBlocksCount: number;
  freeBlocksCount: number;
  freeInodesCount: number;
  firstDataBlock: number;
  logBlockSize: number;
  logClusterSize: number;
  blocksPerGroup: number;
  clustersPerGroup: number;
  inodesPerGroup: number;
  mtime: number;
  wtime: number;
  mntCount: number;
  maxMntCount: number;
  magic: number;
  state: number;
  errors: number;
  minorRevLevel: number;
  lastcheck: number;
  checkinterval: number;
  creatorOs: number;
  revLevel: number;
  defResuid: number;
  defResgid: number;
  firstIno: number;
  inodeSize: number;
  blockGroupNr: number;
  featureCompat: number;
  featureIncompat: number;
  featureRoCompat: number;
  uuid: Uint8Array;
  /** Byte string. */
  volumeName: string;
  lastMounted: string;
  reservedGdtBlocks: number;
  journalUuid: Uint8Array;
  journalInum: number;
  journalDev: number;
  lastOrphan: number;
  hashSeed: Uint32Array;
  defHashVersion: number;
  jnlBackupType: number;
  /** Group descriptor size: s_desc_size with 64bit, else 32. */
  descSize: number;
  defaultMountOpts: number;
  firstMetaBg: number;
  mkfsTime: number;
  jnlBlocks: Uint32Array;
  minExtraIsize: number;
  wantExtraIsize: number;
  flags: number;
  raidStride: number;
  mmpInterval: number;
  mmpBlock: number;
  raidStripeWidth: number;
  logGroupsPerFlex: number;
  checksumType: number;
  kbytesWritten: number;
  lpfIno: number;
  checksumSeed: number;
  checksum: number;
}

export const INCOMPAT_META_BG = 0x10;
export const INCOMPAT_CSUM_SEED = 0x2000;
export const INCOMPAT_INLINE_DATA = 0x8000;
export const INCOMPAT_EA_INODE = 0x400;
export const RO_COMPAT_GDT_CSUM = 0x10;

export function parseSuperblock(b: Uint8Array): Superblock {
  if (b.length < SUPERBLOCK_SIZE) throw new Error(`superblock: need ${SUPERBLOCK_SIZE} bytes, got ${b.length}`);
  const featureIncompat = u32(b, 0x60);
  const is64 = (featureIncompat & 0x80) !== 0;
  const hi = (off: number): number => (is64 ? u32(b, off) : 0);
  const jnlBlocks = new Uint32Array(17);
  for (let i = 0; i < 17; i++) jnlBlocks[i] = u32(b, 0x10c + 4 * i);
  const hashSeed = new Uint32Array(4);
  for (let i = 0; i < 4; i++) hashSeed[i] = u32(b, 0xec + 4 * i);
  const descSizeRaw = u16(b, 0xfe);
  return {
    inodesCount: u32(b, 0x0),
    blocksCount: hiLo(u32(b, 0x4), hi(0x150)),
    rBlocksCount: hiLo(u32(b, 0x8), hi(0x154)),
    freeBlocksCount: hiLo(u32(b, 0xc), hi(0x158)),
    freeInodesCount: u32(b, 0x10),
    firstDataBlock: u32(b, 0x14),
    logBlockSize: u32(b, 0x18),
    logClusterSize: u32(b, 0x1c),
    blocksPerGroup: u32(b, 0x20),
    clustersPerGroup: u32(b, 0x24),
    inodesPerGroup: u32(b, 0x28),
    mtime: u32(b, 0x2c),
    wtime: u32(b, 0x30),
    mntCount: u16(b, 0x34),
    maxMntCount: u16(b, 0x36),
    magic: u16(b, 0x38),
    state: u16(b, 0x3a),
    errors: u16(b, 0x3c),
    minorRevLevel: u16(b, 0x3e),
    lastcheck: u32(b, 0x40),
    checkinterval: u32(b, 0x44),
    creatorOs: u32(b, 0x48),
    revLevel: u32(b, 0x4c),
    defResuid: u16(b, 0x50),
    defResgid: u16(b, 0x52),
    firstIno: u32(b, 0x4c) === 0 ? 11 : u32(b, 0x54),
    inodeSize: u32(b, 0x4c) === 0 ? 128 : u16(b, 0x58),
    blockGroupNr: u16(b, 0x5a),
    featureCompat: u32(b, 0x5c),
    featureIncompat,
    featureRoCompat: u32(b, 0x64),
    uuid: b.slice(0x68, 0x78),
    volumeName: cString(b, 0x78, 16),
    lastMounted: cString(b, 0x88, 64),
    reservedGdtBlocks: u16(b, 0xce),
    journalUuid: b.slice(0xd0, 0xe0),
    journalInum: u32(b, 0xe0),
    journalDev: u32(b, 0xe4),
    lastOrphan: u32(b, 0xe8),
    hashSeed,
    defHashVersion: u8(b, 0xfc),
    jnlBackupType: u8(b, 0xfd),
    descSize: is64 ? descSizeRaw : 32,
    defaultMountOpts: u32(b, 0x100),
    firstMetaBg: u32(b, 0x104),
    mkfsTime: u32(b, 0x108),
    jnlBlocks,
    minExtraIsize: u16(b, 0x15c),
    wantExtraIsize: u16(b, 0x15e),
    flags: u32(b, 0x160),
    raidStride: u16(b, 0x164),
    mmpInterval: u16(b, 0x166),
    mmpBlock: hiLo(u32(b, 0x168), u32(b, 0x16c)),
    raidStripeWidth: u32(b, 0x170),
    logGroupsPerFlex: u8(b, 0x174),
    checksumType: u8(b, 0x175),
    kbytesWritten: hiLo(u32(b, 0x178), u32(b, 0x17c)),
    lpfIno: u32(b, 0x268),
    checksumSeed: u32(b, 0x270),
    checksum: u32(b, SB_CHECKSUM_OFFSET),
  };
}
