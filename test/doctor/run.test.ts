// Running a list of checks and printing it: order kept, a crashing check reported as failed,
// exit code from the failures only, aligned lines, color only when asked.
import { expect, test } from "bun:test";
import { DOCTOR_CHECKS } from "../../src/doctor/checks.ts";
import { exitCodeFor, formatReports, runChecks } from "../../src/doctor/run.ts";
import type { Check, CheckReport } from "../../src/doctor/types.ts";
import { fakeContext, fakeProbe } from "./fake-probe.ts";

const fixed = (id: string, report: Omit<CheckReport, "id">, delayMs = 0): Check => ({
  id,
  run: async () => {
    await Bun.sleep(delayMs);
    return report;
  },
});

test("reports come back in the list's order, whichever finishes first", async () => {
  const reports = await runChecks(
    [fixed("slow", { status: "pass", summary: "a" }, 30), fixed("fast", { status: "warn", summary: "b", fix: "c" })],
    fakeContext(fakeProbe()),
  );
  expect(reports).toEqual([
    { id: "slow", status: "pass", summary: "a" },
    { id: "fast", status: "warn", summary: "b", fix: "c" },
  ]);
});

test("a check that throws is a failure with its message; the others still run", async () => {
  const broken: Check = { id: "broken", run: async () => { throw new Error("EIO: statfs"); } };
  const reports = await runChecks([broken, fixed("ok", { status: "pass", summary: "fine" })], fakeContext(fakeProbe()));
  expect(reports[0]).toMatchObject({ id: "broken", status: "fail", summary: "the check itself failed: EIO: statfs" });
  expect(reports[1]!.status).toBe("pass");
});

test("exit code: 0 with passes and warnings, 1 with any failure", () => {
  expect(exitCodeFor([])).toBe(0);
  expect(exitCodeFor([{ id: "a", status: "pass", summary: "" }, { id: "b", status: "warn", summary: "" }])).toBe(0);
  expect(exitCodeFor([{ id: "a", status: "pass", summary: "" }, { id: "b", status: "fail", summary: "" }])).toBe(1);
});

const sample: CheckReport[] = [
  { id: "kvm", status: "pass", summary: "/dev/kvm is usable" },
  { id: "state-space", status: "fail", summary: "only 0.4 GiB free on /var", fix: "free space" },
];

test("text: one aligned line per check, the fix on the line of a warning or failure", () => {
  expect(formatReports(sample, { color: false }).split("\n")).toEqual([
    "pass  kvm          /dev/kvm is usable",
    "fail  state-space  only 0.4 GiB free on /var  fix: free space",
  ]);
});

test("color paints only the status word; without it there is no escape at all", () => {
  const colored = formatReports(sample, { color: true });
  expect(colored).toContain("\x1b[32mpass\x1b[0m  kvm");
  expect(colored).toContain("\x1b[31mfail\x1b[0m  state-space");
  expect(colored.replace(/\x1b\[\d+m/g, "")).toBe(formatReports(sample, { color: false }));
  expect(formatReports(sample, { color: false })).not.toContain("\x1b");
});

test("a summary carrying control characters (a path from the environment) stays one line", () => {
  const out = formatReports([{ id: "state-dir", status: "fail", summary: "cannot write in /tmp/a\nb\x1b[2J", fix: "x" }], { color: false });
  expect(out.split("\n")).toHaveLength(1);
  expect(out).not.toContain("\x1b");
});

test("the doctor's list: every check id once, in a stable order", () => {
  expect(DOCTOR_CHECKS.map((c) => c.id)).toEqual([
    "state-space", "cache-space", "state-dir", "cache-dir", "config-dir", "runtime-dir", "kvm", "vmm", "vsock", "tap", "daemon",
  ]);
});

test("on a fake host where nothing is set up, every check answers (none throws)", async () => {
  const reports = await runChecks(DOCTOR_CHECKS, fakeContext(fakeProbe({ freeBytes: 0 })));
  expect(reports.map((r) => r.summary).filter((s) => s.startsWith("the check itself failed"))).toEqual([]);
  expect(reports.find((r) => r.id === "kvm")!.status).toBe("fail");
  expect(exitCodeFor(reports)).toBe(1);
  for (const r of reports) if (r.status !== "pass") expect(r.fix).toBeString();
});
