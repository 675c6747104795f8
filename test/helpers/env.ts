// Test preconditions. Outside CI a missing tool or missing root skips the test and says why;
// with CI=true it is a failure, so a green CI run can never hide a missing install step.
import { test } from "bun:test";

export const IN_CI = process.env.CI === "true" || process.env.CI === "1";

export function hasTool(name: string): boolean {
  return Bun.which(name, { PATH: `${process.env.PATH}:/usr/sbin:/sbin` }) !== null;
}

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** Why the requirements are not met, or null when they are. */
export function missing(req: { tools?: string[]; root?: boolean }): string | null {
  const lacking = (req.tools ?? []).filter((t) => !hasTool(t));
  const reasons: string[] = [];
  if (lacking.length) reasons.push(`missing tool(s): ${lacking.join(", ")} (installed by .ci/run)`);
  if (req.root && !isRoot()) reasons.push("needs root (loop mounts)");
  return reasons.length ? reasons.join("; ") : null;
}

/**
 * `test` that needs tools and/or root. In CI a missing requirement fails the test; elsewhere
 * the test is skipped with the reason in its name.
 */
export function testWith(
  req: { tools?: string[]; root?: boolean },
  name: string,
  fn: () => void | Promise<unknown>,
  timeoutMs?: number,
): void {
  const why = missing(req);
  if (why === null) {
    test(name, fn, timeoutMs);
  } else if (IN_CI) {
    test(name, () => {
      throw new Error(`CI=true and ${why}`);
    });
  } else {
    test.skip(`${name} [skipped: ${why}]`, () => {});
  }
}

/** Absolute path of a sbin tool (e2fsck, debugfs, mkfs.ext4 live in /usr/sbin). */
export function toolPath(name: string): string {
  const p = Bun.which(name, { PATH: `${process.env.PATH}:/usr/sbin:/sbin` });
  if (!p) throw new Error(`tool ${name} not found on PATH or in /usr/sbin`);
  return p;
}
