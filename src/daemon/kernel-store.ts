// The kernels table (schema in store.ts's MIGRATIONS), in the same database as the images: one
// row per published kernel, inserted only after its directory was renamed into place
// (kernel-service.ts). Images name the kernel they boot with in images.kernel_ref; removing a
// kernel checks that column and deletes in one transaction, so an image cannot start to refer
// to a kernel between the check and the delete.
import type { Database } from "bun:sqlite";
import { MIN_ID_PREFIX, StoreError } from "./store.ts";

/** What `banger kernel show --json` prints, and what `<kernels>/<id>/kernel.json` holds. */
export interface KernelRecord {
  id: string;
  name: string;
  /** The release, as `uname -r` prints it in the guest ("6.1.0-28-cloud-amd64"). */
  version: string;
  /** "amd64", "arm64" */
  arch: string;
  /** The kernel file (`vmlinuz`, a bzImage, or `vmlinux`). */
  kernelPath: string;
  initrdPath: string | null;
  /** The directory that is /lib/modules/<version> in a guest, or null when the kernel came without modules. */
  modulesPath: string | null;
  /** "register:<absolute path of the kernel file>", or the catalog URL it was pulled from. */
  source: string;
  /** sha256 (hex) of the kernel file. */
  sha256: string;
  /** ISO 8601 */
  createdAt: string;
}

/** The name is in use; thrown by insert so a lost race between two registrations is told apart. */
export class KernelNameTakenError extends StoreError {
  override name = "KernelNameTakenError";
  constructor(readonly kernelName: string, readonly holderId: string | undefined) {
    super(`kernel name "${kernelName}" is already taken${holderId ? ` (by kernel ${holderId})` : ""}`);
  }
}

/** An image that boots with a kernel. */
export interface KernelUser {
  id: string;
  name: string;
}

export interface KernelStore {
  /** Inserts; the name is checked inside the same transaction (KernelNameTakenError). */
  insert(rec: KernelRecord): void;
  /** Exact name, then exact id, then a unique id prefix; null when nothing matches. */
  find(nameOrId: string): KernelRecord | null;
  byName(name: string): KernelRecord | null;
  list(): KernelRecord[];
  /** Images whose kernel_ref names this kernel (by name or id). */
  users(rec: KernelRecord): KernelUser[];
  /** Deletes the row unless an image refers to it; returns those images (empty: deleted, or already gone). */
  deleteUnlessUsed(rec: KernelRecord): KernelUser[];
  /** Deletes the row whatever refers to it (reconcile: its files are gone). True when a row was deleted. */
  delete(id: string): boolean;
}

interface Row {
  id: string;
  name: string;
  version: string;
  arch: string;
  kernel_path: string;
  initrd_path: string | null;
  modules_path: string | null;
  source: string;
  sha256: string;
  created_at: string;
}

function fromRow(r: Row): KernelRecord {
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    arch: r.arch,
    kernelPath: r.kernel_path,
    initrdPath: r.initrd_path,
    modulesPath: r.modules_path,
    source: r.source,
    sha256: r.sha256,
    createdAt: r.created_at,
  };
}

export class SqliteKernelStore implements KernelStore {
  /** `db` is the image store's (SqliteImageStore.database): opened, migrated, in WAL mode. */
  constructor(private readonly db: Database) {}

  insert(rec: KernelRecord): void {
    // IMMEDIATE: the name check and the insert see the same table, whatever other processes do.
    this.db
      .transaction(() => {
        const holder = this.db.query<{ id: string }, [string]>("SELECT id FROM kernels WHERE name = ?").get(rec.name);
        if (holder) throw new KernelNameTakenError(rec.name, holder.id);
        this.db
          .query(
            `INSERT INTO kernels (id, name, version, arch, kernel_path, initrd_path, modules_path, source, sha256, created_at)
             VALUES ($id, $name, $version, $arch, $kernel_path, $initrd_path, $modules_path, $source, $sha256, $created_at)`,
          )
          .run({
            id: rec.id,
            name: rec.name,
            version: rec.version,
            arch: rec.arch,
            kernel_path: rec.kernelPath,
            initrd_path: rec.initrdPath,
            modules_path: rec.modulesPath,
            source: rec.source,
            sha256: rec.sha256,
            created_at: rec.createdAt,
          });
      })
      .immediate();
  }

  byName(name: string): KernelRecord | null {
    const r = this.db.query<Row, [string]>("SELECT * FROM kernels WHERE name = ?").get(name);
    return r ? fromRow(r) : null;
  }

  find(nameOrId: string): KernelRecord | null {
    const named = this.byName(nameOrId);
    if (named) return named;
    const exact = this.db.query<Row, [string]>("SELECT * FROM kernels WHERE id = ?").get(nameOrId);
    if (exact) return fromRow(exact);
    if (nameOrId.length < MIN_ID_PREFIX || !/^[0-9a-f]+$/.test(nameOrId)) return null;
    // substr, not LIKE: LIKE would treat "_" and "%" as wildcards.
    const rows = this.db
      .query<Row, [string, number]>("SELECT * FROM kernels WHERE substr(id, 1, ?2) = ?1 ORDER BY id LIMIT 2")
      .all(nameOrId, nameOrId.length);
    if (rows.length > 1) throw new StoreError(`id prefix "${nameOrId}" matches more than one kernel (${rows.map((r) => r.id).join(", ")}, ...); give more of the id`);
    return rows.length === 1 ? fromRow(rows[0]!) : null;
  }

  list(): KernelRecord[] {
    return this.db.query<Row, []>("SELECT * FROM kernels ORDER BY created_at, name").all().map(fromRow);
  }

  users(rec: KernelRecord): KernelUser[] {
    return this.db
      .query<KernelUser, [string, string]>("SELECT id, name FROM images WHERE kernel_ref = ?1 OR kernel_ref = ?2 ORDER BY name")
      .all(rec.name, rec.id);
  }

  deleteUnlessUsed(rec: KernelRecord): KernelUser[] {
    return this.db
      .transaction(() => {
        const users = this.users(rec);
        if (users.length === 0) this.db.query("DELETE FROM kernels WHERE id = ?").run(rec.id);
        return users;
      })
      .immediate();
  }

  delete(id: string): boolean {
    return this.db.query("DELETE FROM kernels WHERE id = ?").run(id).changes > 0;
  }
}
