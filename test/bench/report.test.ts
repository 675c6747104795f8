// The per-round ratio shown next to the Debian cat target (bench/report.ts pairedDetail).
import { expect, test } from "bun:test";
import { pairedDetail, type CaseResult } from "../../bench/report.ts";
import type { Measurement } from "../../bench/measure.ts";

function runs(walls: number[], failed: number[] = []): Measurement[] {
  return walls.map((wallS, i) => ({ tool: "t", ok: !failed.includes(i), wallS, cpuS: 0, userS: 0, sysS: 0, rssKiB: 0, exitCode: 0 }));
}

function result(measurements: Record<string, Measurement[]>): CaseResult {
  return { name: "debian", title: "", mode: "full", date: "", describe: "", runs: 0, sync: true, input: {}, imageSize: null, mkfsInodes: null, tools: [], measurements, skipped: [], fsck: null, zero: null, notes: [] };
}

test("pairs runs by round: a load drift that moves both tools' medians leaves the per-round ratio alone", () => {
  // Rounds 0-2 quiet, 3-5 loaded: each round banger takes 1.2x cat.
  const cat = [0.2, 0.2, 0.2, 0.3, 0.3, 0.3];
  const r = result({ banger: runs(cat.map((x) => x * 1.2)), cat: runs(cat) });
  expect(pairedDetail(r, "banger", "cat")).toBe("; per round: median 1.20×, middle half 1.20–1.20×, 6/6 rounds ≤ 1.5×");
});

test("failed runs are left out, and a tool that missed rounds gives no pairing", () => {
  const r = result({ banger: runs([0.3, 0.4, 0.5, 9], [3]), cat: runs([0.2, 0.2, 0.2, 0.2]) });
  expect(pairedDetail(r, "banger", "cat")).toBe("; per round: median 2.00×, middle half 1.50–2.50×, 1/3 rounds ≤ 1.5×");
  expect(pairedDetail(result({ banger: runs([0.3, 0.3, 0.3]), cat: runs([0.2, 0.2]) }), "banger", "cat")).toBe("");
  expect(pairedDetail(result({ banger: runs([0.3, 0.3]), cat: runs([0.2, 0.2]) }), "banger", "cat")).toBe("");
});
