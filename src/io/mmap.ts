// Read-only views of a file's pages (mmap through Bun's FFI), for reading a large input once
// without copying it into JavaScript memory. A view is valid until unmap(); callers must not
// keep references to it past that. Unavailable (null) off Linux or with BANGER_NO_MMAP set.
import { dlopen, FFIType, toArrayBuffer } from "bun:ffi";

const PROT_READ = 1;
const MAP_SHARED = 0x01;
const MAP_POPULATE = 0x8000;

function load() {
  if (process.platform !== "linux" || process.env.BANGER_NO_MMAP) return null;
  try {
    return dlopen("libc.so.6", {
      mmap: { args: [FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.ptr },
      munmap: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
    }).symbols;
  } catch {
    return null;
  }
}

const libc = load();

export interface MappedWindow {
  bytes: Uint8Array;
  unmap(): void;
}

/**
 * Maps `length` bytes of `fd` from `offset` (a multiple of the page size), populated up front.
 * Returns null when mapping is unavailable or refused, so the caller can read instead.
 */
export function mapReadOnly(fd: number, offset: number, length: number): MappedWindow | null {
  if (!libc || length === 0) return null;
  const address = libc.mmap(null, length, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, offset);
  // Success is a number; MAP_FAILED ((void *)-1) comes back as a bigint.
  if (typeof address !== "number" || address === 0) return null;
  let mapped = true;
  return {
    bytes: new Uint8Array(toArrayBuffer(address, 0, length)),
    unmap() {
      if (mapped) libc.munmap(address, length);
      mapped = false;
    },
  };
}
