// zstd decompression through the system's libzstd (bun:ffi), where it exists. Bun's built-in
// zstd stream decompressed a Debian layer at about half the speed of the `zstd` tool (notes in
// shared/oci-notes.md; 0.53 vs 0.26 s for 226 MB); calling libzstd's streaming decoder
// directly, with large buffers and no stream machinery between calls, runs at the library's
// own speed. Where libzstd cannot be loaded the caller falls back to node:zlib.
import { ptr, CString } from "bun:ffi";
import { libzstd } from "../io/libzstd.ts";

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

/**
 * Decompresses a zstd stream (any number of frames). A yielded chunk is overwritten once
 * RING - 1 more chunks have been yielded: consume (copy, hash, parse) each before pulling on.
 * A stream that ends inside a frame is an error.
 */
export async function* zstdDecompressNative(src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const z = libzstd();
  if (!z) throw new ZstdError("libzstd is not available");
  const ds = z.ZSTD_createDStream();
  if (!ds) throw new ZstdError("ZSTD_createDStream failed");
  // ZSTD_inBuffer and ZSTD_outBuffer: { pointer, size, pos }, three size_t each.
  const input = new BigUint64Array(3);
  const output = new BigUint64Array(3);
  const inPtr = ptr(input);
  const outPtr = ptr(output);
  const empty = new Uint8Array(1);
  let pending = 0n; // last return value: 0 when a frame just ended
  const check = (ret: bigint | number): bigint => {
    const r = BigInt(ret);
    if (z.ZSTD_isError(r)) throw new ZstdError(`zstd: ${new CString(z.ZSTD_getErrorName(r)!)}`);
    return r;
  };
  try {
    check(z.ZSTD_initDStream(ds));
    const ring = Array.from({ length: RING }, () => new Uint8Array(OUT_SIZE));
    let turn = 0;
    let out = ring[0]!;
    const step = function* (chunk: Uint8Array, length: number): Generator<Uint8Array> {
      input[0] = BigInt(ptr(chunk));
      input[1] = BigInt(length);
      input[2] = 0n;
      for (;;) {
        output[0] = BigInt(ptr(out));
        output[1] = BigInt(out.length);
        output[2] = 0n;
        pending = check(z.ZSTD_decompressStream(ds, outPtr, inPtr));
        const produced = Number(output[2]);
        const full = produced === out.length;
        if (produced > 0) {
          yield full ? out : out.subarray(0, produced);
          turn = (turn + 1) % RING;
          out = ring[turn]!;
        }
        if (Number(input[2]) >= length && !full) return;
      }
    };
    for await (const chunk of src) {
      if (chunk.length > 0) yield* step(chunk, chunk.length);
    }
    // Flush what the decoder still holds of an unfinished frame; a call with no input once a
    // frame has ended would only ask for the next frame's header.
    while (pending !== 0n) {
      let produced = 0;
      for (const piece of step(empty, 0)) {
        produced += piece.length;
        yield piece;
      }
      if (produced === 0) break;
    }
    if (pending !== 0n) throw new ZstdError("zstd: the compressed stream ends inside a frame (truncated)");
  } finally {
    z.ZSTD_freeDStream(ds);
  }
}
