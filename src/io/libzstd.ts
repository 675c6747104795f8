// The system's libzstd through bun:ffi: one binding for the layer decoder (src/oci/zstd.ts)
// and the bundle encoder (src/bundle/zstd-compress.ts). Loaded on first use; null where the
// library is missing (other systems; the callers fall back or say what to install).
import { dlopen, FFIType } from "bun:ffi";

function open() {
  if (process.platform !== "linux") return null;
  for (const name of ["libzstd.so.1", "libzstd.so"]) {
    try {
      return dlopen(name, {
        ZSTD_createDStream: { args: [], returns: FFIType.ptr },
        ZSTD_freeDStream: { args: [FFIType.ptr], returns: FFIType.u64 },
        ZSTD_initDStream: { args: [FFIType.ptr], returns: FFIType.u64 },
        ZSTD_decompressStream: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.u64 },
        ZSTD_DCtx_setParameter: { args: [FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.u64 },
        ZSTD_createCCtx: { args: [], returns: FFIType.ptr },
        ZSTD_freeCCtx: { args: [FFIType.ptr], returns: FFIType.u64 },
        ZSTD_CCtx_setParameter: { args: [FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.u64 },
        ZSTD_compressStream2: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.u64 },
        ZSTD_isError: { args: [FFIType.u64], returns: FFIType.u32 },
        ZSTD_getErrorName: { args: [FFIType.u64], returns: FFIType.ptr },
      });
    } catch {
      // try the next name
    }
  }
  return null;
}

export type LibZstd = NonNullable<ReturnType<typeof open>>["symbols"];

let lib: ReturnType<typeof open> | undefined;

export function libzstd(): LibZstd | null {
  lib ??= open();
  return lib?.symbols ?? null;
}
