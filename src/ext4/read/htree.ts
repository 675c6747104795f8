// Structural check of hash-tree directories: every name sits in the leaf block its hash
// selects, index entries are sorted, and every block is reached exactly once. Uses the
// reader's own hash implementation (./dirhash.ts), so it checks the writer's hashing too.
import { FLAGS_UNSIGNED_HASH, INCOMPAT_FILETYPE, S_IFDIR } from "../constants.ts";
import type { Ext4Reader } from "./reader.ts";
import { u16, u32 } from "./bytes.ts";
import { parseDirBlock, parseDxEntries, parseDxRootInfo } from "./dir.ts";
import { dirHash } from "./dirhash.ts";
import { BG_INODE_UNINIT } from "./group.ts";

const INODE_FLAG_INDEX = 0x1000;
const COMPAT_DIR_INDEX = 0x20;

/** Problems in one directory's index (empty when fine or when the directory is linear). */
export function checkDirIndex(r: Ext4Reader, ino: number): string[] {
  const problems: string[] = [];
  const inode = r.inode(ino);
  const blocks = new Map(r.dirBlocks(ino));
  const where = `directory inode ${ino}`;
  if (!(inode.flags & INODE_FLAG_INDEX)) {
    // lost+found is preallocated with several empty blocks and never indexed.
    const lostFound = r.readDir(2).find((e) => e.name === "lost+found")?.ino;
    if (blocks.size > 1 && r.superblock.featureCompat & COMPAT_DIR_INDEX && ino !== lostFound)
      problems.push(`${where}: ${blocks.size} blocks but no htree index (e2fsck -fp would optimize it)`);
    return problems;
  }
  const root = blocks.get(0);
  if (!root) return [`${where}: htree without block 0`];
  const info = parseDxRootInfo(root, `${where} dx_root`);
  const version = info.hashVersion + (r.superblock.flags & FLAGS_UNSIGNED_HASH ? 3 : 0);
  const seed = r.superblock.hashSeed;
  const ft = r.has("incompat", INCOMPAT_FILETYPE);
  if (u32(root, 0) !== ino) problems.push(`${where}: dx_root "." points at inode ${u32(root, 0)}`);
  if (u16(root, 0x0c + 4) !== root.length - 12) problems.push(`${where}: dx_root ".." rec_len ${u16(root, 0x10)} (want block size - 12)`);
  const seen = new Set<number>([0]);
  // hi: exclusive upper bound of hashes for this subtree; hiCollides: the next sibling's
  // collision bit (names hashing exactly to hi may then sit here too).
  const walk = (logical: number, b: Uint8Array, countOffset: number, level: number, lo: number, hi: number, hiCollides: boolean): void => {
    const dx = parseDxEntries(b, countOffset, `${where} dx block ${logical}`);
    for (let i = 0; i < dx.entries.length; i++) {
      const e = dx.entries[i]!;
      const eLo = i === 0 ? lo : (e.hash & ~1) >>> 0;
      const next = dx.entries[i + 1];
      const eHi = next ? (next.hash & ~1) >>> 0 : hi;
      const eHiCollides = next ? (next.hash & 1) === 1 : hiCollides;
      if (i > 0 && (eLo < lo || eLo > hi)) problems.push(`${where}: dx block ${logical} entry ${i} hash 0x${e.hash.toString(16)} outside its parent range`);
      if (next && ((next.hash & ~1) >>> 0) < eLo) problems.push(`${where}: dx block ${logical} entries ${i} and ${i + 1} out of order`);
      if (seen.has(e.block)) {
        problems.push(`${where}: block ${e.block} referenced twice by the index`);
        continue;
      }
      seen.add(e.block);
      const child = blocks.get(e.block);
      if (!child) {
        problems.push(`${where}: dx block ${logical} points at unmapped logical block ${e.block}`);
        continue;
      }
      if (level > 0) {
        walk(e.block, child, 8, level - 1, eLo, eHi, eHiCollides);
        continue;
      }
      for (const d of parseDirBlock(child, ft, `${where} leaf block ${e.block}`)) {
        if (d.ino === 0) continue;
        const h = dirHash(Buffer.from(d.name, "latin1"), version, seed).hash;
        const okLo = h >= eLo;
        const okHi = h < eHi || (h === eHi && eHiCollides);
        if (!okLo || !okHi)
          problems.push(`${where}: "${d.name}" (hash 0x${h.toString(16)}) in leaf block ${e.block}, which holds hashes 0x${eLo.toString(16)}..0x${eHi.toString(16)}`);
      }
    }
  };
  walk(0, root, 0x20, info.indirectLevels, 0, 0xffffffff, false);
  for (const logical of blocks.keys()) if (!seen.has(logical)) problems.push(`${where}: block ${logical} not reachable from the index`);
  return problems;
}

/** checkDirIndex over every directory inode in use. */
export function verifyDirIndex(r: Ext4Reader): string[] {
  const problems: string[] = [];
  const sb = r.superblock;
  for (let g = 0; g < r.groupCount; g++) {
    const gd = r.groupDescriptor(g);
    if (gd.flags & BG_INODE_UNINIT) continue;
    const bitmap = r.readBlock(gd.inodeBitmap);
    for (let i = 0; i < sb.inodesPerGroup - gd.itableUnused; i++) {
      if (!(bitmap[i >>> 3]! & (1 << (i & 7)))) continue;
      const ino = g * sb.inodesPerGroup + i + 1;
      const inode = r.inode(ino);
      if ((inode.mode & 0xf000) !== S_IFDIR || inode.linksCount === 0) continue;
      try {
        problems.push(...checkDirIndex(r, ino));
      } catch (e) {
        problems.push(`directory inode ${ino}: ${(e as Error).message}`);
      }
    }
  }
  return problems;
}
