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

/** What a test needs: tools on PATH, root, and any other precondition the caller checked (`absent`: why it is not met, or null). */
export interface Requirements {
  tools?: string[];
  root?: boolean;
  absent?: string | null;
}

/** Why the requirements are not met, or null when they are. */
export function missing(req: Requirements): string | null {
  const lacking = (req.tools ?? []).filter((t) => !hasTool(t));
  const reasons: string[] = [];
  if (lacking.length) reasons.push(`missing tool(s): ${lacking.join(", ")} (installed by .ci/run)`);
  if (req.root && !isRoot()) reasons.push("needs root (loop mounts)");
  if (req.absent) reasons.push(req.absent);
  return reasons.length ? reasons.join("; ") : null;
}

/**
 * `test` that needs tools and/or root. In CI a missing requirement fails the test; elsewhere
 * the test is skipped with the reason in its name.
 */
export function testWith(
  req: Requirements,
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
