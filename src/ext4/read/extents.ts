// Extent trees (Documentation/filesystems/ext4/ifork.rst) and, for old inodes without
// EXT4_EXTENTS_FL, the ext2/3 direct/indirect block map. Both are turned into the same list
// of leaf runs.
import { EXTENT_MAGIC } from "../constants.ts";
import { hiLo, u16, u32 } from "./bytes.ts";

export interface Extent {
  logical: number;
  physical: number;
  length: number;
  /** ee_len > 32768: allocated but unwritten; reads as zeros. */
  uninit: boolean;
}

export interface ExtentHeader {
  magic: number;
  entries: number;
  max: number;
  depth: number;
  generation: number;
}

/** A non-root node of the tree: its block and the header found there. */
export interface ExtentNode {
  block: number;
  header: ExtentHeader;
  /** Depth of this node (0 = leaf). */
  depth: number;
}

export const EXTENT_HEADER_SIZE = 12;
export const EXTENT_ENTRY_SIZE = 12;
const INIT_MAX_LEN = 32768;

export function parseExtentHeader(b: Uint8Array, off: number, where: string): ExtentHeader {
  const h = { magic: u16(b, off), entries: u16(b, off + 2), max: u16(b, off + 4), depth: u16(b, off + 6), generation: u32(b, off + 8) };
  if (h.magic !== EXTENT_MAGIC) throw new Error(`${where}: bad extent header magic 0x${h.magic.toString(16)} (want 0xf30a)`);
  if (h.entries > h.max) throw new Error(`${where}: extent header has ${h.entries} entries but max ${h.max}`);
  return h;
}

/**
 * Walks the extent tree rooted in i_block (60 bytes) depth-first in logical order, returning
 * every leaf extent; `onNode` sees every index/leaf block below the root.
 */
export function walkExtents(
  iBlock: Uint8Array,
  readBlock: (block: number) => Uint8Array,
  where: string,
  onNode?: (node: ExtentNode, bytes: Uint8Array) => void,
): { depth: number; extents: Extent[] } {
  const out: Extent[] = [];
  const root = parseExtentHeader(iBlock, 0, `${where} (root in i_block)`);
  const visit = (b: Uint8Array, h: ExtentHeader): void => {
    for (let i = 0; i < h.entries; i++) {
      const off = EXTENT_HEADER_SIZE + i * EXTENT_ENTRY_SIZE;
      if (h.depth === 0) {
        const rawLen = u16(b, off + 4);
        const uninit = rawLen > INIT_MAX_LEN;
        out.push({
          logical: u32(b, off),
          physical: hiLo(u32(b, off + 8), u16(b, off + 6)),
          length: uninit ? rawLen - INIT_MAX_LEN : rawLen,
          uninit,
        });
      } else {
        const child = hiLo(u32(b, off + 4), u16(b, off + 8));
        const childWhere = `${where} (extent node block ${child}, depth ${h.depth - 1})`;
        const cb = readBlock(child);
        const ch = parseExtentHeader(cb, 0, childWhere);
        if (ch.depth !== h.depth - 1) throw new Error(`${childWhere}: header depth ${ch.depth}, parent says ${h.depth - 1}`);
        onNode?.({ block: child, header: ch, depth: ch.depth }, cb);
        visit(cb, ch);
      }
    }
  };
  visit(iBlock, root);
  for (let i = 1; i < out.length; i++) {
    const prev = out[i - 1]!;
    if (out[i]!.logical < prev.logical + prev.length)
      throw new Error(`${where}: extent at logical ${out[i]!.logical} overlaps/precedes the one at ${prev.logical} (+${prev.length})`);
  }
  return { depth: root.depth, extents: out };
}

/**
 * ext2/3 block map: i_block[0..11] direct, [12] single, [13] double, [14] triple indirect.
 * Returns coalesced runs; `onMeta` sees every indirect block.
 */
export function walkBlockMap(
  iBlock: Uint8Array,
  blockSize: number,
  fileBlocks: number,
  readBlock: (block: number) => Uint8Array,
  onMeta?: (block: number) => void,
): Extent[] {
  const runs: Extent[] = [];
  const add = (logical: number, physical: number): void => {
    const last = runs[runs.length - 1];
    if (last && last.logical + last.length === logical && last.physical + last.length === physical) last.length++;
    else runs.push({ logical, physical, length: 1, uninit: false });
  };
  const perBlock = blockSize / 4;
  // Returns how many logical blocks the subtree at `level` covers.
  const span = (level: number): number => perBlock ** level;
  const walk = (block: number, level: number, logical: number): void => {
    if (logical >= fileBlocks) return;
    if (block === 0) return;
    if (level === 0) {
      add(logical, block);
      return;
    }
    onMeta?.(block);
    const b = readBlock(block);
    for (let i = 0; i < perBlock; i++) walk(u32(b, 4 * i), level - 1, logical + i * span(level - 1));
  };
  for (let i = 0; i < 12; i++) walk(u32(iBlock, 4 * i), 0, i);
  walk(u32(iBlock, 48), 1, 12);
  walk(u32(iBlock, 52), 2, 12 + span(1));
  walk(u32(iBlock, 56), 3, 12 + span(1) + span(2));
  return runs;
}
