// gzip layers inflated straight into the caller's memory (the layer worker's output ring,
// inflate-worker.ts) by node:zlib's own gunzip handle, driven synchronously through the
// interface Node's zlib module uses for its *Sync functions: writeSync(flush, input, inOffset,
// inLength, output, outOffset, outLength), the counts left in `_writeState`, errors through
// the handle's onerror. Bun implements that interface too.
//
// Why not the stream: it hands every piece out in a fresh buffer from Bun's thread pool, which
// for the Debian layer (226 MB) meant ~40,000 new pages to fault in, a copy of every byte into
// the ring and a thread hop per piece. Measured in memory, same blob, same run: the stream
// 0.79-1.01 s of CPU, this 0.34 s (the system's libz through bun:ffi, also in place: 0.64-0.79 s;
// Bun's own zlib inflates faster). The handle is internal API, so it is checked for before use
// (GunzipInPlace.create returns null where it is missing or different) and the stream remains
// the fallback; test/oci/gzip.test.ts fails if this Bun stops offering it.
//
// Semantics are the handle's, as with the stream: members one after another are inflated in
// turn (anything else after a member is read as the next one, so garbage there is an error),
// and zero bytes after the last member are ignored (padding).
import zlib from "node:zlib";

export class GzipError extends Error {
  override name = "GzipError";
}

/** The parts of node:zlib's internal handle this drives (see the top of this file). */
interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOffset: number, inLength: number, output: Uint8Array, outOffset: number, outLength: number): void;
  /** zlib's message, its return code, and that code's name ("Z_DATA_ERROR"). */
  onerror: (message: string, errno: number, code?: string) => void;
  close(): void;
}

const EMPTY = new Uint8Array(0);

export class GunzipInPlace {
  /** Input and output positions after the last step. */
  inPos = 0;
  outPos = 0;
  /** The stream ended (its last member, then only padding or nothing): the rest of the input is ignored. */
  private ended = false;
  private error: string | null = null;

  private constructor(
    private readonly stream: zlib.Gunzip,
    private readonly handle: ZlibHandle,
    /** [avail_out, avail_in] after each writeSync. */
    private readonly state: Uint32Array,
  ) {
    // Worded as node:zlib's stream words it (errorText): "Z_DATA_ERROR: incorrect header check".
    handle.onerror = (message, _errno, code) => void (this.error ??= code ? `${code}: ${message}` : message);
  }

  /** A gunzip driven in place, or null where this runtime's node:zlib lacks the interface. */
  static create(): GunzipInPlace | null {
    const stream = zlib.createGunzip();
    // Internal fields, not in the typings: looked at as unknown, used only once they check out.
    const internals = stream as unknown as { _handle?: Partial<ZlibHandle> | null; _writeState?: unknown };
    const handle = internals._handle;
    const state = internals._writeState;
    if (!handle || typeof handle.writeSync !== "function" || typeof handle.close !== "function" || !(state instanceof Uint32Array) || state.length < 2) {
      stream.destroy();
      return null;
    }
    return new GunzipInPlace(stream, handle as ZlibHandle, state);
  }

  /**
   * One inflate call: input `src[inPos, inLength)` into `dst[outPos, dst.length)` (which must
   * have room). Afterwards this.inPos and this.outPos say how far each got; zlib may owe
   * output: call again with more room while the output came back full.
   */
  step(src: Uint8Array, inPos: number, inLength: number, dst: Uint8Array, outPos: number): void {
    this.inPos = inPos;
    this.outPos = outPos;
    if (this.ended) {
      this.inPos = inLength;
      return;
    }
    const inAvail = inLength - inPos;
    const outAvail = dst.length - outPos;
    this.handle.writeSync(zlib.constants.Z_NO_FLUSH, inAvail > 0 ? src : EMPTY, inAvail > 0 ? inPos : 0, inAvail, dst, outPos, outAvail);
    this.check();
    const [outLeft, inLeft] = [this.state[0]!, this.state[1]!];
    this.inPos = inLength - inLeft;
    this.outPos = dst.length - outLeft;
    // Input and room, and nothing moved: the stream has ended and what follows is padding
    // (zeros, which the handle does not take for another member).
    if (inAvail > 0 && outAvail > 0 && inLeft === inAvail && outLeft === outAvail) {
      this.ended = true;
      this.inPos = inLength;
    }
  }

  /**
   * After the last input: what zlib still owes, into `dst` from `outPos` (this.outPos says how
   * far). Returns whether `dst` came back full (call again). Throws "unexpected end of file"
   * when the input stopped inside a member (a truncated blob, or none at all).
   */
  finish(dst: Uint8Array, outPos: number): boolean {
    this.outPos = outPos;
    if (this.ended) return false;
    const outAvail = dst.length - outPos;
    this.handle.writeSync(zlib.constants.Z_FINISH, EMPTY, 0, 0, dst, outPos, outAvail);
    this.check();
    const outLeft = this.state[0]!;
    this.outPos = dst.length - outLeft;
    return outLeft === 0;
  }

  close(): void {
    this.handle.close();
    this.stream.destroy();
  }

  private check(): void {
    if (this.error !== null) throw new GzipError(this.error);
  }
}
