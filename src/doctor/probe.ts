// The real HostProbe: the one place the doctor's checks touch the host. Everything it needs from
// the environment (the search path) is handed in by the caller.
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { FsSpace, HostProbe, HttpAnswer, PathKind } from "./types.ts";

export interface HostProbeOptions {
  /** The search path for `which`, as in $PATH. */
  searchPath: string | undefined;
}

function kindOf(st: fs.Stats): PathKind {
  if (st.isDirectory()) return "directory";
  if (st.isFile()) return "file";
  if (st.isSocket()) return "socket";
  if (st.isCharacterDevice()) return "char-device";
  if (st.isBlockDevice()) return "block-device";
  return "other";
}

export function createHostProbe(options: HostProbeOptions): HostProbe {
  return {
    kind(p) {
      try {
        const st = fs.statSync(p, { throwIfNoEntry: false });
        return st ? kindOf(st) : null;
      } catch {
        // EACCES on a parent, ELOOP, ENOTDIR: nothing this user can reach is there.
        return null;
      }
    },

    statfs(p): FsSpace {
      const s = fs.statfsSync(p);
      // bavail, not bfree: the blocks reserved for root are not ours to fill.
      return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
    },

    mountPoint(p) {
      // The topmost ancestor still on the same device. /proc/self/mountinfo would also name
      // the mount point, but needs parsing and escapes; for a message this is enough.
      let current = path.resolve(p);
      const dev = fs.statSync(current).dev;
      for (;;) {
        const parent = path.dirname(current);
        if (parent === current) return current;
        try {
          if (fs.statSync(parent).dev !== dev) return current;
        } catch {
          return current;
        }
        current = parent;
      }
    },

    canReadWrite(p) {
      try {
        fs.accessSync(p, fs.constants.R_OK | fs.constants.W_OK);
        return true;
      } catch {
        return false;
      }
    },

    which(name) {
      return Bun.which(name, { PATH: options.searchPath ?? "" });
    },

    tryCreateFile(dir) {
      // O_EXCL with a random name: never touches a file that was already there.
      const file = path.join(dir, `.banger-doctor-${process.pid}-${randomBytes(6).toString("hex")}`);
      const fd = fs.openSync(file, "wx", 0o600);
      try {
        fs.closeSync(fd);
      } finally {
        fs.unlinkSync(file);
      }
    },

    async httpGet(socketPath, urlPath, timeoutMs): Promise<HttpAnswer> {
      // The timeout covers the body too; no keep-alive, so no pooled connection outlives the
      // check and keeps `banger doctor` from exiting.
      const res = await fetch(`http://localhost${urlPath}`, {
        unix: socketPath,
        signal: AbortSignal.timeout(timeoutMs),
        keepalive: false,
      });
      return { status: res.status, body: await res.text() };
    },
  };
}
