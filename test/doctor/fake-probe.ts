// A HostProbe over a made-up host: the states the doctor must recognise (a full disk, no
// /dev/kvm, a device only root may open) cannot be produced on a test machine, so the checks'
// handling of them is tested here, and the real probe is tested against the real host apart.
import type { DoctorContext, FsSpace, HostProbe, HttpAnswer, PathKind } from "../../src/doctor/types.ts";

export interface FakeHost {
  /** What exists; "/" is always a directory. */
  paths?: Record<string, PathKind>;
  /** Free bytes on the one filesystem (default 100 GiB). */
  freeBytes?: number;
  /** Its mount point (default "/"). */
  mount?: string;
  /** Paths this user may open read-write. */
  readWrite?: string[];
  /** Executables on the search path, name -> path. */
  executables?: Record<string, string>;
  /** Directories where creating a file fails, with the error code. */
  unwritable?: Record<string, string>;
  http?: (socket: string, urlPath: string, timeoutMs: number) => Promise<HttpAnswer>;
}

export interface FakeProbe extends HostProbe {
  /** What each method was asked, for tests that care where a check looked. */
  asked: { statfs: string[]; mountPoint: string[]; which: string[]; tryCreateFile: string[]; httpGet: string[] };
}

export const GiB = 1024 ** 3;

export function fakeProbe(host: FakeHost = {}): FakeProbe {
  const asked: FakeProbe["asked"] = { statfs: [], mountPoint: [], which: [], tryCreateFile: [], httpGet: [] };
  const kind = (p: string): PathKind | null => host.paths?.[p] ?? (p === "/" ? "directory" : null);
  const mustExist = (p: string) => {
    if (kind(p) === null) throw Object.assign(new Error(`ENOENT: ${p}`), { code: "ENOENT" });
  };
  return {
    asked,
    kind,
    statfs(p): FsSpace {
      asked.statfs.push(p);
      mustExist(p);
      return { freeBytes: host.freeBytes ?? 100 * GiB, totalBytes: 200 * GiB };
    },
    mountPoint(p) {
      asked.mountPoint.push(p);
      mustExist(p);
      return host.mount ?? "/";
    },
    canReadWrite: (p) => host.readWrite?.includes(p) ?? false,
    which(name) {
      asked.which.push(name);
      return host.executables?.[name] ?? null;
    },
    tryCreateFile(dir) {
      asked.tryCreateFile.push(dir);
      const code = host.unwritable?.[dir] ?? (kind(dir) === "directory" ? undefined : kind(dir) === null ? "ENOENT" : "ENOTDIR");
      if (code) throw Object.assign(new Error(`${code}: ${dir}`), { code });
    },
    async httpGet(socket, urlPath, timeoutMs) {
      asked.httpGet.push(socket);
      if (!host.http) throw Object.assign(new Error("ECONNREFUSED"), { code: "ECONNREFUSED" });
      return host.http(socket, urlPath, timeoutMs);
    },
  };
}

/** A context on the fake host, with banger's dirs where a typical user has them. */
export function fakeContext(probe: HostProbe, overrides: Partial<DoctorContext> = {}): DoctorContext {
  return {
    probe,
    paths: {
      stateDir: "/home/u/.local/state/banger",
      cacheDir: "/home/u/.cache/banger",
      configDir: "/home/u/.config/banger",
      runtimeDir: "/run/user/1000/banger",
    },
    arch: "x64",
    ...overrides,
  };
}
