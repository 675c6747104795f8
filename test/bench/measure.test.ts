// bench/measure.ts times one script: the wall clock to the microsecond (bash's $EPOCHREALTIME
// around the script; GNU time's own has 10 ms steps), CPU and RSS from GNU time, and a failing
// script comes back as a failure with its exit code, never as a time.
import { afterAll, expect } from "bun:test";
import { rmSync } from "node:fs";
import { measure } from "../../bench/measure.ts";
import { testWith } from "../helpers/env.ts";
import { scratchDir } from "../helpers/oracles.ts";

const work = scratchDir("measure");
afterAll(() => rmSync(work, { recursive: true, force: true }));

testWith({ tools: ["/usr/bin/time"] }, "the wall time covers the script, read finer than GNU time's 10 ms", async () => {
  const m = await measure("sleep", { script: 'sleep "$D"', env: { D: "0.123" }, cwd: work, timeoutS: 30, workDir: work });
  expect(m.ok, m.error).toBe(true);
  expect(m.wallS).toBeGreaterThanOrEqual(0.123);
  expect(m.wallS).toBeLessThan(5);
  // Microseconds: a value on GNU time's 10 ms grid would mean the fine clock was not used.
  expect(Math.abs(m.wallS * 100 - Math.round(m.wallS * 100))).toBeGreaterThan(1e-9);
  expect(m.rssKiB).toBeGreaterThan(0);
});

testWith({ tools: ["/usr/bin/time"] }, "a failing script is a failure with its exit code", async () => {
  const m = await measure("fails", { script: "echo broken >&2; exit 3", env: {}, cwd: work, timeoutS: 30, workDir: work });
  expect(m.ok).toBe(false);
  expect(m.exitCode).toBe(3);
  expect(m.error).toContain("broken");
});
