// The system's libzstd through bun:ffi: one binding for the layer decoder (src/oci/zstd.ts)
// and the bundle encoder (src/bundle/zstd-compress.ts). Loaded on first use; null where the
// library is missing (other systems; the callers fall back or say what to install).
import { dlopen, FFIType, type FFIFunction } from "bun:ffi";

/** The system's libzstd with `symbols` bound, or null where it (or one of them) is missing. */
function openWith<Fns extends Record<string, FFIFunction>>(symbols: Fns) {
  if (process.platform !== "linux") return null;
  for (const name of ["libzstd.so.1", "libzstd.so"]) {
    try {
      return dlopen(name, symbols);
    } catch {
      // try the next name
    }
  }
  return null;
}

function open() {
  return openWith({
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
}

export type LibZstd = NonNullable<ReturnType<typeof open>>["symbols"];

let lib: ReturnType<typeof open> | undefined;

export function libzstd(): LibZstd | null {
  lib ??= open();
  return lib?.symbols ?? null;
}

/**
 * libzstd's buffer-less decoding API (ZSTD_decompressContinue and friends): the caller feeds
 * exactly the bytes asked for and keeps the window in its own output memory, so blocks decode
 * straight into place. Part of zstd.h's static-linking section: bound apart, so that a
 * libzstd without these exports still gives the streaming API.
 */
function openBlockApi() {
  return openWith({
    ZSTD_createDCtx: { args: [], returns: FFIType.ptr },
    ZSTD_freeDCtx: { args: [FFIType.ptr], returns: FFIType.u64 },
    ZSTD_DCtx_setParameter: { args: [FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.u64 },
    ZSTD_decompressBegin: { args: [FFIType.ptr], returns: FFIType.u64 },
    ZSTD_nextSrcSizeToDecompress: { args: [FFIType.ptr], returns: FFIType.u64 },
    ZSTD_decompressContinue: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr, FFIType.u64], returns: FFIType.u64 },
    ZSTD_getFrameHeader: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.u64 },
    ZSTD_isError: { args: [FFIType.u64], returns: FFIType.u32 },
    ZSTD_getErrorName: { args: [FFIType.u64], returns: FFIType.ptr },
  });
}

export type LibZstdBlocks = NonNullable<ReturnType<typeof openBlockApi>>["symbols"];

let blockLib: ReturnType<typeof openBlockApi> | undefined;

export function libzstdBlocks(): LibZstdBlocks | null {
  blockLib ??= openBlockApi();
  return blockLib?.symbols ?? null;
}
