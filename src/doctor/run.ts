// Running checks and printing their reports, for any list of checks.
import { oneLine } from "../tree/names.ts";
import type { Check, CheckReport, CheckStatus, DoctorContext } from "./types.ts";

/**
 * Runs every check at once (the daemon's may wait on a socket; the others are quick) and
 * returns the reports in the list's order. A check that throws is reported as failed, with its
 * error: doctor is what people run when things are broken, so one broken check must not hide
 * the others.
 */
export async function runChecks(checks: readonly Check[], ctx: DoctorContext): Promise<CheckReport[]> {
  return Promise.all(
    checks.map(async (check): Promise<CheckReport> => {
      try {
        const result = await check.run(ctx);
        return { id: check.id, ...result };
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        return { id: check.id, status: "fail", summary: `the check itself failed: ${message}`, fix: "report this as a banger bug, with the message" };
      }
    }),
  );
}

/** 0 when nothing failed (warnings included), 1 otherwise. */
export function exitCodeFor(reports: readonly CheckReport[]): number {
  return reports.some((r) => r.status === "fail") ? 1 : 0;
}

const COLORS: Record<CheckStatus, string> = { pass: "\x1b[32m", warn: "\x1b[33m", fail: "\x1b[31m" };

/**
 * One aligned line per report: `pass  kvm        /dev/kvm is usable`, then `  fix: ...` for
 * warnings and failures. Summaries carry paths from the environment, so each is made one safe
 * line; `color` paints the status word only, so the columns line up either way.
 */
export function formatReports(reports: readonly CheckReport[], options: { color: boolean }): string {
  const width = Math.max(0, ...reports.map((r) => r.id.length));
  return reports
    .map((r) => {
      const status = options.color ? `${COLORS[r.status]}${r.status}\x1b[0m` : r.status;
      const fix = r.fix !== undefined && r.status !== "pass" ? `  fix: ${oneLine(r.fix, 1000)}` : "";
      return `${status}  ${r.id.padEnd(width)}  ${oneLine(r.summary, 1000)}${fix}`;
    })
    .join("\n");
}
