// The real HostProbe against this host: what every check's fakes stand in for.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createHostProbe } from "../../src/doctor/probe.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-doctor-probe-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const probe = createHostProbe({ searchPath: process.env.PATH });

test("kind follows what is there", () => {
  fs.writeFileSync(path.join(tmp, "f"), "");
  fs.symlinkSync(tmp, path.join(tmp, "link"));
  expect(probe.kind(tmp)).toBe("directory");
  expect(probe.kind(path.join(tmp, "f"))).toBe("file");
  expect(probe.kind(path.join(tmp, "link"))).toBe("directory");
  expect(probe.kind("/dev/null")).toBe("char-device");
  expect(probe.kind(path.join(tmp, "missing"))).toBeNull();
  expect(probe.kind(path.join(tmp, "f", "under-a-file"))).toBeNull();
});

test("statfs agrees with node's own numbers, and the mount point holds the path", () => {
  const s = probe.statfs(tmp);
  const raw = fs.statfsSync(tmp);
  expect(s.freeBytes).toBe(raw.bavail * raw.bsize);
  expect(s.totalBytes).toBeGreaterThanOrEqual(s.freeBytes);
  const mount = probe.mountPoint(tmp);
  expect(tmp === mount || tmp.startsWith(mount === "/" ? "/" : mount + "/")).toBe(true);
  expect(fs.statSync(mount).dev).toBe(fs.statSync(tmp).dev);
  expect(probe.mountPoint("/")).toBe("/");
});

test("canReadWrite: /dev/null yes, a missing path no", () => {
  expect(probe.canReadWrite("/dev/null")).toBe(true);
  expect(probe.canReadWrite(path.join(tmp, "missing"))).toBe(false);
});

test("which searches the path it was given, and only that", () => {
  expect(probe.which("sh")).toStartWith("/");
  expect(createHostProbe({ searchPath: tmp }).which("sh")).toBeNull();
  expect(createHostProbe({ searchPath: undefined }).which("sh")).toBeNull();
});

test("tryCreateFile leaves nothing behind, and throws the error where it cannot write", () => {
  const dir = path.join(tmp, "d");
  fs.mkdirSync(dir);
  probe.tryCreateFile(dir);
  expect(fs.readdirSync(dir)).toEqual([]);
  expect(() => probe.tryCreateFile(path.join(tmp, "missing"))).toThrow(expect.objectContaining({ code: "ENOENT" }));
});
