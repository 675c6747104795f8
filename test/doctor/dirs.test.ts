// banger's dirs are writable or creatable: judged by creating a file in the dir, or in its
// nearest existing ancestor when it does not exist yet. Fake hosts for the failures, the real
// probe on real temp dirs for "it leaves nothing behind".
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { cacheDirCheck, configDirCheck, runtimeDirCheck, stateDirCheck } from "../../src/doctor/dirs.ts";
import { createHostProbe } from "../../src/doctor/probe.ts";
import { fakeContext, fakeProbe } from "./fake-probe.ts";

const home = { "/home": "directory", "/home/u": "directory" } as const;
const state = "/home/u/.local/state/banger";

test("an existing writable dir passes; the file is tried in the dir itself", async () => {
  const probe = fakeProbe({ paths: { ...home, "/home/u/.local": "directory", "/home/u/.local/state": "directory", [state]: "directory" } });
  const r = await stateDirCheck.run(fakeContext(probe));
  expect(r).toEqual({ status: "pass", summary: `${state} is writable` });
  expect(probe.asked.tryCreateFile).toEqual([state]);
});

test("an existing dir this user cannot write in fails, with the error and a chown of that dir only", async () => {
  const probe = fakeProbe({ paths: { ...home, "/home/u/.cache": "directory", "/home/u/.cache/banger": "directory" }, unwritable: { "/home/u/.cache/banger": "EACCES" } });
  const r = await cacheDirCheck.run(fakeContext(probe));
  expect(r.status).toBe("fail");
  expect(r.summary).toBe("cannot write in /home/u/.cache/banger (EACCES)");
  expect(r.fix).toContain("sudo chown -R $USER /home/u/.cache/banger");
  expect(r.fix).toContain("XDG_CACHE_HOME");
});

test("a missing dir passes when its nearest existing ancestor is writable", async () => {
  const probe = fakeProbe({ paths: home });
  const r = await configDirCheck.run(fakeContext(probe));
  expect(r).toEqual({ status: "pass", summary: "/home/u/.config/banger does not exist yet; it can be created in /home/u" });
  expect(probe.asked.tryCreateFile).toEqual(["/home/u"]);
});

test("a missing dir under a read-only ancestor fails, and the fix never hands the ancestor over", async () => {
  const probe = fakeProbe({ paths: { "/run": "directory", "/run/user": "directory" }, unwritable: { "/run/user": "EROFS" } });
  const r = await runtimeDirCheck.run(fakeContext(probe));
  expect(r.status).toBe("fail");
  expect(r.summary).toBe("/run/user/1000/banger does not exist and cannot be created: cannot write in /run/user (EROFS)");
  expect(r.fix).toContain("sudo install -d -m 700 -o $USER /run/user/1000/banger");
  expect(r.fix).not.toContain("chown");
  expect(r.fix).toContain("XDG_RUNTIME_DIR");
});

test("a file where the dir or one of its parents should be fails without trying to write", async () => {
  const inTheWay = fakeProbe({ paths: { ...home, "/home/u/.local": "file" } });
  const r = await stateDirCheck.run(fakeContext(inTheWay));
  expect(r.status).toBe("fail");
  expect(r.summary).toBe(`/home/u/.local is not a directory, so ${state} cannot be created (it is a file)`);
  expect(r.fix).toContain("move /home/u/.local out of the way");
  expect(inTheWay.asked.tryCreateFile).toEqual([]);

  const itself = fakeProbe({ paths: { ...home, "/home/u/.config": "directory", "/home/u/.config/banger": "socket" } });
  expect((await configDirCheck.run(fakeContext(itself))).summary).toBe("/home/u/.config/banger is not a directory (it is a socket)");
});

test("ids: one per dir", () => {
  expect([stateDirCheck, cacheDirCheck, configDirCheck, runtimeDirCheck].map((c) => c.id)).toEqual(["state-dir", "cache-dir", "config-dir", "runtime-dir"]);
});

// The real probe on the real filesystem.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-doctor-dirs-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const probe = createHostProbe({ searchPath: "" });

test("real probe: an existing dir passes and keeps exactly what it had", async () => {
  const dir = path.join(tmp, "state", "banger");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "banger.db"), "x");
  const r = await stateDirCheck.run(fakeContext(probe, { paths: { stateDir: dir, cacheDir: dir, configDir: dir, runtimeDir: dir } }));
  expect(r.status).toBe("pass");
  expect(fs.readdirSync(dir)).toEqual(["banger.db"]);
});

test("real probe: a missing dir passes and is not created, and its ancestor keeps what it had", async () => {
  const base = path.join(tmp, "empty");
  fs.mkdirSync(base);
  const dir = path.join(base, "a", "b", "banger");
  const r = await cacheDirCheck.run(fakeContext(probe, { paths: { stateDir: dir, cacheDir: dir, configDir: dir, runtimeDir: dir } }));
  expect(r).toEqual({ status: "pass", summary: `${dir} does not exist yet; it can be created in ${base}` });
  expect(fs.readdirSync(base)).toEqual([]);
});

test("real probe: a file in the way fails", async () => {
  const file = path.join(tmp, "plain-file");
  fs.writeFileSync(file, "");
  const dir = path.join(file, "banger");
  const r = await stateDirCheck.run(fakeContext(probe, { paths: { stateDir: dir, cacheDir: dir, configDir: dir, runtimeDir: dir } }));
  expect(r.status).toBe("fail");
  expect(r.summary).toContain(`${file} is not a directory`);
});

// Root writes through permission bits: as root the dir is made unwritable with a read-only
// tmpfs mounted on it (EROFS) instead of its mode (EACCES for other users).
const isRoot = process.getuid?.() === 0;
test("real probe: a dir that cannot be written fails, naming why", async () => {
  const dir = path.join(tmp, "locked");
  fs.mkdirSync(dir, { mode: 0o500 });
  if (isRoot) {
    const m = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", dir]);
    if (m.exitCode !== 0) throw new Error(`mount of a read-only tmpfs failed: ${m.stderr.toString()}`);
  }
  try {
    const r = await stateDirCheck.run(fakeContext(probe, { paths: { stateDir: dir, cacheDir: dir, configDir: dir, runtimeDir: dir } }));
    expect(r.status).toBe("fail");
    expect(r.summary).toBe(`cannot write in ${dir} (${isRoot ? "EROFS" : "EACCES"})`);
  } finally {
    if (isRoot) Bun.spawnSync(["umount", dir]);
    fs.chmodSync(dir, 0o700);
  }
});

test("real probe: a dir under /proc, where no user can create files, fails", async () => {
  const dir = "/proc/banger-doctor-test/banger";
  const r = await runtimeDirCheck.run(fakeContext(probe, { paths: { stateDir: dir, cacheDir: dir, configDir: dir, runtimeDir: dir } }));
  expect(r.status).toBe("fail");
  expect(r.summary).toStartWith(`${dir} does not exist and cannot be created: cannot write in /proc (`);
});
