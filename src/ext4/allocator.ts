// Block allocation for a filesystem written in one go: a cursor that hands out blocks in
// ascending order and steps over the superblock/descriptor copies of the backup groups.
// Blocks it steps over stay free. Everything handed out is recorded as intervals, from which
// the block bitmaps are drawn.
import { BLOCKS_PER_GROUP } from "./constants.ts";
import { backupGroups, type Geometry } from "./geometry.ts";

export class OutOfSpaceError extends Error {
  override name = "OutOfSpaceError";
}

export class BlockAllocator {
  /** Reserved [start, end) ranges in ascending order (superblock + descriptor copies). */
  readonly reserved: Array<[number, number]>;
  /** Handed-out [start, end) ranges in ascending order; adjacent ones are merged. */
  readonly allocated: Array<[number, number]> = [];
  private cursor: number;
  private nextReserved = 0;

  constructor(readonly geometry: Geometry) {
    this.reserved = backupGroups(geometry.groupCount).map((g) => {
      const start = g * BLOCKS_PER_GROUP;
      return [start, Math.min(start + 1 + geometry.gdtBlocks, geometry.blocksCount)] as [number, number];
    });
    this.cursor = this.reserved[0]![1];
    this.nextReserved = 1;
  }

  /** Blocks handed out so far (reserved ranges not included). */
  usedBlocks = 0;

  private record(start: number, length: number): void {
    const last = this.allocated[this.allocated.length - 1];
    if (last && last[1] === start) last[1] = start + length;
    else this.allocated.push([start, start + length]);
    this.usedBlocks += length;
  }

  /** Moves the cursor past any reserved range it is inside of. */
  private skipReserved(): void {
    while (this.nextReserved < this.reserved.length && this.reserved[this.nextReserved]![0] <= this.cursor) {
      const [, end] = this.reserved[this.nextReserved]!;
      if (this.cursor < end) this.cursor = end;
      this.nextReserved++;
    }
  }

  /** Blocks available before the next reserved range (or the end). */
  private room(): number {
    const limit = this.nextReserved < this.reserved.length ? this.reserved[this.nextReserved]![0] : this.geometry.blocksCount;
    return limit - this.cursor;
  }

  /** `length` contiguous blocks; returns the first. */
  contiguous(length: number, what: string): number {
    if (length === 0) return 0;
    for (;;) {
      this.skipReserved();
      if (this.cursor + length > this.geometry.blocksCount) {
        throw new OutOfSpaceError(`no room for ${length} contiguous blocks (${what})`);
      }
      if (this.room() >= length) break;
      this.cursor = this.reserved[this.nextReserved]![1];
      this.nextReserved++;
    }
    const start = this.cursor;
    this.cursor += length;
    this.record(start, length);
    return start;
  }

  /** `length` blocks as few runs as possible; appends [start, length] pairs to `out`. */
  runs(length: number, what: string, out: number[]): void {
    let left = length;
    while (left > 0) {
      this.skipReserved();
      const room = this.room();
      if (room <= 0 || this.cursor >= this.geometry.blocksCount) {
        throw new OutOfSpaceError(`no room for ${left} more blocks (${what})`);
      }
      const take = Math.min(room, left);
      out.push(this.cursor, take);
      this.record(this.cursor, take);
      this.cursor += take;
      left -= take;
    }
  }
}
