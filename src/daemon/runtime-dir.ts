// The daemon's runtime directory ($XDG_RUNTIME_DIR/banger, or /tmp/banger-<uid> without one):
// its socket, its lock and a starter's lock live there. It must be a real directory of ours
// that no one else can enter (0700): the socket's own 0600 is then a second fence, not the only
// one, and in /tmp nobody can plant a directory or a symlink there for us to use.
import fs from "node:fs";
import type { BangerPaths } from "./paths.ts";

export class RuntimeDirError extends Error {
  override name = "RuntimeDirError";
}

/** sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** Makes the directory (0700) if needed and checks it; tightens its mode when it is ours. */
export function prepareRuntimeDir(paths: Pick<BangerPaths, "runtimeDir" | "socketPath">): void {
  const dir = paths.runtimeDir;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new RuntimeDirError(`${dir} is not a directory (a symlink or a file is in the way); remove it`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new RuntimeDirError(`${dir} belongs to uid ${st.uid}, not to you (uid ${uid}): banger will not put its socket there; set XDG_RUNTIME_DIR to a directory of yours`);
  }
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
  const bytes = Buffer.byteLength(paths.socketPath);
  if (bytes > MAX_SOCKET_PATH) {
    throw new RuntimeDirError(`the socket path ${paths.socketPath} is ${bytes} bytes long and unix sockets take at most ${MAX_SOCKET_PATH}; set XDG_RUNTIME_DIR to a shorter directory`);
  }
}

/** Who holds the daemon lock, as the daemon wrote it there. */
export interface LockInfo {
  pid: number;
  version: string;
  protocol: number;
  socket: string;
  startedAt: string;
}

export function readLockInfo(lockPath: string): LockInfo | null {
  try {
    const o = JSON.parse(fs.readFileSync(lockPath, "utf8")) as Partial<LockInfo>;
    return typeof o.pid === "number" ? (o as LockInfo) : null;
  } catch {
    return null;
  }
}
