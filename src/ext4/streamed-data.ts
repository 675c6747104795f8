// File data written into the image while the tar is still being read. The plan puts regular
// files' data first, in source order, right after group 0's descriptors (plan.ts), each file's
// non-zero blocks allocated in order from one cursor (placeFileData). So where each block goes
// follows from the files before it and from the descriptor table's size alone, and can be
// decided as the block goes by: StreamedFileData sees each file's bytes as the tar parser does
// (it is the parser's FileDataSink), finds its all-zero 4 KiB blocks, allocates the others
// by the same rule and copies them into the image through a StagedBlockWriter. No byte of the
// tar is read twice. Once the plan exists, its placement is checked against this one (a digest
// of both) and the writes are kept only when they are identical; anything this could not know
// (a later entry replacing a file, a different descriptor table size, data beyond the guessed
// size) makes the writer discard them and copy again.
//
// When the source is a spool of a stream (standard input, a layer), the SpoolPolicy lets this
// hold the file bytes in place of the spool (see src/tree/spool-policy.ts): every piece
// written is then recorded, so it can be written back should the copies be discarded.
import type { ByteSource, FileDataSink, SpoolPolicy } from "../tree/index.ts";
import { isZeroRange } from "../io/zeros.ts";
import { BlockAllocator, OutOfSpaceError } from "./allocator.ts";
import * as C from "./constants.ts";
import { appendExtents, type ExtentList } from "./extents.ts";
import type { Geometry } from "./geometry.ts";
import type { PlannedInode } from "./plan.ts";
import { type BlockTarget, fdReader } from "../io/block-io.ts";
import type { IoOptions } from "../io/options.ts";
import { StagedBlockWriter, type StagedWriteStats } from "../io/staged-writer.ts";

const BS = C.BLOCK_SIZE;

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

/** True when the 4 KiB block at `at` is all zero; most data blocks are settled by three sampled bytes. */
function zeroBlock(buf: Uint8Array, at: number): boolean {
  if (buf[at] !== 0 || buf[at + BS - 1] !== 0 || buf[at + (BS >> 1)] !== 0) return false;
  return isZeroRange(buf, at, at + BS);
}

export class StreamedFileData implements FileDataSink {
  private alloc: BlockAllocator | null;
  private readonly digest = new PlacementDigest();
  private readonly writer: StagedBlockWriter;
  /** Why the prediction was abandoned, if it was. */
  failure: string | null = null;
  /** File bytes written. */
  bytes = 0;

  // The file being read.
  private offset = 0;
  private size = 0;
  /** Bytes of it seen so far. */
  private seen = 0;
  private readonly extents: ExtentList = [];
  /** Its non-zero block runs so far, [first, count, ...]. */
  private readonly runs: number[] = [];
  private anyZero = false;
  /** A block cut by the end of a chunk, completed from the next one. */
  private readonly carry = new Uint8Array(BS);
  private carryFill = 0;
  private readonly physical: number[] = [];
  /**
   * While holding for a spool: every piece written, as (stream offset, image block, bytes)
   * triples, and the bytes of a carried block that could not be placed, so that restoreSource
   * can write the data back into the spool should the copies be discarded.
   */
  private placements: Float64Array | null = null;
  private placementCount = 0;
  private unplaced: { offset: number; bytes: Uint8Array } | null = null;

  /**
   * `spool`, when `source` is a spool being filled as the stream is parsed: this holds the
   * file bytes in place of the spool (recording every piece written, 24 bytes each) until
   * it abandons the prediction.
   */
  constructor(
    readonly source: ByteSource,
    private readonly outFd: number,
    geometry: Geometry,
    private readonly spool: SpoolPolicy | null = null,
    io: IoOptions = {},
  ) {
    this.alloc = new BlockAllocator(geometry);
    this.writer = new StagedBlockWriter(outFd, BS, io);
    if (spool) {
      this.placements = new Float64Array(3 * 1024);
      spool.hold();
    }
  }

  begin(dataOffset: number, size: number): void {
    this.offset = dataOffset;
    this.size = size;
    this.seen = 0;
    // Reused from file to file: end() hands the digest and the caller copies, never these arrays.
    this.extents.length = 0;
    this.runs.length = 0;
    this.anyZero = false;
    this.carryFill = 0;
  }

  data(buf: Uint8Array, start: number, end: number): void {
    let p = start;
    if (this.carryFill > 0) {
      const take = Math.min(BS - this.carryFill, end - p);
      this.carry.set(buf.subarray(p, p + take), this.carryFill);
      this.carryFill += take;
      p += take;
      this.seen += take;
      if (this.carryFill < BS && this.seen < this.size) return;
      this.blocks(this.carry, 0, this.carryFill, (this.seen - this.carryFill) / BS);
      this.carryFill = 0;
    }
    if (p === end) return;
    const firstBlock = this.seen / BS;
    const fileEnds = this.seen + (end - p) === this.size;
    // Whole blocks, plus the file's last partial block when the file ends in this chunk.
    const whole = Math.floor((end - p) / BS) * BS;
    const upTo = fileEnds ? end : p + whole;
    if (upTo > p) this.blocks(buf, p, upTo, firstBlock);
    if (upTo < end) {
      this.carry.set(buf.subarray(upTo, end), 0);
      this.carryFill = end - upTo;
    }
    this.seen += end - p;
  }

  /**
   * Bytes `buf[from, to)`, the file's blocks from `firstBlock` on (whole blocks, except that the
   * last may be the file's short last block): finds the zero ones and places the others.
   */
  private blocks(buf: Uint8Array, from: number, to: number, firstBlock: number): void {
    let runStart = -1;
    let q = from;
    let stride = 1; // zero blocks tested at once: doubles along a zero run (long holes cost little)
    while (q < to) {
      const len = Math.min(BS, to - q);
      if (runStart < 0 && len === BS && stride > 1) {
        const n = Math.min(stride, Math.floor((to - q) / BS));
        if (n > 1 && isZeroRange(buf, q, q + n * BS)) {
          this.anyZero = true;
          q += n * BS;
          stride = n * 2;
          continue;
        }
        stride = 1;
      }
      const zero = len === BS ? zeroBlock(buf, q) : isZeroRange(buf, q, q + len);
      if (zero) {
        this.anyZero = true;
        if (runStart >= 0) {
          this.place(buf, runStart, q, firstBlock + (runStart - from) / BS);
          runStart = -1;
        }
        stride = 2;
      } else if (runStart < 0) {
        runStart = q;
        stride = 1;
      }
      q += len;
    }
    if (runStart >= 0) this.place(buf, runStart, to, firstBlock + (runStart - from) / BS);
  }

  /** Allocates and writes the non-zero blocks `buf[from, to)`, which are the file's blocks from `logical` on. */
  private place(buf: Uint8Array, from: number, to: number, logical: number): void {
    const count = Math.ceil((to - from) / BS);
    const runs = this.runs;
    const n = runs.length;
    if (n > 0 && runs[n - 2]! + runs[n - 1]! === logical) runs[n - 1] = runs[n - 1]! + count;
    else runs.push(logical, count);
    const alloc = this.alloc;
    if (!alloc) return;
    const physical = this.physical;
    physical.length = 0;
    try {
      alloc.runs(count, "file data", physical);
    } catch (err) {
      if (!(err instanceof OutOfSpaceError)) throw err;
      this.abandon(`the data outgrew the ${((alloc.geometry.blocksCount * BS) / 2 ** 30).toFixed(0)} GiB the prediction assumed`);
      // A carried block holds bytes of the previous chunk, which the spool left out while this
      // held them: keep them for restoreSource.
      if (this.placements && buf === this.carry) this.unplaced = { offset: this.offset + logical * BS, bytes: this.carry.slice(from, to) };
      return;
    }
    appendExtents(this.extents, logical, physical);
    let at = from;
    for (let i = 0; i < physical.length; i += 2) {
      const until = Math.min(to, at + physical[i + 1]! * BS);
      this.writer.put(physical[i]!, buf, at, until);
      if (this.placements) this.recordPlacement(this.offset + logical * BS + (at - from), physical[i]!, until - at);
      at = until;
    }
    this.bytes += to - from;
  }

  private recordPlacement(streamOffset: number, block: number, bytes: number): void {
    let p = this.placements!;
    if (this.placementCount * 3 === p.length) {
      const grown = new Float64Array(p.length * 2);
      grown.set(p);
      this.placements = p = grown;
    }
    const i = this.placementCount++ * 3;
    p[i] = streamOffset;
    p[i + 1] = block;
    p[i + 2] = bytes;
  }

  /**
   * After the copies were discarded. Holding for a spool: waits for every write, then copies
   * each recorded piece back from the image into the spool at its stream offset (and the
   * unplaced carried block), so the spool holds all the file data again. Otherwise: stops the
   * writes at once.
   */
  async restoreSource(): Promise<void> {
    const p = this.placements;
    const spool = this.spool;
    if (!p || !spool) {
      await this.writer.stop(); // nothing to restore: whatever is still being written is dropped
      return;
    }
    await this.writer.finish();
    const image = fdReader(this.outFd, "the image being written");
    const buf = new Uint8Array(4 << 20);
    for (let i = 0; i < this.placementCount * 3; i += 3) {
      const [offset, block, bytes] = [p[i]!, p[i + 1]!, p[i + 2]!];
      for (let done = 0; done < bytes; done += buf.length) {
        const piece = buf.subarray(0, Math.min(buf.length, bytes - done));
        image.readInto(piece, block * BS + done);
        spool.restore(piece, offset + done);
      }
    }
    if (this.unplaced) spool.restore(this.unplaced.bytes, this.unplaced.offset);
  }

  end(): Uint32Array | undefined {
    if (this.carryFill > 0 || this.seen !== this.size) throw new Error(`internal: file data at ${this.offset} ended after ${this.seen} of ${this.size} bytes`);
    if (this.alloc && this.extents.length > 0) this.digest.add(this.offset, this.extents);
    return this.anyZero ? Uint32Array.from(this.runs) : undefined;
  }

  abandon(why: string): void {
    this.failure ??= why;
    this.alloc = null;
    this.spool?.release();
  }

  /**
   * True when `dataOrder`'s files from `sourceIndex` (which come first) were placed exactly
   * as predicted, so the blocks written are the image's file data.
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

  /** Milliseconds spent waiting for the disk while reading (see StagedBlockWriter). */
  get waitedMs(): number {
    return this.writer.waitedMs;
  }

  /**
   * The same writer for the image's other blocks (directories, extent trees, inode tables),
   * once the plan has kept the streamed data (matches): they then go to the disk the way the
   * file data did, straight from already-mapped memory and on the writer thread, instead of
   * through a fresh buffer and the page cache that the final fsync would have to write back.
   * Null when no file data was written: starting the writer thread only for the metadata of a
   * tiny image cost more (~15 ms) than it saves.
   */
  metadataTarget(): BlockTarget | null {
    if (this.failure !== null) throw new Error(`internal: metadata through an abandoned stream (${this.failure})`);
    return this.writer.started ? this.writer.asBlockTarget() : null;
  }

  /** Starts writing the last, partly filled slot (the input has ended), so it overlaps the plan. */
  flush(): void {
    this.writer.flush();
  }

  /** Waits for every write; rejects with the writer's error. */
  finish(): Promise<StagedWriteStats> {
    return this.writer.finish();
  }

  /** Stops writing at once (on failure). */
  stop(): Promise<void> {
    return this.writer.stop();
  }
}
