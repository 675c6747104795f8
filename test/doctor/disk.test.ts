// Free space in the state and cache dirs: pass from 5 GiB, warn below, fail below 1 GiB; measured
// on the nearest existing ancestor when the dir is not there yet.
import { expect, test } from "bun:test";
import { cacheSpaceCheck, spaceCheck, stateSpaceCheck } from "../../src/doctor/disk.ts";
import { STATE_DIR } from "../../src/doctor/common.ts";
import { GiB, fakeContext, fakeProbe } from "./fake-probe.ts";

const existingState = { "/home": "directory", "/home/u": "directory", "/home/u/.local": "directory", "/home/u/.local/state": "directory", "/home/u/.local/state/banger": "directory" } as const;

test("plenty of space passes and says where", async () => {
  const probe = fakeProbe({ paths: existingState, freeBytes: 72.1 * GiB, mount: "/home" });
  const r = await stateSpaceCheck.run(fakeContext(probe));
  expect(r).toEqual({ status: "pass", summary: "72.1 GiB free on /home (state dir /home/u/.local/state/banger)" });
  expect(probe.asked.statfs).toEqual(["/home/u/.local/state/banger"]);
});

test("under 5 GiB warns, under 1 GiB fails; both name the filesystem and the variable that moves the dir", async () => {
  const warn = await stateSpaceCheck.run(fakeContext(fakeProbe({ paths: existingState, freeBytes: 3.2 * GiB, mount: "/var" })));
  expect(warn.status).toBe("warn");
  expect(warn.summary).toStartWith("only 3.2 GiB free on /var");
  expect(warn.fix).toContain("free space on /var");
  expect(warn.fix).toContain("XDG_STATE_HOME");

  const fail = await stateSpaceCheck.run(fakeContext(fakeProbe({ paths: existingState, freeBytes: 0.4 * GiB, mount: "/var" })));
  expect(fail.status).toBe("fail");
  expect(fail.summary).toStartWith("only 0.4 GiB free on /var");
  expect(fail.fix).toContain("XDG_STATE_HOME");
});

test("the limits are strict: exactly 5 GiB passes, exactly 1 GiB warns, a byte less fails", async () => {
  const at = async (freeBytes: number) => (await stateSpaceCheck.run(fakeContext(fakeProbe({ paths: existingState, freeBytes })))).status;
  expect(await at(5 * GiB)).toBe("pass");
  expect(await at(5 * GiB - 1)).toBe("warn");
  expect(await at(GiB)).toBe("warn");
  expect(await at(GiB - 1)).toBe("fail");
  expect(await at(0)).toBe("fail");
});

test("a dir that does not exist yet is measured on its nearest existing ancestor", async () => {
  // Only /home/u exists: the cache dir will be made there.
  const probe = fakeProbe({ paths: { "/home": "directory", "/home/u": "directory" }, freeBytes: 20 * GiB });
  const r = await cacheSpaceCheck.run(fakeContext(probe));
  expect(r.status).toBe("pass");
  expect(probe.asked.statfs).toEqual(["/home/u"]);
  expect(probe.asked.mountPoint).toEqual(["/home/u"]);
  expect(r.summary).toContain("/home/u/.cache/banger");
});

test("the cache's fix also offers a prune; the id names the dir", async () => {
  const r = await cacheSpaceCheck.run(fakeContext(fakeProbe({ freeBytes: 2 * GiB })));
  expect(cacheSpaceCheck.id).toBe("cache-space");
  expect(stateSpaceCheck.id).toBe("state-space");
  expect(r.fix).toContain("banger image cache prune");
  expect(r.fix).toContain("XDG_CACHE_HOME");
});

test("thresholds are options; tiny amounts are shown in MiB", async () => {
  const check = spaceCheck(STATE_DIR, { warnBelow: 100 * GiB, failBelow: 50 * GiB });
  expect((await check.run(fakeContext(fakeProbe({ freeBytes: 60 * GiB })))).status).toBe("warn");
  const r = await stateSpaceCheck.run(fakeContext(fakeProbe({ freeBytes: 12 * 1024 ** 2 })));
  expect(r.summary).toStartWith("only 12 MiB free on /");
});
