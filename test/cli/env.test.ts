// src/cli/env.ts: the one place the environment becomes options. Each BANGER_NO_* variable turns
// off exactly its own way of doing I/O, and SOURCE_DATE_EPOCH is read as each command always has.
import { expect, test } from "bun:test";
import { UsageError } from "../../src/cli/args.ts";
import { lenientSourceDateEpoch, readEnvSettings, strictSourceDateEpoch } from "../../src/cli/env.ts";

test("an empty environment leaves every default (the fast ways), no timing, no epoch", () => {
  const s = readEnvSettings({ PATH: "/usr/bin", BANGER_NO_MMAP: "" });
  expect(s.io).toEqual({});
  expect(s.timing).toBeUndefined();
  expect(s.sourceDateEpoch).toBeUndefined();
});

test("each BANGER_NO_* turns off its own way only", () => {
  expect(readEnvSettings({ BANGER_NO_MMAP: "1" }).io).toEqual({ mmap: false });
  expect(readEnvSettings({ BANGER_NO_DIRECT_IO: "1" }).io).toEqual({ directIo: false });
  expect(readEnvSettings({ BANGER_NO_COPY_FILE_RANGE: "yes" }).io).toEqual({ copyFileRange: false });
  expect(readEnvSettings({ BANGER_NO_TMPFILE: "1" }).io).toEqual({ tmpfile: false });
});

test("BANGER_TIMING gives a line printer; SOURCE_DATE_EPOCH is passed on as given", () => {
  const s = readEnvSettings({ BANGER_TIMING: "1", SOURCE_DATE_EPOCH: "1700000000" });
  expect(typeof s.timing).toBe("function");
  expect(s.sourceDateEpoch).toBe("1700000000");
});

test("image pull refuses an epoch that is not a whole number; make-ext4 ignores what it cannot use", () => {
  expect(strictSourceDateEpoch(undefined)).toBeUndefined();
  expect(strictSourceDateEpoch("")).toBeUndefined();
  expect(strictSourceDateEpoch("0")).toBe(0);
  expect(strictSourceDateEpoch("1700000000")).toBe(1700000000);
  expect(() => strictSourceDateEpoch("soon")).toThrow(UsageError);
  expect(() => strictSourceDateEpoch("1e9")).toThrow(/not a whole number of seconds/);
  expect(lenientSourceDateEpoch(undefined)).toBeUndefined();
  expect(lenientSourceDateEpoch("soon")).toBeUndefined();
  expect(lenientSourceDateEpoch("0")).toBeUndefined();
  expect(lenientSourceDateEpoch("1700000000")).toBe(1700000000);
});

test("NO_COLOR: any non-empty value turns colors off", () => {
  expect(readEnvSettings({}).noColor).toBe(false);
  expect(readEnvSettings({ NO_COLOR: "" }).noColor).toBe(false);
  expect(readEnvSettings({ NO_COLOR: "1" }).noColor).toBe(true);
});

test("BANGER_NO_DAEMON runs in-process; BANGER_DAEMON_VERSION is only passed on", () => {
  expect(readEnvSettings({}).noDaemon).toBe(false);
  expect(readEnvSettings({ BANGER_NO_DAEMON: "" }).noDaemon).toBe(false);
  expect(readEnvSettings({ BANGER_NO_DAEMON: "1" }).noDaemon).toBe(true);
  expect(readEnvSettings({}).daemonVersion).toBeUndefined();
  expect(readEnvSettings({ BANGER_DAEMON_VERSION: "0.0.1" }).daemonVersion).toBe("0.0.1");
});
