// Block group tables: free block counts and bitmaps against a bit-by-bit count (property test).
import { expect, test } from "bun:test";
import fc from "fast-check";
import { BLOCK_SIZE, BLOCKS_PER_GROUP } from "../../src/ext4/constants.ts";
import { buildGroupTables, type GroupLayout } from "../../src/ext4/groups.ts";

test("free blocks per group equal a bit-by-bit count, also where the last group ends mid-word and its last blocks are in use", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: BLOCKS_PER_GROUP }),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 5000 })), { maxLength: 12 }),
      fc.boolean(),
      (fullGroups, lastGroupBlocks, ranges, tailInUse) => {
        const groupCount = fullGroups + 1;
        const blocksCount = fullGroups * BLOCKS_PER_GROUP + lastGroupBlocks;
        const used: Array<[number, number]> = ranges.map(([s, n]) => {
          const start = s % blocksCount;
          return [start, Math.min(blocksCount, start + n)];
        });
        if (tailInUse) used.push([Math.max(0, blocksCount - 40), blocksCount]);
        used.sort((a, b) => a[0] - b[0]);
        const g = { blocksCount, groupCount, inodesPerGroup: 8192, inodeTableBlocksPerGroup: 512, gdtBlocks: 1, descSize: 64 };
        const layouts: GroupLayout[] = Array.from({ length: groupCount }, () => ({ blockBitmap: 1, inodeBitmap: 2, inodeTable: 3 }));
        const usage = Array.from({ length: groupCount }, () => ({ usedInodes: 0, usedDirs: 0 }));
        const t = buildGroupTables(g, layouts, usage, [used], 0x1234);

        const inUse = new Uint8Array(blocksCount);
        for (const [s, e] of used) inUse.fill(1, s, e);
        let free = 0;
        for (let grp = 0; grp < groupCount; grp++) {
          let groupFree = 0;
          for (let b = grp * BLOCKS_PER_GROUP; b < Math.min(blocksCount, (grp + 1) * BLOCKS_PER_GROUP); b++) {
            const bit = (t.blockBitmaps[b >> 3]! >> (b & 7)) & 1;
            expect(bit).toBe(inUse[b]!);
            if (!inUse[b]) groupFree++;
          }
          const d = new DataView(t.descriptors.buffer, grp * 64, 64);
          expect(d.getUint16(0x0c, true) | (d.getUint16(0x2c, true) << 16)).toBe(groupFree);
          free += groupFree;
        }
        // Bits past the end of the filesystem are set (e2fsck requires it).
        for (let b = blocksCount; b < groupCount * BLOCKS_PER_GROUP; b++) expect((t.blockBitmaps[b >> 3]! >> (b & 7)) & 1).toBe(1);
        expect(t.freeBlocks).toBe(free);
        expect(t.blockBitmaps.length).toBe(groupCount * BLOCK_SIZE);
      },
    ),
    { numRuns: 60 },
  );
});
