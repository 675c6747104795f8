// zstd decompression through the system's libzstd (bun:ffi), where it exists. Bun's built-in
// zstd stream decompressed a Debian layer at about half the speed of the `zstd` tool (notes in
// shared/oci-notes.md; 0.53 vs 0.26 s for 226 MB); calling libzstd's streaming decoder
// directly, with large buffers and no stream machinery between calls, runs at the library's
// own speed. Where libzstd cannot be loaded the caller falls back to node:zlib.
import { ptr, CString } from "bun:ffi";
import { libzstd, libzstdBlocks, type LibZstd, type LibZstdBlocks } from "../io/libzstd.ts";

/** True when libzstd can be used (`disabled` forces the fallback, for tests and comparisons). */
export function nativeZstdAvailable(disabled = false): boolean {
  if (disabled) return false;
  return libzstd() !== null;
}

/** Output piece size: large, so the per-call overhead of FFI stays negligible. */
const OUT_SIZE = 1 << 20;
/**
 * Output buffers are reused in turn: a fresh 1 MiB buffer per piece cost more than the
 * decoding itself (zero-filling and faulting in 226 MB of new pages for a Debian layer:
 * ~0.5 s of this thread). A yielded piece stays valid until RING - 1 more have been yielded;
 * layer consumers copy or hash each piece before they ask for the next.
 */
const RING = 4;

export class ZstdError extends Error {
  override name = "ZstdError";
}

const EMPTY = new Uint8Array(1);

/** A libzstd return value, or the ZstdError it stands for. */
function checked(z: Pick<LibZstd, "ZSTD_isError" | "ZSTD_getErrorName">, ret: bigint | number): bigint {
  const r = BigInt(ret);
  if (z.ZSTD_isError(r)) throw new ZstdError(`zstd: ${new CString(z.ZSTD_getErrorName(r)!)}`);
  return r;
}

/** ZSTD_d_forceIgnoreChecksum (zstd.h's ZSTD_d_experimentalParam3, libzstd >= 1.4.7). */
const D_FORCE_IGNORE_CHECKSUM = 1002;

/**
 * One zstd stream (any number of frames) decoded call by call into memory the caller owns:
 * each step() moves the input and output positions on, so a consumer can decode straight
 * into the memory it hands on (the layer worker's output ring) instead of copying.
 */
export class ZstdStream {
  private readonly z: LibZstd;
  private ds: ReturnType<LibZstd["ZSTD_createDStream"]> | null;
  // ZSTD_inBuffer and ZSTD_outBuffer: { pointer, size, pos }, three size_t each.
  private readonly input = new BigUint64Array(3);
  private readonly output = new BigUint64Array(3);
  private readonly inPtr = ptr(this.input);
  private readonly outPtr = ptr(this.output);
  /** Input and output positions after the last step. */
  inPos = 0;
  outPos = 0;
  /** libzstd's last answer: 0 when a frame has just ended (nothing is owed). */
  private pending = 0n;

  /**
   * `skipFrameChecksum`: leave the frames' XXH64 content checksums unchecked, for a caller that
   * hashes the same bytes with sha256 anyway (a layer's blob digest or diff_id): ~14 ms of the
   * 157 ms the Debian layer takes to decode. A libzstd without the option checks them.
   */
  constructor(opts: { skipFrameChecksum?: boolean } = {}) {
    const z = libzstd();
    if (!z) throw new ZstdError("libzstd is not available");
    this.z = z;
    this.ds = z.ZSTD_createDStream();
    if (!this.ds) throw new ZstdError("ZSTD_createDStream failed");
    this.check(z.ZSTD_initDStream(this.ds));
    if (opts.skipFrameChecksum) z.ZSTD_DCtx_setParameter(this.ds, D_FORCE_IGNORE_CHECKSUM, 1);
  }

  /** True between frames: the input may end here. */
  get atFrameEnd(): boolean {
    return this.pending === 0n;
  }

  /**
   * One decoder call: input `src[inPos, inLength)` into `dst[outPos, dst.length)`. Afterwards
   * this.inPos and this.outPos say how far each got. The decoder may keep input it has read
   * and owe its output: call again with more room while the output came back full.
   */
  step(src: Uint8Array, inPos: number, inLength: number, dst: Uint8Array, outPos: number): void {
    const { input, output } = this;
    input[0] = BigInt(ptr(inLength > 0 ? src : EMPTY));
    input[1] = BigInt(inLength);
    input[2] = BigInt(inPos);
    output[0] = BigInt(ptr(dst));
    output[1] = BigInt(dst.length);
    output[2] = BigInt(outPos);
    this.pending = this.check(this.z.ZSTD_decompressStream(this.ds, this.outPtr, this.inPtr));
    this.inPos = Number(input[2]);
    this.outPos = Number(output[2]);
  }

  /**
   * What the decoder still holds of an unfinished frame, into `dst` from `outPos` (this.outPos
   * says how far): a call with no input once a frame has ended would only ask for the next
   * frame's header. Returns whether anything came out.
   */
  drain(dst: Uint8Array, outPos: number): boolean {
    if (this.pending === 0n) {
      this.outPos = outPos;
      return false;
    }
    this.step(EMPTY, 0, 0, dst, outPos);
    return this.outPos > outPos;
  }

  /** Throws when the stream stopped inside a frame (a truncated blob). */
  checkEnded(): void {
    if (this.pending !== 0n) throw new ZstdError("zstd: the compressed stream ends inside a frame (truncated)");
  }

  free(): void {
    if (this.ds) this.z.ZSTD_freeDStream(this.ds);
    this.ds = null;
  }

  private check(ret: bigint | number): bigint {
    return checked(this.z, ret);
  }
}

/** The most bytes a frame header takes (ZSTD_FRAMEHEADERSIZE_MAX). */
export const ZSTD_FRAME_HEADER_MAX = 18;

/** What a frame header says (ZSTD_frameHeader's fields that matter here). */
export interface ZstdFrameInfo {
  /** Bytes of history its blocks may refer back to (0 for a skippable frame). */
  windowSize: number;
  /** The largest block it decodes to. */
  blockSizeMax: number;
}

/**
 * libzstd's buffer-less decoder (ZSTD_decompressContinue): each call takes exactly
 * nextInputSize bytes and writes a block's bytes at the given place, reading matches from the
 * output written before it. So it decodes straight into the caller's memory, with no copy out
 * of a window of its own (the streaming decoder's), on one condition: the last windowSize bytes
 * of output stay in place, contiguous before the next block or, after a jump, at the end of
 * the previous run of contiguous output (zstd keeps one such earlier segment). Measured on the
 * Debian layer in memory: 175-180 ms, against 184-194 ms for the streaming decoder.
 */
export class ZstdBlockDecoder {
  private readonly z: LibZstdBlocks;
  private dctx: ReturnType<LibZstdBlocks["ZSTD_createDCtx"]> | null;
  /** ZSTD_frameHeader, with room for the fields later versions add. */
  private readonly header = new Uint8Array(64);
  private readonly headerView = new DataView(this.header.buffer);

  /** Null where libzstd lacks the buffer-less API (it is outside zstd.h's stable section). */
  static create(opts: { skipFrameChecksum?: boolean } = {}): ZstdBlockDecoder | null {
    const z = libzstdBlocks();
    return z ? new ZstdBlockDecoder(z, opts) : null;
  }

  private constructor(z: LibZstdBlocks, opts: { skipFrameChecksum?: boolean }) {
    this.z = z;
    this.dctx = z.ZSTD_createDCtx();
    if (!this.dctx) throw new ZstdError("ZSTD_createDCtx failed");
    if (opts.skipFrameChecksum) z.ZSTD_DCtx_setParameter(this.dctx, D_FORCE_IGNORE_CHECKSUM, 1);
  }

  /**
   * The header at the start of `bytes` (a frame's first bytes, up to ZSTD_FRAME_HEADER_MAX),
   * or null when it needs more bytes than `bytes` has. Throws on a header that is not zstd's.
   */
  frameInfo(bytes: Uint8Array): ZstdFrameInfo | null {
    const r = this.check(this.z.ZSTD_getFrameHeader(ptr(this.header), ptr(bytes.length > 0 ? bytes : EMPTY), bytes.length));
    if (r > 0n) return null;
    return { windowSize: Number(this.headerView.getBigUint64(8, true)), blockSizeMax: this.headerView.getUint32(16, true) };
  }

  /** Starts a frame (every frame decodes on its own). */
  begin(): void {
    this.check(this.z.ZSTD_decompressBegin(this.dctx));
  }

  /** Bytes the next decode() takes; 0 once the frame (and its checksum) is done. */
  get nextInputSize(): number {
    return Number(this.z.ZSTD_nextSrcSizeToDecompress(this.dctx));
  }

  /**
   * Decodes `src` (exactly nextInputSize bytes) into `dst` from its start; returns the bytes
   * written (0 for a header). `dst` must hold the frame's blockSizeMax.
   */
  decode(src: Uint8Array, dst: Uint8Array): number {
    return Number(this.check(this.z.ZSTD_decompressContinue(this.dctx, ptr(dst), dst.length, ptr(src), src.length)));
  }

  free(): void {
    if (this.dctx) this.z.ZSTD_freeDCtx(this.dctx);
    this.dctx = null;
  }

  private check(ret: bigint | number): bigint {
    return checked(this.z, ret);
  }
}

/**
 * Decompresses a zstd stream (any number of frames). A yielded chunk is overwritten once
 * RING - 1 more chunks have been yielded: consume (copy, hash, parse) each before pulling on.
 * A stream that ends inside a frame is an error.
 */
export async function* zstdDecompressNative(src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const zs = new ZstdStream();
  try {
    const ring = Array.from({ length: RING }, () => new Uint8Array(OUT_SIZE));
    let turn = 0;
    const piece = (): Uint8Array => {
      const out = ring[turn]!;
      turn = (turn + 1) % RING;
      return zs.outPos === out.length ? out : out.subarray(0, zs.outPos);
    };
    for await (const chunk of src) {
      for (let inPos = 0; inPos < chunk.length || zs.outPos === OUT_SIZE; inPos = zs.inPos) {
        zs.step(chunk, inPos, chunk.length, ring[turn]!, 0);
        if (zs.outPos > 0) yield piece();
        else if (zs.inPos >= chunk.length) break;
      }
      zs.outPos = 0;
    }
    while (zs.drain(ring[turn]!, 0)) yield piece();
    zs.checkEnded();
  } finally {
    zs.free();
  }
}
