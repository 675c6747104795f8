// Reading a tar file through mapped windows (mmap) rather than read(): the parser and the file
// data sink then read the page cache in place, without the copy read() makes into a buffer
// (~30 ms of the main thread's ~140 ms pass over the Debian rootfs). A window is unmapped as
// soon as it has been pushed, so nothing may keep a view of it: the parser and the sink copy
// whatever they keep (TarParser.push's contract). Should the file shrink meanwhile, reading a
// vanished page kills the process (SIGBUS); the output is unnamed until complete, so that still
// leaves nothing behind. Callers told not to map (IoOptions.mmap false) read() instead.
import { dlopen, FFIType, toArrayBuffer } from "bun:ffi";

const PROT_READ = 1;
const MAP_PRIVATE = 2;
const MADV_SEQUENTIAL = 2;
const POSIX_FADV_WILLNEED = 3;
/** Bytes mapped at a time: few map calls, little address space. A multiple of the page size. */
const WINDOW = 32 << 20;

function openLibc() {
  if (process.platform !== "linux") return null;
  try {
    return dlopen("libc.so.6", {
      mmap: { args: [FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.ptr },
      munmap: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
      madvise: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
      posix_fadvise: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.i32], returns: FFIType.i32 },
    });
  } catch {
    return null;
  }
}

let libc: ReturnType<typeof openLibc> | undefined;

/**
 * Hands `fd`'s bytes [0, size) to `each` window by window, in order, until `each` returns false.
 * Returns the offset reached: `size`, where `each` stopped, or less where mapping is not
 * possible (the caller reads the rest).
 */
export function forEachMappedWindow(fd: number, size: number, each: (window: Uint8Array) => boolean): number {
  libc ??= openLibc();
  if (!libc) return 0;
  const { mmap, munmap, madvise, posix_fadvise } = libc.symbols;
  let position = 0;
  while (position < size) {
    const length = Math.min(WINDOW, size - position);
    const address = mmap(null, length, PROT_READ, MAP_PRIVATE, fd, position);
    if (typeof address !== "number") return position; // MAP_FAILED (or null)
    madvise(address, length, MADV_SEQUENTIAL);
    // Start reading the next window from disk now (when it is not cached), while this one is parsed.
    if (position + length < size) posix_fadvise(fd, position + length, Math.min(WINDOW, size - position - length), POSIX_FADV_WILLNEED);
    let more: boolean;
    try {
      more = each(new Uint8Array(toArrayBuffer(address, 0, length)));
    } finally {
      munmap(address, length);
    }
    position += length;
    if (!more) return position;
  }
  return position;
}
