// File data copied while the tar is still being read. The plan puts regular files' data first,
// in source order, right after group 0's descriptors (plan.ts), so where each file goes depends
// only on the files before it and on the descriptor table's size. This predictor follows the
// same rule (placeFileData) as the tar's entries arrive and hands each file's copies to a
// worker at once; once the plan exists, its placement is checked against the prediction
// (PlacementDigest) and the copies are kept only when they are identical. Anything the
// prediction could not know (a later entry replacing a file, a different descriptor table
// size, data beyond the guessed size) makes the writer discard them and copy again.
import type { ByteSource } from "../tree/index.ts";
import { BlockAllocator, OutOfSpaceError } from "./allocator.ts";
import * as C from "./constants.ts";
import type { ExtentList } from "./extents.ts";
import type { Geometry } from "./geometry.ts";
import { placeFileData, type PlannedInode } from "./plan.ts";
import { CopyStream } from "../io/copy-stream.ts";

const BS = C.BLOCK_SIZE;

/**
 * Extents at least this long, once LARGE_BYTES_STREAMED of them have been handed to the worker,
 * are copied by the caller on its own thread after the metadata: bulk copies measured much
 * slower from a Bun worker while the main thread reads the same bulk (8 GiB: 45 s streamed
 * from the worker, 15 s on the main thread). A rootfs's few large files (Debian: 9 MiB) are
 * still streamed, so the caller has none left to copy.
 */
export const LARGE_EXTENT_BYTES = 4 << 20;
export const LARGE_BYTES_STREAMED = 64 << 20;
/** Descriptors per descriptor-table block; the table's size is what data placement depends on. */
const GROUPS_PER_GDT_BLOCK = C.BLOCK_SIZE / C.DESC_SIZE;

/**
 * A sequence of (data offset, extents) pairs reduced to a sha256, so that millions of files
 * can be compared without keeping the predicted extents.
 */
export class PlacementDigest {
  private readonly hash = new Bun.CryptoHasher("sha256");
  private readonly buf = new Float64Array(8192);
  private fill = 0;
  count = 0;

  add(offset: number, extents: ExtentList): void {
    this.push(offset);
    this.push(extents.length);
    for (let i = 0; i < extents.length; i++) this.push(extents[i]!);
    this.count++;
  }

  private push(v: number): void {
    this.buf[this.fill++] = v;
    if (this.fill === this.buf.length) this.drain();
  }

  private drain(): void {
    this.hash.update(new Uint8Array(this.buf.buffer, 0, this.fill * 8));
    this.fill = 0;
  }

  digest(): string {
    this.drain();
    return this.hash.digest("hex");
  }
}

/** The geometry the predictor assumes: the most groups one descriptor table of the likely size covers. */
export function predictionGeometry(likelyBlocks: number): Geometry {
  const groups = Math.max(1, Math.ceil(likelyBlocks / C.BLOCKS_PER_GROUP));
  const gdtBlocks = Math.ceil(groups / GROUPS_PER_GDT_BLOCK);
  const groupCount = gdtBlocks * GROUPS_PER_GDT_BLOCK;
  return {
    blocksCount: groupCount * C.BLOCKS_PER_GROUP,
    groupCount,
    inodesPerGroup: 0,
    inodeTableBlocksPerGroup: 0,
    gdtBlocks,
    descSize: C.DESC_SIZE,
  };
}

export class StreamedFileData {
  private alloc: BlockAllocator | null;
  private readonly digest = new PlacementDigest();
  private readonly copies: CopyStream;
  /** Why the prediction was abandoned, if it was. */
  failure: string | null = null;
  /** Bytes handed to the copier, or left for the caller (large). */
  bytes = 0;
  /** Large extents left for the caller to copy: flat [srcOffset, dstOffset, length, ...]. */
  readonly large: number[] = [];
  /** Bytes of large extents seen so far (the first LARGE_BYTES_STREAMED go to the worker). */
  private largeStreamed = 0;

  constructor(
    readonly source: ByteSource,
    sourceFd: number,
    outFd: number,
    geometry: Geometry,
  ) {
    this.alloc = new BlockAllocator(geometry);
    this.copies = new CopyStream(sourceFd, outFd, BS);
    this.copies.warmUp();
  }

  /** A regular file of `size` bytes at `offset` in the source; `runs` its non-zero 4 KiB block runs when it has zero blocks. */
  file(offset: number, size: number, runs: Uint32Array | undefined): void {
    const alloc = this.alloc;
    if (!alloc || size <= 0) return;
    const logical: ArrayLike<number> = runs ?? [0, Math.ceil(size / BS)];
    if (logical.length === 0) return;
    const extents: ExtentList = [];
    try {
      placeFileData(alloc, logical, extents);
    } catch (err) {
      if (!(err instanceof OutOfSpaceError)) throw err;
      this.abandon(`the data outgrew the ${(alloc.geometry.blocksCount * BS / 2 ** 30).toFixed(0)} GiB the prediction assumed`);
      return;
    }
    this.digest.add(offset, extents);
    for (let i = 0; i < extents.length; i += 3) {
      const fileOffset = extents[i]! * BS;
      const length = Math.min(extents[i + 2]! * BS, size - fileOffset);
      if (length >= LARGE_EXTENT_BYTES && (this.largeStreamed += length) > LARGE_BYTES_STREAMED) this.large.push(offset + fileOffset, extents[i + 1]! * BS, length);
      else this.copies.add(offset + fileOffset, extents[i + 1]! * BS, length);
      this.bytes += length;
    }
  }

  /** Hands queued copies to the worker (call now and then, e.g. after each chunk of input). */
  flush(): void {
    if (this.alloc) this.copies.flush();
  }

  abandon(why: string): void {
    this.failure ??= why;
    this.alloc = null;
  }

  /**
   * True when `dataOrder`'s files from `sourceIndex` (which come first) were placed exactly
   * as predicted, so the copies made are the image's file data.
   */
  matches(dataOrder: PlannedInode[], sourceIndex: number, geometry: Geometry): boolean {
    if (this.failure !== null) return false;
    if (geometry.gdtBlocks !== this.alloc!.geometry.gdtBlocks) {
      this.abandon(`the image needs ${geometry.gdtBlocks} descriptor blocks, the prediction assumed ${this.alloc!.geometry.gdtBlocks}`);
      return false;
    }
    const planned = new PlacementDigest();
    for (const p of dataOrder) {
      const d = p.node.data;
      if (!d || p.node.bytes || d.source !== sourceIndex) break;
      planned.add(d.offset, p.extents);
    }
    if (planned.count !== this.digest.count || planned.digest() !== this.digest.digest()) {
      this.abandon(`the plan placed ${planned.count} files differently from the ${this.digest.count} predicted (entries replaced later in the tar?)`);
      return false;
    }
    return true;
  }

  /** Number of files the prediction covers. */
  get files(): number {
    return this.digest.count;
  }

  /** Waits for every copy; rejects with the copier's error. */
  finish(): Promise<void> {
    return this.copies.finish();
  }

  /** Stops copying at once (on failure). */
  stop(): Promise<void> {
    return this.copies.stop();
  }
}
