// banger's directories are writable, or can be created, by this user. Checked by creating a
// file, because that is what banger will do: permissions, ACLs, read-only mounts and quotas all
// answer at once.
import path from "node:path";
import { CACHE_DIR, CONFIG_DIR, RUNTIME_DIR, STATE_DIR, errorCode, nearestExisting, type BangerDir } from "./common.ts";
import type { Check, CheckResult, DoctorContext } from "./types.ts";

export function writableDirCheck(dir: BangerDir): Check {
  return {
    id: `${dir.name}-dir`,
    async run(ctx: DoctorContext): Promise<CheckResult> {
      const target = path.resolve(ctx.paths[dir.key]);
      const elsewhere = `set ${dir.envVar} to a directory you own`;
      const existing = nearestExisting(ctx.probe, target);
      if (existing.kind !== "directory") {
        const what = existing.path === target ? `${target} is not a directory` : `${existing.path} is not a directory, so ${target} cannot be created`;
        return { status: "fail", summary: `${what} (it is a ${existing.kind})`, fix: `move ${existing.path} out of the way, or ${elsewhere}` };
      }
      try {
        ctx.probe.tryCreateFile(existing.path);
      } catch (err) {
        const code = errorCode(err);
        if (existing.path === target) {
          return { status: "fail", summary: `cannot write in ${target} (${code})`, fix: `give it to yourself (\`sudo chown -R $USER ${target}\`), or ${elsewhere}` };
        }
        // Not "chown the ancestor": that may be /var or /run. Only banger's own dir changes hands.
        return {
          status: "fail",
          summary: `${target} does not exist and cannot be created: cannot write in ${existing.path} (${code})`,
          fix: `create it for yourself (\`sudo install -d -m 700 -o $USER ${target}\`), or ${elsewhere}`,
        };
      }
      if (existing.path === target) return { status: "pass", summary: `${target} is writable` };
      return { status: "pass", summary: `${target} does not exist yet; it can be created in ${existing.path}` };
    },
  };
}

export const stateDirCheck = writableDirCheck(STATE_DIR);
export const cacheDirCheck = writableDirCheck(CACHE_DIR);
export const configDirCheck = writableDirCheck(CONFIG_DIR);
export const runtimeDirCheck = writableDirCheck(RUNTIME_DIR);
