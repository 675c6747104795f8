// Extent trees (kernel docs: "Extent Tree"). The root lives in i_block (4 entries); more
// extents go to leaf blocks of 340 entries, and more leaves to index blocks, level by level.
import { crc32c } from "./crc32c.ts";
import { BLOCK_SIZE, EXTENT_MAGIC, MAX_EXTENT_LEN } from "./constants.ts";

const HEADER = 12;
const ENTRY = 12;
const ROOT_MAX = 4;
const BLOCK_MAX = (BLOCK_SIZE - HEADER - 4) / ENTRY; // 340: 4 bytes left for the checksum tail
const TAIL_OFFSET = HEADER + BLOCK_MAX * ENTRY;

/**
 * Extents as a flat list of triplets [logical, physical, length, logical, physical, length, ...]:
 * one small number array per file instead of an object per extent (there can be millions).
 */
export type ExtentList = number[];

export function extentCount(list: ExtentList): number {
  return list.length / 3;
}

/** Appends extents mapping `logical..` onto the physical [start, length] pairs, splitting at the 32768-block limit. */
export function appendExtents(out: ExtentList, logical: number, physicalRuns: number[]): void {
  for (let i = 0; i < physicalRuns.length; i += 2) {
    let physical = physicalRuns[i]!;
    let left = physicalRuns[i + 1]!;
    while (left > 0) {
      const n = out.length;
      const prevLength = n > 0 ? out[n - 1]! : 0;
      const mergeable = n > 0 && out[n - 3]! + prevLength === logical && out[n - 2]! + prevLength === physical && prevLength < MAX_EXTENT_LEN;
      const length = Math.min(left, mergeable ? MAX_EXTENT_LEN - prevLength : MAX_EXTENT_LEN);
      if (mergeable) out[n - 1] = prevLength + length;
      else out.push(logical, physical, length);
      logical += length;
      physical += length;
      left -= length;
    }
  }
}

/** Tree blocks (leaves + index blocks) needed for `count` extents; 0 when they fit in the inode. */
export function extentTreeBlockCount(count: number): number {
  let total = 0;
  let level = count;
  while (level > ROOT_MAX) {
    level = Math.ceil(level / BLOCK_MAX);
    total += level;
  }
  return total;
}

function writeHeaderAt(view: DataView, off: number, entries: number, max: number, depth: number): void {
  view.setUint16(off, EXTENT_MAGIC, true);
  view.setUint16(off + 2, entries, true);
  view.setUint16(off + 4, max, true);
  view.setUint16(off + 6, depth, true);
  view.setUint32(off + 8, 0, true);
}

function writeLeafEntry(view: DataView, off: number, list: ExtentList, index: number): void {
  const physical = list[index * 3 + 1]!;
  view.setUint32(off, list[index * 3]!, true);
  view.setUint16(off + 4, list[index * 3 + 2]!, true);
  view.setUint16(off + 6, Math.floor(physical / 2 ** 32), true);
  view.setUint32(off + 8, physical >>> 0, true);
}

function writeIndexEntry(view: DataView, off: number, logical: number, child: number): void {
  view.setUint32(off, logical, true);
  view.setUint32(off + 4, child >>> 0, true);
  view.setUint16(off + 8, Math.floor(child / 2 ** 32), true);
  view.setUint16(off + 10, 0, true);
}

export interface ExtentTree {
  /** The 60 bytes for i_block. */
  iBlock: Uint8Array;
  /** extentTreeBlockCount(extents.length) blocks, to be written at treeStart.. in order. */
  blocks: Uint8Array;
  depth: number;
}

/**
 * Lays out the tree for `extents` (ascending, non-overlapping). Tree blocks occupy
 * `treeStart`, `treeStart + 1`, ... (leaves first, then each index level). Each tree block
 * gets its checksum tail when `inodeCsumSeed` is given (metadata_csum).
 */
const NO_BLOCKS = new Uint8Array(0);
const rootViews = new WeakMap<ArrayBufferLike, DataView>();

export function buildExtentTree(extents: ExtentList, treeStart: number, inodeCsumSeed: number | null, iBlock: Uint8Array = new Uint8Array(60)): ExtentTree {
  let bufferView = rootViews.get(iBlock.buffer);
  if (!bufferView) rootViews.set(iBlock.buffer, (bufferView = new DataView(iBlock.buffer)));
  const count = extentCount(extents);
  if (count <= ROOT_MAX) {
    // The common case (every small file): the whole tree is the root in i_block; allocate nothing.
    const o = iBlock.byteOffset;
    writeHeaderAt(bufferView, o, count, ROOT_MAX, 0);
    for (let j = 0; j < count; j++) writeLeafEntry(bufferView, o + HEADER + j * ENTRY, extents, j);
    return { iBlock, blocks: NO_BLOCKS, depth: 0 };
  }
  const rootView = new DataView(iBlock.buffer, iBlock.byteOffset, 60);
  const blockCount = extentTreeBlockCount(count);
  const blocks = new Uint8Array(blockCount * BLOCK_SIZE);
  const view = new DataView(blocks.buffer);

  // Current level: (first logical block, physical block) of each node, or the extents themselves.
  let depth = 0;
  let nextBlock = 0;
  let level: Array<{ logical: number; block: number }> = [];
  if (count > ROOT_MAX) {
    for (let i = 0; i < count; i += BLOCK_MAX) {
      const entries = Math.min(BLOCK_MAX, count - i);
      const base = nextBlock * BLOCK_SIZE;
      writeHeaderAt(view, base, entries, BLOCK_MAX, 0);
      for (let j = 0; j < entries; j++) writeLeafEntry(view, base + HEADER + j * ENTRY, extents, i + j);
      level.push({ logical: extents[i * 3]!, block: treeStart + nextBlock });
      nextBlock++;
    }
    depth = 1;
    while (level.length > ROOT_MAX) {
      const upper: typeof level = [];
      for (let i = 0; i < level.length; i += BLOCK_MAX) {
        const chunk = level.slice(i, i + BLOCK_MAX);
        const base = nextBlock * BLOCK_SIZE;
        writeHeaderAt(view, base, chunk.length, BLOCK_MAX, depth);
        chunk.forEach((n, j) => writeIndexEntry(view, base + HEADER + j * ENTRY, n.logical, n.block));
        upper.push({ logical: chunk[0]!.logical, block: treeStart + nextBlock });
        nextBlock++;
      }
      level = upper;
      depth++;
    }
    writeHeaderAt(rootView, 0, level.length, ROOT_MAX, depth);
    level.forEach((n, j) => writeIndexEntry(rootView, HEADER + j * ENTRY, n.logical, n.block));
  } else {
    writeHeaderAt(rootView, 0, count, ROOT_MAX, 0);
    for (let j = 0; j < count; j++) writeLeafEntry(rootView, HEADER + j * ENTRY, extents, j);
  }
  if (inodeCsumSeed !== null) {
    for (let b = 0; b < blockCount; b++) {
      const base = b * BLOCK_SIZE;
      view.setUint32(base + TAIL_OFFSET, crc32c(inodeCsumSeed, blocks, base, base + TAIL_OFFSET), true);
    }
  }
  return { iBlock, blocks, depth };
}
