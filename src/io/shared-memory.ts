// Shared memory between threads for large rings and slots, backed by transparent huge pages
// where Linux allows it.
//
// Why: every fresh 4 KiB page costs a page fault at its first touch. On bare metal that is
// ~1 us; in a microVM whose guest memory is given back to the host (free page reporting, a
// balloon) or shadowed (PVM), we measured ~10 us. A zstd layer's rings and the image writer's
// slots are ~56 MiB touched once per pull: ~14,000 faults, ~140 ms of CPU there, ~40 ms of it
// on the decoding thread that sets the pull's pace. A 2 MiB huge page is one fault.
import { dlopen, FFIType, ptr } from "bun:ffi";

export const HUGE_PAGE = 2 << 20;
const MADV_HUGEPAGE = 14;

function openLibc() {
  if (process.platform !== "linux") return null;
  try {
    return dlopen("libc.so.6", { madvise: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 } });
  } catch {
    return null; // musl without libc.so.6: normal pages
  }
}

let libc: ReturnType<typeof openLibc> | undefined;

/**
 * Asks Linux to back `view` with transparent huge pages (where THP is in "madvise" mode, the
 * usual default). Only a hint: the kernel may still use 4 KiB pages, and nothing happens
 * where it cannot be asked. Advise before the first touch: pages already faulted stay small.
 */
function adviseHugePages(view: Uint8Array): void {
  libc ??= openLibc();
  if (libc && view.length > 0) libc.symbols.madvise(ptr(view), view.length, MADV_HUGEPAGE);
}

/**
 * `bytes` of fresh shared memory (a view of a SharedArrayBuffer, so it can be posted to a
 * worker as it is), starting on a huge-page boundary and advised as huge pages when it spans
 * at least one. Zero-filled, as any new SharedArrayBuffer; its pages are faulted on first use.
 */
export function hugePageShared(bytes: number): Uint8Array {
  if (bytes < HUGE_PAGE) return new Uint8Array(new SharedArrayBuffer(bytes));
  const whole = new Uint8Array(new SharedArrayBuffer(bytes + HUGE_PAGE));
  const skew = (HUGE_PAGE - (Number(ptr(whole)) % HUGE_PAGE)) % HUGE_PAGE;
  const view = whole.subarray(skew, skew + bytes);
  adviseHugePages(view);
  return view;
}
