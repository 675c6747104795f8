// In-kernel file-to-file copies (Linux copy_file_range), through Bun's FFI. Copying file data
// from a tar into an image this way never moves the bytes through JavaScript memory, which
// makes the data phase cost about what `cat` costs. Where the call is unavailable or refused
// (another OS, cross-filesystem copies on old kernels), callers fall back to read + write.
import { dlopen, FFIType, ptr } from "bun:ffi";

type CopyFn = (fdIn: number, offIn: number, fdOut: number, offOut: number, len: number) => number;
type WritebackFn = (fd: number, offset: number, length: number) => void;

function openLibc() {
  if (process.platform !== "linux") return null;
  try {
    return dlopen("libc.so.6", {
      copy_file_range: {
        args: [FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.u32],
        returns: FFIType.i64,
      },
      sync_file_range: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.u32], returns: FFIType.i32 },
    });
  } catch {
    return null;
  }
}

// Bound on first use, not at import: binding costs ~3 ms of start-up, and most runs (file data
// streamed from the tar, O_DIRECT writes) never call either function.
let libc: ReturnType<typeof openLibc> | undefined;

function load(): CopyFn | null {
  libc ??= openLibc();
  if (!libc) return null;
  const lib = libc;
  try {
    const offsets = new BigInt64Array(2);
    const inPtr = ptr(offsets, 0);
    const outPtr = ptr(offsets, 8);
    return (fdIn, offIn, fdOut, offOut, len) => {
      offsets[0] = BigInt(offIn);
      offsets[1] = BigInt(offOut);
      return Number(lib.symbols.copy_file_range(fdIn, inPtr, fdOut, outPtr, len, 0));
    };
  } catch {
    return null;
  }
}

let copyFileRange: CopyFn | null | undefined;

const SYNC_FILE_RANGE_WRITE = 2;

function loadWriteback(): WritebackFn | null {
  libc ??= openLibc();
  if (!libc) return null;
  const lib = libc;
  return (fd, offset, length) => {
    lib.symbols.sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
  };
}

let writeback: WritebackFn | null | undefined;

/**
 * Starts writing `fd`'s dirty pages in [offset, offset + length) to disk without waiting
 * (sync_file_range WRITE), so the fsync before publishing finds little left to do. A hint:
 * does nothing where unavailable, and errors surface at that fsync.
 */
export function startWriteback(fd: number, offset: number, length: number): void {
  if (writeback === undefined) writeback = loadWriteback();
  writeback?.(fd, offset, length);
}

/**
 * Copies `length` bytes from `fdIn` at `offIn` to `fdOut` at `offOut` in the kernel.
 * Returns false (having copied nothing reliable) when in-kernel copying is not possible here,
 * so the caller can fall back; throws if the source ends early. Callers told not to copy in
 * the kernel (IoOptions.copyFileRange false) do not call it.
 */
export function copyRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): boolean {
  if (copyFileRange === undefined) copyFileRange = load();
  if (!copyFileRange) return false;
  let done = 0;
  while (done < length) {
    const n = copyFileRange(fdIn, offIn + done, fdOut, offOut + done, length - done);
    if (n < 0) return false;
    if (n === 0) throw new Error(`source ended at byte ${offIn + done} while copying ${length} bytes from ${offIn}`);
    done += n;
  }
  return true;
}
