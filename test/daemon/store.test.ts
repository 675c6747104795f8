import { Database } from "bun:sqlite";
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { NameTakenError, SCHEMA_VERSION, SqliteImageStore, StoreError, type ImageRecord } from "../../src/daemon/store.ts";
import { bangerPaths } from "../../src/daemon/paths.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-store-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const dbFile = () => path.join(tmp, `db${n++}`, "banger.db");

function record(id: string, name: string, extra: Partial<ImageRecord> = {}): ImageRecord {
  return {
    id,
    name,
    source: "docker.io/library/debian:bookworm",
    digest: "sha256:" + "ab".repeat(32),
    platform: "linux/amd64",
    rootfsPath: `/state/images/${id}/rootfs.ext4`,
    sizeBytes: 1 << 30,
    createdAt: "2026-01-02T03:04:05.000Z",
    env: ["PATH=/usr/bin:/bin"],
    cmd: ["bash"],
    entrypoint: null,
    workingDir: "",
    user: "",
    init: "systemd",
    kernelCmdline: "console=ttyS0 root=/dev/vda rw",
    injected: ["/root/.ssh/authorized_keys"],
    workSeedPath: `/state/images/${id}/work-seed.ext4`,
    kernelRef: null,
    ...extra,
  } as ImageRecord;
}

test("opens an empty file at the newest schema, in WAL mode, and reopens it with the rows intact", () => {
  const file = dbFile();
  const s = SqliteImageStore.open(file);
  expect(s.schemaVersion()).toBe(SCHEMA_VERSION);
  expect(SCHEMA_VERSION).toBeGreaterThan(0);
  expect(s.journalMode()).toBe("wal");
  const rec = record("0123456789ab", "debian-bookworm", { entrypoint: ["/init"], user: "1000:1000", workingDir: "/srv" });
  s.insert(rec);
  s.close();
  const again = SqliteImageStore.open(file);
  expect(again.schemaVersion()).toBe(SCHEMA_VERSION);
  expect(again.list()).toEqual([rec]);
  again.close();
});

test("refuses a database from a newer banger, naming it", () => {
  const file = dbFile();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file, { create: true });
  db.run(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  expect(() => SqliteImageStore.open(file)).toThrow(/schema version \d+, newer than this banger knows.*upgrade banger/);
});

test("names are unique: a second insert of a name throws NameTakenError and leaves the first", () => {
  const s = SqliteImageStore.open(dbFile());
  s.insert(record("0123456789ab", "x"));
  let err: unknown;
  try {
    s.insert(record("ba9876543210", "x"));
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(NameTakenError);
  expect((err as NameTakenError).holderId).toBe("0123456789ab");
  expect(s.list().map((r) => r.id)).toEqual(["0123456789ab"]);
  s.close();
});

test("find: exact name, exact id, unique id prefix of 4+ hex digits; ambiguous prefixes are an error", () => {
  const s = SqliteImageStore.open(dbFile());
  s.insert(record("aaaa11112222", "one"));
  s.insert(record("aaaa33334444", "two"));
  s.insert(record("bbbb55556666", "aaaa33")); // a name that looks like an id prefix wins over the prefix
  expect(s.find("one")?.id).toBe("aaaa11112222");
  expect(s.find("aaaa33334444")?.name).toBe("two");
  expect(s.find("aaaa1")?.name).toBe("one");
  expect(s.find("aaaa33")?.name).toBe("aaaa33");
  expect(s.find("bbbb")?.name).toBe("aaaa33");
  expect(s.find("bbb")).toBeNull(); // too short to be a prefix
  expect(s.find("nope")).toBeNull();
  expect(s.find("aa%")).toBeNull();
  expect(() => s.find("aaaa")).toThrow(StoreError);
  expect(() => s.find("aaaa")).toThrow(/matches more than one image/);
  expect(s.delete("aaaa11112222")).toBe(true);
  expect(s.delete("aaaa11112222")).toBe(false);
  expect(s.find("aaaa")?.name).toBe("two");
  s.close();
});

test("bangerPaths follows XDG and falls back to HOME; relative XDG values are ignored", () => {
  const p = bangerPaths({ HOME: "/home/u", XDG_STATE_HOME: "/s", XDG_CACHE_HOME: "/c", XDG_CONFIG_HOME: "/cfg", XDG_RUNTIME_DIR: "/run/user/7" });
  expect(p).toEqual({
    stateDir: "/s/banger",
    imagesDir: "/s/banger/images",
    kernelsDir: "/s/banger/kernels",
    dbPath: "/s/banger/banger.db",
    cacheDir: "/c/banger",
    blobCacheDir: "/c/banger/oci",
    kernelDownloadDir: "/c/banger/kernels",
    configDir: "/cfg/banger",
    runtimeDir: "/run/user/7/banger",
    socketPath: "/run/user/7/banger/banger.sock",
    lockPath: "/run/user/7/banger/daemon.lock",
    startLockPath: "/run/user/7/banger/start.lock",
    daemonOutPath: "/run/user/7/banger/daemon.out",
    logPath: "/s/banger/daemon.log",
  });
  const q = bangerPaths({ HOME: "/home/u", XDG_STATE_HOME: "relative/state" });
  expect(q.stateDir).toBe("/home/u/.local/state/banger");
  expect(q.cacheDir).toBe("/home/u/.cache/banger");
  expect(q.configDir).toBe("/home/u/.config/banger");
});

test("a database of schema 1 (before guest integration) is brought forward; its rows read with no guest facts", () => {
  const file = dbFile();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file, { create: true });
  db.run(`CREATE TABLE images (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, source TEXT NOT NULL, digest TEXT NOT NULL, platform TEXT NOT NULL,
          rootfs_path TEXT NOT NULL, size_bytes INTEGER NOT NULL, created_at TEXT NOT NULL, config TEXT NOT NULL) STRICT`);
  db.run(`INSERT INTO images VALUES ('aaaa00000001', 'old', 'x', 'sha256:${"00".repeat(32)}', 'linux/amd64', '/r', 1, '2026-01-01T00:00:00.000Z', '{"env":[],"cmd":null,"entrypoint":null,"workingDir":"","user":""}')`);
  db.run("PRAGMA user_version = 1");
  db.close();
  const s = SqliteImageStore.open(file);
  expect(s.schemaVersion()).toBe(SCHEMA_VERSION);
  expect(s.byName("old")).toMatchObject({ name: "old", init: null, kernelCmdline: null, injected: [], workSeedPath: null });
  s.insert(record("bbbb00000002", "new"));
  expect(s.byName("new")).toEqual(record("bbbb00000002", "new"));
  s.close();
});
