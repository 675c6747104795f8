// Pieces the directory checks share: which banger directories there are, and how to find the
// part of a path that exists yet.
import path from "node:path";
import type { DoctorContext, HostProbe, PathKind } from "./types.ts";

export interface BangerDir {
  /** Short name, the first half of the check ids (`state-space`, `state-dir`). */
  name: "state" | "cache" | "config" | "runtime";
  /** Where bangerPaths put it. */
  key: keyof DoctorContext["paths"];
  /** The variable that moves it, named in the fixes. */
  envVar: string;
}

export const STATE_DIR: BangerDir = { name: "state", key: "stateDir", envVar: "XDG_STATE_HOME" };
export const CACHE_DIR: BangerDir = { name: "cache", key: "cacheDir", envVar: "XDG_CACHE_HOME" };
export const CONFIG_DIR: BangerDir = { name: "config", key: "configDir", envVar: "XDG_CONFIG_HOME" };
export const RUNTIME_DIR: BangerDir = { name: "runtime", key: "runtimeDir", envVar: "XDG_RUNTIME_DIR" };

/**
 * The path itself when something is there, else its nearest ancestor that exists: before the
 * first pull none of banger's directories exist, and what matters then is where they will go.
 */
export function nearestExisting(probe: HostProbe, p: string): { path: string; kind: PathKind } {
  let current = path.resolve(p);
  for (;;) {
    const kind = probe.kind(current);
    if (kind !== null) return { path: current, kind };
    const parent = path.dirname(current);
    // "/" always exists on a real host; a fake probe that denies it still ends here.
    if (parent === current) return { path: current, kind: "directory" };
    current = parent;
  }
}

const GiB = 1024 ** 3;

/** 0.4 GiB, 72.1 GiB; MiB below a tenth of a GiB, where "0.0 GiB" would say nothing. */
export function formatGiB(bytes: number): string {
  if (bytes < GiB / 10) return `${Math.floor(bytes / 1024 ** 2)} MiB`;
  return `${(bytes / GiB).toFixed(1)} GiB`;
}

export function errorCode(err: unknown): string {
  if (err && typeof err === "object" && "code" in err && typeof err.code === "string") return err.code;
  return err instanceof Error ? err.message : String(err);
}
