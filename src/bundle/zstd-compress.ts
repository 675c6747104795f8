// zstd compression through the system's libzstd (bun:ffi), streaming with a bounded buffer and
// libzstd's own worker threads: a bundle of a 1 GiB image compresses as it is written, at a
// level Bun's zlib stream offers no multithreading for.
import { ptr, CString } from "bun:ffi";
import { libzstd, type LibZstd } from "../io/libzstd.ts";

const ZSTD_c_compressionLevel = 100;
const ZSTD_c_checksumFlag = 201;
const ZSTD_c_nbWorkers = 400;
const ZSTD_e_continue = 0;
const ZSTD_e_end = 2;
const OUT_SIZE = 1 << 20;

export interface ZstdCompressOptions {
  level: number;
  /** libzstd worker threads (0: compress on the calling thread). */
  workers?: number;
}

/**
 * A zstd compressor: write() input pieces, end() once; `emit` gets each compressed piece (a
 * view valid only during the call). Throws where libzstd is missing.
 */
export class ZstdCompressor {
  private readonly z: LibZstd;
  private cctx: ReturnType<LibZstd["ZSTD_createCCtx"]>;
  private readonly input = new BigUint64Array(3);
  private readonly output = new BigUint64Array(3);
  private readonly out = new Uint8Array(OUT_SIZE);

  constructor(opts: ZstdCompressOptions, private readonly emit: (piece: Uint8Array) => void) {
    const z = libzstd();
    if (!z) throw new Error("zstd compression needs libzstd (Debian package libzstd1)");
    this.z = z;
    this.cctx = this.z.ZSTD_createCCtx();
    if (!this.cctx) throw new Error("ZSTD_createCCtx failed");
    this.check(this.z.ZSTD_CCtx_setParameter(this.cctx, ZSTD_c_compressionLevel, opts.level));
    this.check(this.z.ZSTD_CCtx_setParameter(this.cctx, ZSTD_c_checksumFlag, 1));
    // Multithreading is optional in libzstd builds; without it the call fails and we run single-threaded.
    if ((opts.workers ?? 0) > 0) this.z.ZSTD_CCtx_setParameter(this.cctx, ZSTD_c_nbWorkers, opts.workers!);
  }

  private check(ret: bigint | number): void {
    const r = BigInt(ret);
    if (this.z.ZSTD_isError(r)) throw new Error(`zstd: ${new CString(this.z.ZSTD_getErrorName(r)!)}`);
  }

  private run(data: Uint8Array, mode: number): void {
    if (!this.cctx) throw new Error("zstd: compressor already ended");
    const keep = data.length > 0 ? data : new Uint8Array(1);
    this.input[0] = BigInt(ptr(keep));
    this.input[1] = BigInt(data.length);
    this.input[2] = 0n;
    for (;;) {
      this.output[0] = BigInt(ptr(this.out));
      this.output[1] = BigInt(OUT_SIZE);
      this.output[2] = 0n;
      const ret = BigInt(this.z.ZSTD_compressStream2(this.cctx, ptr(this.output), ptr(this.input), mode));
      this.check(ret);
      const produced = Number(this.output[2]);
      if (produced > 0) this.emit(this.out.subarray(0, produced));
      const consumed = Number(this.input[2]) >= data.length;
      if (mode === ZSTD_e_end ? ret === 0n : consumed && produced < OUT_SIZE) return;
    }
  }

  write(data: Uint8Array): void {
    if (data.length > 0) this.run(data, ZSTD_e_continue);
  }

  end(): void {
    this.run(new Uint8Array(0), ZSTD_e_end);
    this.free();
  }

  free(): void {
    if (this.cctx) this.z.ZSTD_freeCCtx(this.cctx);
    this.cctx = null;
  }
}
