// The contract between `banger doctor` and its checks. A check only asks questions of a
// HostProbe (never of node:fs or the environment directly), so every outcome, including a full
// disk or a missing /dev/kvm that a test machine cannot produce, is reachable with a fake probe.
import type { BangerPaths } from "../daemon/paths.ts";

export type CheckStatus = "pass" | "warn" | "fail";

export interface CheckResult {
  status: CheckStatus;
  /** One line: what was found. */
  summary: string;
  /** One line: what to do about it. Set for warn and fail, not for pass. */
  fix?: string;
}

/** A check's result with its id: one line of `banger doctor`, one element of its --json array. */
export interface CheckReport extends CheckResult {
  id: string;
}

/** What is at a path, following symlinks. */
export type PathKind = "directory" | "file" | "socket" | "char-device" | "block-device" | "other";

export interface FsSpace {
  /** Bytes an unprivileged user may still write (statfs f_bavail x f_bsize). */
  freeBytes: number;
  totalBytes: number;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** Everything the checks want to know about the host; `createHostProbe` (probe.ts) is the real one. */
export interface HostProbe {
  /** What is at `p`, or null when nothing is (or it cannot be reached). */
  kind(p: string): PathKind | null;
  /** Space on the filesystem holding `p`, which must exist. */
  statfs(p: string): FsSpace;
  /** The mount point of the filesystem holding `p` (which must exist), for messages. */
  mountPoint(p: string): string;
  /** Whether this process may open `p` for reading and writing (access(2), R_OK | W_OK). */
  canReadWrite(p: string): boolean;
  /** The absolute path of an executable named `name` on the search path, or null. */
  which(name: string): string | null;
  /**
   * Creates a new file in directory `dir` and removes it again. Throws the error (EACCES, EROFS,
   * ENOSPC, ...) when the file cannot be created: the only reliable answer to "can I write
   * here", since access(2) knows nothing of read-only mounts.
   */
  tryCreateFile(dir: string): void;
  /** HTTP GET of `urlPath` over the unix socket `socketPath`; rejects when nothing answers within `timeoutMs`. */
  httpGet(socketPath: string, urlPath: string, timeoutMs: number): Promise<HttpAnswer>;
}

export interface DoctorContext {
  probe: HostProbe;
  /** banger's directories, from bangerPaths (the CLI passes the environment's). */
  paths: Pick<BangerPaths, "stateDir" | "cacheDir" | "configDir" | "runtimeDir">;
  /** The host's CPU architecture as process.arch names it ("x64", "arm64"). */
  arch: string;
}

export interface Check {
  /** Stable name, the first column of the output and the `id` in --json. */
  id: string;
  run(ctx: DoctorContext): Promise<CheckResult>;
}
