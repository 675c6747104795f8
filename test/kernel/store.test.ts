// The kernels table (src/daemon/kernel-store.ts, migrations 3 and 4 in store.ts): a database
// from before kernels is brought forward, names are unique, ids resolve by prefix, and a kernel
// an image names in kernel_ref (by name or id) is not deleted.
import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { KernelNameTakenError, SqliteKernelStore, type KernelRecord } from "../../src/daemon/kernel-store.ts";
import { SCHEMA_VERSION, SqliteImageStore } from "../../src/daemon/store.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-kernel-store-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const dbFile = () => path.join(tmp, `db-${n++}`, "banger.db");

const kernel = (id: string, name: string): KernelRecord => ({
  id,
  name,
  version: "6.1.0-28-cloud-amd64",
  arch: "amd64",
  kernelPath: `/k/${id}/vmlinuz`,
  initrdPath: null,
  modulesPath: `/k/${id}/modules/6.1.0-28-cloud-amd64`,
  source: "register:/boot/vmlinuz",
  sha256: "0".repeat(64),
  createdAt: `2026-01-0${n % 9 + 1}T00:00:00.000Z`,
});

test("a database of schema 2 (before kernels) gains the kernels table and images.kernel_ref; its images keep their rows", () => {
  const file = dbFile();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file, { create: true });
  db.run(`CREATE TABLE images (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, source TEXT NOT NULL, digest TEXT NOT NULL, platform TEXT NOT NULL,
          rootfs_path TEXT NOT NULL, size_bytes INTEGER NOT NULL, created_at TEXT NOT NULL, config TEXT NOT NULL) STRICT`);
  db.run(`ALTER TABLE images ADD COLUMN guest TEXT NOT NULL DEFAULT '{}'`);
  db.run(`INSERT INTO images (id, name, source, digest, platform, rootfs_path, size_bytes, created_at, config) VALUES ('aaaa00000001', 'old', 'x', 'sha256:${"00".repeat(32)}', 'linux/amd64', '/r', 1, '2026-01-01T00:00:00.000Z', '{"env":[],"cmd":null,"entrypoint":null,"workingDir":"","user":""}')`);
  db.run("PRAGMA user_version = 2");
  db.close();
  const s = SqliteImageStore.open(file);
  expect(s.schemaVersion()).toBe(SCHEMA_VERSION);
  expect(SCHEMA_VERSION).toBe(4);
  expect(s.byName("old")?.id).toBe("aaaa00000001");
  const cols = s.database.query<{ name: string }, []>("PRAGMA table_info(images)").all().map((c) => c.name);
  expect(cols).toContain("kernel_ref");
  expect(s.database.query<{ kernel_ref: string | null }, []>("SELECT kernel_ref FROM images").get()).toEqual({ kernel_ref: null });
  const kernels = new SqliteKernelStore(s.database);
  expect(kernels.list()).toEqual([]);
  kernels.insert(kernel("bbbb00000001", "cloud"));
  s.close();
  // Reopened: nothing re-applied, the row is there.
  const again = SqliteImageStore.open(file);
  expect(new SqliteKernelStore(again.database).byName("cloud")).toEqual(kernel("bbbb00000001", "cloud"));
  again.close();
});

test("names are unique; find takes a name, an id or a unique id prefix of 4+ hex digits", () => {
  const s = SqliteImageStore.open(dbFile());
  const k = new SqliteKernelStore(s.database);
  const a = kernel("cccc00000001", "a");
  k.insert(a);
  k.insert(kernel("cccc00000002", "b"));
  expect(() => k.insert(kernel("dddd00000001", "a"))).toThrow(KernelNameTakenError);
  expect(() => k.insert(kernel("dddd00000001", "a"))).toThrow('kernel name "a" is already taken (by kernel cccc00000001)');
  expect(k.find("a")).toEqual(a);
  expect(k.find("cccc00000001")).toEqual(a);
  expect(() => k.find("cccc")).toThrow('id prefix "cccc" matches more than one kernel');
  expect(k.find("ccc")).toBeNull();
  expect(k.find("cccc00000002")?.name).toBe("b");
  expect(k.list().map((r) => r.name).sort()).toEqual(["a", "b"]);
  s.close();
});

test("deleteUnlessUsed: refused (returning the images) while kernel_ref names the kernel by name or id", () => {
  const s = SqliteImageStore.open(dbFile());
  const k = new SqliteKernelStore(s.database);
  const rec = kernel("eeee00000001", "cloud");
  k.insert(rec);
  const image = (id: string, name: string, ref: string | null) =>
    s.database
      .query(`INSERT INTO images (id, name, source, digest, platform, rootfs_path, size_bytes, created_at, config, kernel_ref) VALUES (?, ?, 'x', 'd', 'linux/amd64', '/r', 1, '2026', '{}', ?)`)
      .run(id, name, ref);
  image("ffff00000001", "web", "cloud");
  image("ffff00000002", "api", "eeee00000001");
  image("ffff00000003", "other", "cloud-2");
  expect(k.users(rec)).toEqual([
    { id: "ffff00000002", name: "api" },
    { id: "ffff00000001", name: "web" },
  ]);
  expect(k.deleteUnlessUsed(rec).map((u) => u.name)).toEqual(["api", "web"]);
  expect(k.byName("cloud")).not.toBeNull();
  s.database.run("DELETE FROM images WHERE kernel_ref IS NOT 'cloud-2'");
  expect(k.deleteUnlessUsed(rec)).toEqual([]);
  expect(k.byName("cloud")).toBeNull();
  s.close();
});
