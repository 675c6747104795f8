// The image store: one row per published image, in bun:sqlite. A row is inserted only after
// its directory was renamed into place (see image-service.ts), so the table never lists a
// half-built image. WAL so readers (list, show) never wait for a writer; a busy timeout so
// two banger processes writing at once wait for each other instead of failing.
import { Database } from "bun:sqlite";
import fs from "node:fs";
import path from "node:path";

/** What `banger image show --json` prints, and what `<images>/<id>/image.json` holds. */
export interface ImageRecord {
  id: string;
  name: string;
  /** The source as the user wrote it, normalized (docker.io/library/debian:bookworm, rootfs:/abs/file.tar). */
  source: string;
  /** Manifest digest (synthesized by the source for docker-archive and rootfs tars). */
  digest: string;
  /** "linux/amd64", "linux/arm64/v8" */
  platform: string;
  rootfsPath: string;
  sizeBytes: number;
  /** ISO 8601 */
  createdAt: string;
  env: string[];
  cmd: string[] | null;
  entrypoint: string[] | null;
  workingDir: string;
  user: string;
  /** How the image boots: its own systemd, or banger's sh PID 1 (null: pulled before banger knew). */
  init: "systemd" | "banger-init" | null;
  /** The kernel command line banger boots it with ("... init=/usr/local/libexec/banger-init"). */
  kernelCmdline: string | null;
  /** Guest paths banger wrote into the image. */
  injected: string[];
  /** The image's /root as its own ext4 (work-seed.ext4), null when the image has none. */
  workSeedPath: string | null;
  /** The kernel it boots with (a kernel's name, `banger kernel list`), null when none is attached. */
  kernelRef: string | null;
}

export class StoreError extends Error {
  override name = "StoreError";
}

/** The name is in use; thrown by insert so a lost race between two pulls is told apart. */
export class NameTakenError extends StoreError {
  override name = "NameTakenError";
  constructor(readonly imageName: string, readonly holderId: string | undefined) {
    super(`image name "${imageName}" is already taken${holderId ? ` (by image ${holderId})` : ""}`);
  }
}

export interface ImageStore {
  /** Inserts; the name is checked inside the same transaction (NameTakenError). */
  insert(rec: ImageRecord): void;
  /** Exact name, then exact id, then a unique id prefix; null when nothing matches. */
  find(nameOrId: string): ImageRecord | null;
  byName(name: string): ImageRecord | null;
  list(): ImageRecord[];
  /** True when a row was deleted. */
  delete(id: string): boolean;
  close(): void;
}

/** Shortest id prefix accepted, so "a" never silently picks one image of many. */
export const MIN_ID_PREFIX = 4;

/**
 * Schema versions, applied in order from PRAGMA user_version. Never edit a shipped entry:
 * add one, so a database written by any earlier banger is brought forward.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE images (
     id          TEXT PRIMARY KEY,
     name        TEXT NOT NULL UNIQUE,
     source      TEXT NOT NULL,
     digest      TEXT NOT NULL,
     platform    TEXT NOT NULL,
     rootfs_path TEXT NOT NULL,
     size_bytes  INTEGER NOT NULL,
     created_at  TEXT NOT NULL,
     config      TEXT NOT NULL
   ) STRICT`,
  // 2: guest integration (init kind, kernel command line, injected files, work seed), as JSON.
  `ALTER TABLE images ADD COLUMN guest TEXT NOT NULL DEFAULT '{}'`,
  // 3: kernels (kernel-store.ts): registered from files or pulled from the kernel catalog.
  `CREATE TABLE kernels (
     id           TEXT PRIMARY KEY,
     name         TEXT NOT NULL UNIQUE,
     version      TEXT NOT NULL,
     arch         TEXT NOT NULL,
     kernel_path  TEXT NOT NULL,
     initrd_path  TEXT,
     modules_path TEXT,
     source       TEXT NOT NULL,
     sha256       TEXT NOT NULL,
     created_at   TEXT NOT NULL
   ) STRICT`,
  // 4: the kernel an image boots with (a kernel's name); a kernel named here is not removed.
  `ALTER TABLE images ADD COLUMN kernel_ref TEXT`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

interface Row {
  id: string;
  name: string;
  source: string;
  digest: string;
  platform: string;
  rootfs_path: string;
  size_bytes: number;
  created_at: string;
  config: string;
  guest: string;
  kernel_ref: string | null;
}

type ConfigColumn = Pick<ImageRecord, "env" | "cmd" | "entrypoint" | "workingDir" | "user">;
type GuestColumn = Partial<Pick<ImageRecord, "init" | "kernelCmdline" | "injected" | "workSeedPath">>;

function fromRow(r: Row): ImageRecord {
  const c = JSON.parse(r.config) as ConfigColumn;
  const g = JSON.parse(r.guest) as GuestColumn;
  return {
    id: r.id,
    name: r.name,
    source: r.source,
    digest: r.digest,
    platform: r.platform,
    rootfsPath: r.rootfs_path,
    sizeBytes: r.size_bytes,
    createdAt: r.created_at,
    env: c.env,
    cmd: c.cmd,
    entrypoint: c.entrypoint,
    workingDir: c.workingDir,
    user: c.user,
    init: g.init ?? null,
    kernelCmdline: g.kernelCmdline ?? null,
    injected: g.injected ?? [],
    workSeedPath: g.workSeedPath ?? null,
    kernelRef: r.kernel_ref ?? null,
  };
}

export class SqliteImageStore implements ImageStore {
  private constructor(private readonly db: Database) {}

  /** Opens (creating if needed) the database at `file` and brings its schema up to date. */
  static open(file: string, opts: { busyTimeoutMs?: number } = {}): SqliteImageStore {
    if (file !== ":memory:") fs.mkdirSync(path.dirname(file), { recursive: true });
    let db: Database;
    try {
      db = new Database(file, { create: true, strict: true });
    } catch (err) {
      throw new StoreError(`cannot open the image store ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    try {
      db.run(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
      db.run("PRAGMA journal_mode = WAL");
      db.run("PRAGMA foreign_keys = ON");
      migrate(db, file);
      return new SqliteImageStore(db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  insert(rec: ImageRecord): void {
    const config: ConfigColumn = { env: rec.env, cmd: rec.cmd, entrypoint: rec.entrypoint, workingDir: rec.workingDir, user: rec.user };
    const guest: GuestColumn = { init: rec.init, kernelCmdline: rec.kernelCmdline, injected: rec.injected, workSeedPath: rec.workSeedPath };
    // IMMEDIATE takes the write lock first, so the check and the insert see the same table
    // even when another process is publishing the same name.
    this.db
      .transaction(() => {
        const holder = this.db.query<{ id: string }, [string]>("SELECT id FROM images WHERE name = ?").get(rec.name);
        if (holder) throw new NameTakenError(rec.name, holder.id);
        this.db
          .query(
            `INSERT INTO images (id, name, source, digest, platform, rootfs_path, size_bytes, created_at, config, guest, kernel_ref)
             VALUES ($id, $name, $source, $digest, $platform, $rootfs_path, $size_bytes, $created_at, $config, $guest, $kernel_ref)`,
          )
          .run({
            id: rec.id,
            name: rec.name,
            source: rec.source,
            digest: rec.digest,
            platform: rec.platform,
            rootfs_path: rec.rootfsPath,
            size_bytes: rec.sizeBytes,
            created_at: rec.createdAt,
            config: JSON.stringify(config),
            guest: JSON.stringify(guest),
            kernel_ref: rec.kernelRef ?? null,
          });
      })
      .immediate();
  }

  byName(name: string): ImageRecord | null {
    const r = this.db.query<Row, [string]>("SELECT * FROM images WHERE name = ?").get(name);
    return r ? fromRow(r) : null;
  }

  find(nameOrId: string): ImageRecord | null {
    const named = this.byName(nameOrId);
    if (named) return named;
    const exact = this.db.query<Row, [string]>("SELECT * FROM images WHERE id = ?").get(nameOrId);
    if (exact) return fromRow(exact);
    if (nameOrId.length < MIN_ID_PREFIX || !/^[0-9a-f]+$/.test(nameOrId)) return null;
    // substr, not LIKE: ids are hex, but LIKE would still treat "_" and "%" in other input as wildcards.
    const rows = this.db
      .query<Row, [string, number]>("SELECT * FROM images WHERE substr(id, 1, ?2) = ?1 ORDER BY id LIMIT 2")
      .all(nameOrId, nameOrId.length);
    if (rows.length > 1) throw new StoreError(`id prefix "${nameOrId}" matches more than one image (${rows.map((r) => r.id).join(", ")}, ...); give more of the id`);
    return rows.length === 1 ? fromRow(rows[0]!) : null;
  }

  list(): ImageRecord[] {
    return this.db.query<Row, []>("SELECT * FROM images ORDER BY created_at, name").all().map(fromRow);
  }

  delete(id: string): boolean {
    return this.db.query("DELETE FROM images WHERE id = ?").run(id).changes > 0;
  }

  /** The open database, for the stores of the other tables in it (kernel-store.ts). */
  get database(): Database {
    return this.db;
  }

  /** PRAGMA journal_mode, for tests. */
  journalMode(): string {
    return this.db.query<{ journal_mode: string }, []>("PRAGMA journal_mode").get()!.journal_mode;
  }

  schemaVersion(): number {
    return this.db.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version;
  }

  close(): void {
    this.db.close();
  }
}

function migrate(db: Database, file: string): void {
  db.transaction(() => {
    const version = db.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version;
    if (version > MIGRATIONS.length) {
      throw new StoreError(`the image store ${file} has schema version ${version}, newer than this banger knows (${MIGRATIONS.length}); upgrade banger`);
    }
    for (let v = version; v < MIGRATIONS.length; v++) db.run(MIGRATIONS[v]!);
    // PRAGMA takes no bound parameters; the value is our own integer.
    if (version !== MIGRATIONS.length) db.run(`PRAGMA user_version = ${MIGRATIONS.length}`);
  }).immediate();
}
