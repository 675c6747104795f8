// Advisory whole-file locks (flock(2)) through Bun's FFI. The kernel drops such a lock when the
// last descriptor of its open file goes, so a holder killed with SIGKILL releases it at once:
// no pid to guess at, no stale lock file to judge. The daemon holds one for its whole life;
// the CLI takes another while it starts a daemon, so that many commands starting at once
// start one. Node and Bun open files with O_CLOEXEC, so children never inherit a lock.
import { dlopen, FFIType, read } from "bun:ffi";
import fs from "node:fs";

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EINTR = 4;
const EWOULDBLOCK = 11;

function openLibc() {
  return dlopen("libc.so.6", {
    flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
}

// Bound on first use: dlopen costs milliseconds, and most commands never lock anything.
let libc: ReturnType<typeof openLibc> | undefined;

export class FlockError extends Error {
  override name = "FlockError";
}

function callFlock(fd: number, op: number): "ok" | "busy" {
  if (process.platform !== "linux") throw new FlockError("file locks need Linux (flock through libc.so.6)");
  libc ??= openLibc();
  for (;;) {
    if (libc.symbols.flock(fd, op) === 0) return "ok";
    // errno is read right after the call, on the same thread, before anything else can set it.
    const errno = read.i32(libc.symbols.__errno_location()!, 0);
    if (errno === EINTR) continue;
    if (errno === EWOULDBLOCK) return "busy";
    throw new FlockError(`flock failed (errno ${errno})`);
  }
}

/** An exclusive lock on an open file; `release()` (or the process ending) gives it up. */
export class FileLock {
  private constructor(
    readonly path: string,
    readonly fd: number,
  ) {}

  /**
   * Opens (creating, mode 0600) `file` and takes its lock without waiting: null when another
   * open file description holds it. The file itself is never removed: removing a lock file
   * while another process has it open and is about to lock it would let two holders exist.
   */
  static tryAcquire(file: string, opts: { create?: boolean } = {}): FileLock | null {
    const create = opts.create === false ? 0 : fs.constants.O_CREAT;
    const fd = fs.openSync(file, fs.constants.O_RDWR | create | fs.constants.O_NOFOLLOW, 0o600);
    try {
      if (callFlock(fd, LOCK_EX | LOCK_NB) === "busy") {
        fs.closeSync(fd);
        return null;
      }
      return new FileLock(file, fd);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** Polls tryAcquire every `pollMs` until it succeeds or `timeoutMs` passes (then null). */
  static async acquire(file: string, opts: { timeoutMs: number; pollMs?: number }): Promise<FileLock | null> {
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      const lock = FileLock.tryAcquire(file);
      if (lock || Date.now() >= deadline) return lock;
      await Bun.sleep(opts.pollMs ?? 20);
    }
  }

  /** Replaces the file's content (who holds it, for messages); the lock is unaffected. */
  describe(text: string): void {
    fs.ftruncateSync(this.fd, 0);
    fs.writeSync(this.fd, text, 0);
  }

  release(): void {
    try {
      callFlock(this.fd, LOCK_UN);
    } finally {
      fs.closeSync(this.fd);
    }
  }
}

/** True when some process holds the lock on `file` right now (false when there is no file). */
export function isLocked(file: string): boolean {
  let lock: FileLock | null;
  try {
    lock = FileLock.tryAcquire(file, { create: false });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
  if (!lock) return true;
  lock.release();
  return false;
}
