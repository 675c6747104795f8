// An output file that exists under its name only once complete. On Linux the file is created
// with O_TMPFILE: an inode with no name, which the kernel frees if the process dies for any
// reason (even SIGKILL), so nothing half-written can ever be left behind. publish() gives it a
// temporary name (linkat through /proc/self/fd) and renames that over the destination, which
// is atomic. Where O_TMPFILE is unavailable (other systems, some filesystems), a named temp
// file beside the destination is used and removed on failure.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { closeSync, fsyncSync, openSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { IoOptions } from "./options.ts";

const O_RDWR = 0o2;
const O_TMPFILE = 0o20000000 | 0o200000; // __O_TMPFILE | O_DIRECTORY (x86_64, arm64)
const AT_FDCWD = -100;
const AT_SYMLINK_FOLLOW = 0x400;

interface Libc {
  open(path: Uint8Array, flags: number, mode: number): number;
  linkat(fromPath: Uint8Array, toPath: Uint8Array): number;
}

function loadLibc(): Libc | null {
  if (process.platform !== "linux") return null;
  try {
    const { symbols } = dlopen("libc.so.6", {
      open: { args: [FFIType.ptr, FFIType.i32, FFIType.u32], returns: FFIType.i32 },
      linkat: { args: [FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    });
    return {
      open: (path, flags, mode) => symbols.open(ptr(path), flags, mode),
      linkat: (from, to) => symbols.linkat(AT_FDCWD, ptr(from), AT_FDCWD, ptr(to), AT_SYMLINK_FOLLOW),
    };
  } catch {
    return null;
  }
}

let loaded: Libc | null | undefined;

function cString(text: string): Uint8Array {
  return Buffer.from(`${text}\0`, "utf8");
}

export interface TempOutput {
  fd: number;
  /**
   * Puts the finished file in place of `out`, atomically and durably: its data is on disk
   * before it gets the name, so a crash right after never leaves a name on a half-written image.
   * Closes the descriptor.
   */
  publish(): void;
  /** Drops the file. Closes the descriptor. Safe to call after a failed publish. */
  discard(): void;
}

function tempName(out: string): string {
  return join(dirname(out), `.${basename(out)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
}

/** `io.tmpfile` false: a named temp file even where O_TMPFILE is available. */
export function createTempOutput(out: string, io: IoOptions = {}): TempOutput {
  const dir = dirname(out);
  const libc = io.tmpfile === false ? null : (loaded ??= loadLibc());
  const anonymousFd = libc ? libc.open(cString(dir), O_TMPFILE | O_RDWR, 0o644) : -1;
  if (anonymousFd >= 0) {
    let closed = false;
    const close = () => {
      if (!closed) closeSync(anonymousFd);
      closed = true;
    };
    return {
      fd: anonymousFd,
      publish() {
        fsyncSync(anonymousFd);
        const named = tempName(out);
        if (libc!.linkat(cString(`/proc/self/fd/${anonymousFd}`), cString(named)) !== 0) {
          throw new Error(`cannot give the finished image a name in ${dir} (linkat failed)`);
        }
        close();
        try {
          renameSync(named, out);
        } catch (err) {
          rmSync(named, { force: true });
          throw err;
        }
      },
      discard: close,
    };
  }
  const named = tempName(out);
  const fd = openSync(named, "wx", 0o644);
  let closed = false;
  const close = () => {
    if (!closed) closeSync(fd);
    closed = true;
  };
  return {
    fd,
    publish() {
      fsyncSync(fd);
      close();
      renameSync(named, out);
    },
    discard() {
      close();
      rmSync(named, { force: true });
    },
  };
}
