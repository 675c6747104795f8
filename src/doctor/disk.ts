// Free space where banger writes images (the state dir) and caches layers (the cache dir).
import { CACHE_DIR, STATE_DIR, formatGiB, nearestExisting, type BangerDir } from "./common.ts";
import type { Check, CheckResult, DoctorContext } from "./types.ts";

export interface SpaceThresholds {
  /** Below this many free bytes: warn. */
  warnBelow: number;
  /** Below this many free bytes: fail. */
  failBelow: number;
}

// A pulled image is its rootfs (default at least 1 GiB, sparse but it fills as it is used), plus
// its compressed layers in the cache: 5 GiB holds a few ordinary images, 1 GiB not even one.
export const DEFAULT_SPACE_THRESHOLDS: SpaceThresholds = { warnBelow: 5 * 1024 ** 3, failBelow: 1024 ** 3 };

export function spaceCheck(dir: BangerDir, thresholds: SpaceThresholds = DEFAULT_SPACE_THRESHOLDS): Check {
  return {
    id: `${dir.name}-space`,
    async run(ctx: DoctorContext): Promise<CheckResult> {
      const target = ctx.paths[dir.key];
      // statfs needs an existing path; the ancestor is on the filesystem the dir will be made on.
      const existing = nearestExisting(ctx.probe, target).path;
      const { freeBytes } = ctx.probe.statfs(existing);
      const mount = ctx.probe.mountPoint(existing);
      const where = `on ${mount} (${dir.name} dir ${target})`;
      const fix =
        `free space on ${mount}, or set ${dir.envVar} to a directory on a larger filesystem` +
        (dir.name === "cache" ? "; `banger image cache prune` removes layers no image needs" : "");
      if (freeBytes < thresholds.failBelow) {
        return { status: "fail", summary: `only ${formatGiB(freeBytes)} free ${where}; pulls need at least ${formatGiB(thresholds.failBelow)}`, fix };
      }
      if (freeBytes < thresholds.warnBelow) {
        return { status: "warn", summary: `only ${formatGiB(freeBytes)} free ${where}; ${formatGiB(thresholds.warnBelow)} holds a few images`, fix };
      }
      return { status: "pass", summary: `${formatGiB(freeBytes)} free ${where}` };
    },
  };
}

export const stateSpaceCheck = spaceCheck(STATE_DIR);
export const cacheSpaceCheck = spaceCheck(CACHE_DIR);
