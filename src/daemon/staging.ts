// Who is building a staging directory (`<id>.staging/.owner`: pid and process start time), so
// that a reconcile can tell a directory a live process is still filling from one a killed
// process left behind. The start time tells a reused pid from its first owner.
import fs from "node:fs";
import path from "node:path";
import { pidAlive } from "../io/process.ts";

export const OWNER_FILE = ".owner";

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or null where it cannot be read. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
    // The command name (field 2) may hold spaces and parentheses; fields after it are plain.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** Marks `dir` as this process's work. */
export async function writeOwner(dir: string): Promise<void> {
  await fs.promises.writeFile(path.join(dir, OWNER_FILE), JSON.stringify({ pid: process.pid, start: processStartTime(process.pid) }));
}

/**
 * Whether the process named in `dir`'s owner file still runs. Our own pid counts as alive only
 * while `ours` (this process is still working on that directory). "no-owner": no readable file.
 */
export function ownerAlive(dir: string, ours: boolean): boolean | "no-owner" {
  let owner: { pid?: unknown; start?: unknown };
  try {
    owner = JSON.parse(fs.readFileSync(path.join(dir, OWNER_FILE), "utf8")) as { pid?: unknown; start?: unknown };
  } catch {
    return "no-owner";
  }
  if (typeof owner.pid !== "number") return false;
  if (owner.pid === process.pid) return ours;
  if (!pidAlive(owner.pid)) return false;
  return typeof owner.start !== "string" || processStartTime(owner.pid) === owner.start;
}
