// KernelService: kernels to boot images with, from local files (register) or from the kernel
// catalog (pull), and list, show, remove, reconcile. Publishing works as for images:
//
//   <kernels>/<id>.staging/            .owner names the live process filling it
//     vmlinuz | vmlinux                the kernel (a bzImage, or an uncompressed ELF / arm64 Image)
//     initrd.img                       optional
//     modules/<version>/...            optional: what is /lib/modules/<version> in a guest
//     kernel.json                      the record
//   rename -> <kernels>/<id>/          complete, still owned until its row exists
//   INSERT row (name re-checked)       only now does the kernel exist for list/show
//
// Any failure removes what was made; reconcile() clears what a killed process left. The
// version and architecture come from the kernel file itself (src/kernel/identify.ts), checked
// against the modules directory's name where both say.
import fs from "node:fs";
import path from "node:path";
import { unpackKernelBundle } from "../bundle/kernel-read.ts";
import { sparseFileSha256 } from "../bundle/write.ts";
import { copyTree, removeTree } from "../io/copy-tree.ts";
import { findModulesVersionDir } from "../inject/kernel-modules.ts";
import { identifyKernel, kernelFileName, kernelVersion, type KernelIdentity } from "../kernel/index.ts";
import { DownloadError, downloadVerified, partialPath } from "../oci/download.ts";
import type { RetryPolicy } from "../oci/http.ts";
import { fileChunks } from "../oci/layer-stream.ts";
import { hostPlatform } from "../oci/platform.ts";
import { zstdDecompressNative } from "../oci/zstd.ts";
import { nameProblem } from "./image-names.ts";
import type { CatalogKernel } from "./kernel-catalog.ts";
import { KernelNameTakenError, type KernelRecord, type KernelStore, type KernelUser } from "./kernel-store.ts";
import type { BangerPaths } from "./paths.ts";
import { ownerAlive, OWNER_FILE, writeOwner } from "./staging.ts";

export class KernelError extends Error {
  override name = "KernelError";
}

export class KernelNotFoundError extends KernelError {
  override name = "KernelNotFoundError";
}

/** The kernel is named by images (images.kernel_ref); it was not removed. */
export class KernelInUseError extends KernelError {
  override name = "KernelInUseError";
  constructor(readonly kernel: KernelRecord, readonly users: KernelUser[]) {
    const names = users.map((u) => u.name);
    super(`kernel "${kernel.name}" is used by image${names.length === 1 ? "" : "s"} ${names.join(", ")}; remove ${names.length === 1 ? "it" : "them"} first (banger image rm ${names.join(" ")})`);
  }
}

/** Progress of a kernel pull, for the CLI to render. */
export type KernelPullEvent =
  | { type: "phase"; phase: "download" | "unpack" | "publish"; detail?: string }
  | { type: "download"; bytesDone: number; bytesTotal: number; state: "downloading" | "resuming" | "retrying" | "done"; reason?: string };

export type KernelPullListener = (e: KernelPullEvent) => void;

export interface KernelServiceOptions {
  paths: Pick<BangerPaths, "kernelsDir" | "kernelDownloadDir">;
  store: KernelStore;
  /** The kernel catalog, read when a pull needs it (a broken catalog file fails only pulls). */
  catalog?: () => CatalogKernel[];
  /** Retries of a catalog download (default: the registry client's). */
  retry?: RetryPolicy;
  /** The architecture catalog entries are picked for (default: the host's, "amd64"). */
  arch?: string;
  /** Where reconcile and cleanup failures are reported. */
  log?: (message: string) => void;
  /** For tests: the clock behind createdAt. */
  now?: () => Date;
}

export interface RegisterRequest {
  name: string;
  /** The kernel file: a bzImage (vmlinuz), an ELF vmlinux or an arm64 Image. */
  kernel: string;
  initrd?: string;
  /** The modules tree: lib/modules/<version> itself, or a directory holding lib/modules/<version> or <version>/. */
  modules?: string;
}

export interface KernelPullRequest {
  /** The catalog entry's name. */
  name: string;
  /** The name the kernel is stored under (default: the catalog's). */
  as?: string;
  signal?: AbortSignal;
  progress?: KernelPullListener;
}

export interface KernelReconcileReport {
  staging: string[];
  orphanDirs: string[];
  rowsWithoutFiles: string[];
}

const ID_DIR = /^[0-9a-f]{12}$/;
const STAGING_DIR = /^([0-9a-f]{12})\.staging$/;
const RECORD_FILE = "kernel.json";
const INITRD_FILE = "initrd.img";
const MODULES_DIR = "modules";
const OWNERLESS_GRACE_MS = 60_000;

function newId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString("hex");
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Copies a file, hashing it on the way: the kernel's sha256 is of exactly the bytes stored. */
function copyHashing(src: string, dst: string): string {
  const h = new Bun.CryptoHasher("sha256");
  const inFd = fs.openSync(src, "r");
  try {
    const st = fs.fstatSync(inFd);
    const outFd = fs.openSync(dst, "wx", st.mode & 0o777);
    try {
      const buf = new Uint8Array(1 << 20);
      for (let pos = 0; ; ) {
        const n = fs.readSync(inFd, buf, 0, buf.length, pos);
        if (n <= 0) break;
        for (let off = 0; off < n; ) off += fs.writeSync(outFd, buf, off, n - off, pos + off);
        h.update(buf.subarray(0, n));
        pos += n;
      }
      fs.futimesSync(outFd, st.atime, st.mtime);
    } finally {
      fs.closeSync(outFd);
    }
  } finally {
    fs.closeSync(inFd);
  }
  return h.digest("hex");
}

/** What a filled staging directory holds; the record is made from it. */
interface Staged {
  kernelFile: "vmlinuz" | "vmlinux";
  initrd: boolean;
  modules: boolean;
  version: string;
  arch: string;
  sha256: string;
}

export class KernelService {
  private readonly paths: KernelServiceOptions["paths"];
  private readonly store: KernelStore;
  private readonly catalog: () => CatalogKernel[];
  private readonly retry: RetryPolicy | undefined;
  private readonly arch: string | undefined;
  private readonly log: (message: string) => void;
  private readonly now: () => Date;
  /** Ids this process is making right now: our own pid in an owner file is live only for these. */
  private readonly inProgress = new Set<string>();

  constructor(opts: KernelServiceOptions) {
    this.paths = opts.paths;
    this.store = opts.store;
    this.catalog = opts.catalog ?? (() => []);
    this.retry = opts.retry;
    this.arch = opts.arch;
    this.log = opts.log ?? (() => {});
    this.now = opts.now ?? (() => new Date());
  }

  private kernelDir(id: string): string {
    return path.join(this.paths.kernelsDir, id);
  }

  /** Copies the files into the store. Nothing is kept when anything fails. */
  async register(req: RegisterRequest): Promise<KernelRecord> {
    // Every input is checked before anything is written: a typo fails at once, naming the file.
    let identity: KernelIdentity;
    let modulesRoot: string | null = null;
    const kernel = path.resolve(req.kernel);
    try {
      identity = identifyKernel(kernel);
      if (req.initrd !== undefined) {
        const st = fs.statSync(req.initrd, { throwIfNoEntry: false });
        if (!st?.isFile()) throw new KernelError(`initrd ${req.initrd}: ${st ? "not a regular file" : "no such file"}`);
      }
      if (req.modules !== undefined) modulesRoot = findModulesVersionDir(path.resolve(req.modules));
    } catch (err) {
      throw new KernelError(`kernel "${req.name}": ${errorText(err)}`, { cause: err });
    }
    const version = this.wrap(req.name, () => kernelVersion(identity, kernel, modulesRoot));
    return this.create(req.name, `register:${kernel}`, async (staging) => {
      const kernelFile = kernelFileName(identity.format);
      const sha256 = copyHashing(kernel, path.join(staging, kernelFile));
      if (req.initrd !== undefined) fs.copyFileSync(req.initrd, path.join(staging, INITRD_FILE), fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE);
      if (modulesRoot) {
        fs.mkdirSync(path.join(staging, MODULES_DIR), { mode: 0o755 });
        copyTree(modulesRoot, path.join(staging, MODULES_DIR, version));
      }
      return { kernelFile, initrd: req.initrd !== undefined, modules: modulesRoot !== null, version, arch: identity.arch, sha256 };
    });
  }

  /** Downloads the catalog's bundle (verified, resumable), unpacks it and publishes it like register. */
  async pull(req: KernelPullRequest): Promise<KernelRecord> {
    const arch = this.arch ?? hostPlatform().architecture;
    let catalog: CatalogKernel[];
    try {
      catalog = this.catalog();
    } catch (err) {
      throw new KernelError(errorText(err), { cause: err });
    }
    const entry = catalog.find((e) => e.name === req.name && e.arch === arch);
    if (!entry) {
      const names = [...new Set(catalog.filter((e) => e.arch === arch).map((e) => e.name))];
      throw new KernelNotFoundError(`no kernel "${req.name}" for ${arch} in the kernel catalog (${names.length ? `it has ${names.join(", ")}` : `it has none for ${arch}`})`);
    }
    const name = req.as ?? entry.name;
    const progress = req.progress;
    const bundle = path.join(this.paths.kernelDownloadDir, `${entry.sha256}.tar.zst`);
    return this.create(name, entry.url, async (staging) => {
      progress?.({ type: "phase", phase: "download", detail: entry.url });
      await fs.promises.mkdir(this.paths.kernelDownloadDir, { recursive: true });
      let state: "downloading" | "resuming" | "retrying" | null = null;
      try {
        try {
          await downloadVerified(entry.url, bundle, {
            sha256: entry.sha256,
            size: entry.size,
            signal: req.signal,
            retry: this.retry,
            what: `kernel "${name}"`,
            progress: (done, total) => {
              // The first bytes of a try that starts past 0 are a resume.
              const next = state === null || state === "retrying" ? (done > 0 && done < total ? "resuming" : "downloading") : "downloading";
              state = next;
              progress?.({ type: "download", bytesDone: done, bytesTotal: total, state: next });
            },
            retrying: (reason, done) => {
              state = "retrying";
              progress?.({ type: "download", bytesDone: done, bytesTotal: entry.size, state: "retrying", reason });
            },
          });
        } catch (err) {
          // A download that failed for want of bytes (not a wrong checksum, not an interrupt)
          // keeps what it got: say so, since the next pull starts from there.
          const kept = fs.statSync(partialPath(bundle), { throwIfNoEntry: false })?.size ?? 0;
          const keptNote = `the ${kept} of ${entry.size} bytes downloaded are kept for the next pull to resume from`;
          if (kept > 0 && req.signal?.aborted) throw new KernelError(`kernel "${name}": interrupted; nothing was stored; ${keptNote}`, { cause: err });
          if (kept > 0 && !(err instanceof DownloadError)) throw new KernelError(`${errorText(err)}; ${keptNote}`, { cause: err });
          throw err;
        }
        progress?.({ type: "download", bytesDone: entry.size, bytesTotal: entry.size, state: "done" });
        progress?.({ type: "phase", phase: "unpack" });
        req.signal?.throwIfAborted();
        const where = `bundle ${entry.url}`;
        const contents = await unpackKernelBundle(zstdDecompressNative(fileChunks(bundle)), staging, { where });
        const kernelPath = path.join(staging, contents.kernel);
        const identity = identifyKernel(kernelPath);
        if (kernelFileName(identity.format) !== contents.kernel) {
          throw new KernelError(`${where}: its ${contents.kernel} is ${identity.format === "bzImage" ? "a bzImage (named vmlinuz in a bundle)" : `an uncompressed ${identity.format} (named vmlinux in a bundle)`}`);
        }
        if (identity.arch !== entry.arch) throw new KernelError(`${where}: the kernel is for ${identity.arch}, the catalog says ${entry.arch}`);
        let modulesRoot: string | null = null;
        if (contents.modules) {
          const names = fs.readdirSync(path.join(staging, MODULES_DIR));
          const only = names.length === 1 ? path.join(staging, MODULES_DIR, names[0]!) : null;
          if (!only || !fs.lstatSync(only).isDirectory() || !fs.existsSync(path.join(only, "modules.dep"))) {
            throw new KernelError(`${where}: modules/ must hold one directory, modules/<version>/, with modules.dep in it (found ${names.length ? names.join(", ") : "nothing"})`);
          }
          modulesRoot = only;
        }
        const version = kernelVersion(identity, contents.kernel, modulesRoot);
        if (modulesRoot && path.basename(modulesRoot) !== version) throw new KernelError(`${where}: the modules are in modules/${path.basename(modulesRoot)}/, the kernel is ${version}`);
        return { kernelFile: contents.kernel, initrd: contents.initrd, modules: contents.modules, version, arch: identity.arch, sha256: sparseFileSha256(kernelPath) };
      } finally {
        // The kernel is kept unpacked: the bundle is not kept beside it. A partial download stays
        // (downloadVerified keeps it only while it can still be resumed).
        await fs.promises.rm(bundle, { force: true });
      }
    }, req.signal, progress);
  }

  private wrap<T>(name: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new KernelError(`kernel "${name}": ${errorText(err)}`, { cause: err });
    }
  }

  /** Staging dir, `fill`, record, rename, row: the one way a kernel enters the store. */
  private async create(name: string, source: string, fill: (staging: string) => Promise<Staged>, signal?: AbortSignal, progress?: KernelPullListener): Promise<KernelRecord> {
    const problem = nameProblem(name);
    if (problem) throw new KernelError(`invalid kernel name "${name}": ${problem}`);
    const holder = this.store.byName(name);
    if (holder) throw new KernelError(`kernel "${name}" already exists (id ${holder.id}, from ${holder.source}); remove it with \`banger kernel rm ${name}\` or pick another --name`);
    const id = newId();
    const staging = path.join(this.paths.kernelsDir, `${id}.staging`);
    const final = this.kernelDir(id);
    this.inProgress.add(id);
    let stagingMade = false;
    let renamed = false;
    try {
      await fs.promises.mkdir(this.paths.kernelsDir, { recursive: true });
      await fs.promises.mkdir(staging);
      stagingMade = true;
      await writeOwner(staging);
      const s = await fill(staging);
      signal?.throwIfAborted();
      const record: KernelRecord = {
        id,
        name,
        version: s.version,
        arch: s.arch,
        kernelPath: path.join(final, s.kernelFile),
        initrdPath: s.initrd ? path.join(final, INITRD_FILE) : null,
        modulesPath: s.modules ? path.join(final, MODULES_DIR, s.version) : null,
        source,
        sha256: s.sha256,
        createdAt: this.now().toISOString(),
      };
      await fs.promises.writeFile(path.join(staging, RECORD_FILE), JSON.stringify(record, null, 2) + "\n");
      progress?.({ type: "phase", phase: "publish", detail: name });
      await fs.promises.rename(staging, final);
      renamed = true;
      try {
        this.store.insert(record);
      } catch (err) {
        if (err instanceof KernelNameTakenError) throw new KernelError(`kernel "${name}" was created by another command meanwhile (id ${err.holderId}); this one was discarded`, { cause: err });
        throw err;
      }
      // The row exists: from here reconcile judges the directory by the row, not the owner.
      await fs.promises.rm(path.join(final, OWNER_FILE), { force: true });
      return record;
    } catch (err) {
      if (renamed) await this.removeDir(final);
      else if (stagingMade) await this.removeDir(staging);
      if (signal?.aborted) {
        if (err instanceof KernelError && err.message.startsWith(`kernel "${name}": interrupted`)) throw err;
        throw new KernelError(`kernel "${name}": interrupted; nothing was stored`, { cause: err });
      }
      // Every failure names the kernel once, whatever part (download, unpack, copy) failed.
      const text = errorText(err);
      if (err instanceof KernelError && text.startsWith(`kernel "${name}"`)) throw err;
      throw new KernelError(text.startsWith(`kernel "${name}"`) ? text : `kernel "${name}": ${text}`, { cause: err });
    } finally {
      this.inProgress.delete(id);
    }
  }

  private async removeDir(dir: string): Promise<void> {
    try {
      await removeTree(dir);
    } catch (err) {
      this.log(`cannot remove ${dir}: ${errorText(err)}`);
    }
  }

  list(): KernelRecord[] {
    return this.store.list();
  }

  show(nameOrId: string): KernelRecord {
    let found: KernelRecord | null;
    try {
      found = this.store.find(nameOrId);
    } catch (err) {
      throw new KernelError(errorText(err), { cause: err });
    }
    if (!found) throw new KernelNotFoundError(`kernel "${nameOrId}" not found; \`banger kernel list\` shows the kernels there are`);
    return found;
  }

  /** Images that boot with the kernel (images.kernel_ref). */
  users(nameOrId: string): KernelUser[] {
    return this.store.users(this.show(nameOrId));
  }

  /** Deletes the row (refused while an image refers to the kernel), then the directory. */
  async remove(nameOrId: string): Promise<KernelRecord> {
    const rec = this.show(nameOrId);
    const users = this.store.deleteUnlessUsed(rec);
    if (users.length > 0) throw new KernelInUseError(rec, users);
    await removeTree(this.kernelDir(rec.id));
    return rec;
  }

  /**
   * Makes the kernels dir and the table agree: removes staging dirs of dead processes, kernel
   * dirs without a row (unless a live command is between rename and insert), and rows whose
   * kernel file is gone.
   */
  async reconcile(): Promise<KernelReconcileReport> {
    const report: KernelReconcileReport = { staging: [], orphanDirs: [], rowsWithoutFiles: [] };
    let names: string[] = [];
    try {
      names = await fs.promises.readdir(this.paths.kernelsDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const rows = new Map(this.store.list().map((r) => [r.id, r]));
    for (const entry of names) {
      const dir = path.join(this.paths.kernelsDir, entry);
      const staging = STAGING_DIR.exec(entry);
      const id = staging ? staging[1]! : ID_DIR.test(entry) ? entry : null;
      if (id === null || (!staging && rows.has(id))) continue;
      const alive = ownerAlive(dir, this.inProgress.has(id));
      if (alive === true) continue;
      if (alive === "no-owner" && staging) {
        const st = await fs.promises.stat(dir).catch(() => null);
        if (!st || Date.now() - st.mtimeMs < OWNERLESS_GRACE_MS) continue;
      }
      // Re-read after the checks: a live command may have inserted its row meanwhile.
      if (!staging && this.store.find(id)?.id === id) continue;
      await removeTree(dir);
      (staging ? report.staging : report.orphanDirs).push(entry);
      this.log(`removed ${staging ? "an abandoned staging" : "an unlisted kernel"} directory ${dir}`);
    }
    for (const r of rows.values()) {
      if (fs.existsSync(r.kernelPath)) continue;
      this.store.delete(r.id);
      report.rowsWithoutFiles.push(r.name);
      this.log(`forgot kernel "${r.name}" (${r.id}): ${r.kernelPath} is gone`);
    }
    return report;
  }

  /** Where a download of this catalog entry resumes from (for messages and tests). */
  partialDownload(entry: CatalogKernel): string {
    return partialPath(path.join(this.paths.kernelDownloadDir, `${entry.sha256}.tar.zst`));
  }
}
