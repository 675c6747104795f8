// ImageService: pull (source -> rootfs.ext4 -> published image), list, show, remove, ls, and
// the start-up reconcile. Publishing is what keeps the store honest:
//
//   <images>/<id>.staging/          made before resolve (.owner names the live process doing it)
//     rootfs.ext4, image.json       (and unlinked spools of stdin and layers while the pull runs)
//   rename -> <images>/<id>/        complete, still owned until its row exists
//   INSERT row (name re-checked)    only now does the image exist for list/show
//
// Any failure removes what was made; reconcile() clears what a killed process left.
import fs from "node:fs";
import path from "node:path";
import type { BlobCache, ImageSource, Platform, ResolvedImage, SourceOptions } from "../oci/index.ts";
import { formatPlatform, hostPlatform, prestartLayerWorker } from "../oci/index.ts";
import { installBundleImage } from "./bundle-install.ts";
import type { CatalogImage } from "./catalog.ts";
import type { GuestAssets } from "../inject/index.ts";
import type { BuildResult, BuildSettings, GuestSetup, RootfsBuilderFn } from "./build-image.ts";
import type { PullListener } from "./events.ts";
import { listExt4Dir, type ImageDirEntry } from "./image-ls.ts";
import { defaultImageName, nameProblem, openSource } from "./image-names.ts";
import type { BangerPaths } from "./paths.ts";
import { NameTakenError, type ImageRecord, type ImageStore } from "./store.ts";
import { ownerAlive, OWNER_FILE, writeOwner } from "./staging.ts";

export class ImageError extends Error {
  override name = "ImageError";
}

export class ImageNotFoundError extends ImageError {
  override name = "ImageNotFoundError";
}

/** The pull was interrupted (its AbortSignal fired); nothing of it was kept. */
export class ImagePullAbortedError extends ImageError {
  override name = "ImagePullAbortedError";
}

export interface ImageServiceOptions {
  paths: BangerPaths;
  store: ImageStore;
  cache: BlobCache;
  build: RootfsBuilderFn;
  /** Handed to every build (I/O settings, timing lines). */
  buildSettings?: BuildSettings;
  /** Registry credentials, insecure registries, stdin... (the cache is always `cache`). */
  sourceOptions?: SourceOptions;
  /** Where reconcile and cleanup failures are reported. */
  log?: (message: string) => void;
  /** For tests: the clock behind createdAt. */
  now?: () => Date;
  /** banger's guest files and the public key for root; without it images are the layers alone. */
  guest?: { assets: GuestAssets; authorizedKeys: () => string | Promise<string> };
  /** Stored kernels, for --kernel-ref and a bundle's kernel_ref. */
  kernels?: { find(nameOrId: string): { name: string; modulesPath: string | null } | null };
  /** Image catalog (names that install prebuilt bundles) and where verified bundles are kept. */
  catalog?: { images: CatalogImage[]; bundleDir: string };
  /**
   * Keep a layer worker booted between pulls (the daemon, which outlives them): the next pull's
   * first layer then starts decoding at once. A one-shot process boots one as its pull begins.
   */
  warmLayerWorker?: boolean;
}

export interface PullRequest {
  /** Anything parseSource accepts: debian:bookworm, oci:DIR[:TAG], docker-archive:FILE, rootfs:FILE, -. */
  source: string;
  name?: string;
  sizeBytes?: number;
  platform?: Platform;
  /** Superblock times (seconds since the epoch), e.g. from SOURCE_DATE_EPOCH. */
  timestamp?: number;
  /** What relative file paths in `source` are relative to (the client's working directory). */
  cwd?: string;
  /** A stored kernel (name or id) to boot with: its boot modules go into the image. */
  kernelRef?: string;
  /** The kernel when neither kernelRef nor a bundle's kernel_ref names one (the precedence). */
  kernelFallbackRef?: string;
  /** The bytes of `-` (a rootfs tar on the client's standard input); default this process's stdin. */
  stdin?: AsyncIterable<Uint8Array>;
  signal?: AbortSignal;
  progress?: PullListener;
}

/** One pull's state, as its phases leave it (what the cleanup must undo). */
interface PullJob {
  id: string;
  name: string;
  /** The source as records keep it. */
  normalized: string;
  staging: string;
  stagingMade: boolean;
  /** The staging dir has become the image dir (not yet a row). */
  renamed: boolean;
  /** Resolved and not yet disposed. */
  image: ResolvedImage | undefined;
  /** The kernel --kernel-ref names, looked up before anything is downloaded. */
  kernel: { name: string; modulesPath: string | null } | null;
  /** The fallback kernel (--kernel files), below a bundle's own kernel_ref. */
  fallback: { name: string; modulesPath: string | null } | null;
}

/**
 * A registry source downloads inside resolve(); its "resolved" event (manifest known) is where
 * the resolve phase ends and the download phase starts.
 */
function downloadPhase(progress: PullListener | undefined): PullListener | undefined {
  return (
    progress &&
    ((e) => {
      progress(e);
      if (e.type === "resolved") {
        const bytes = e.layers.reduce((n, l) => n + l.size, 0);
        progress({ type: "phase", phase: "download", detail: `${e.layers.length} layer${e.layers.length === 1 ? "" : "s"}, ${(bytes / 1048576).toFixed(1)} MiB` });
      }
    })
  );
}

export interface ReconcileReport {
  /** Staging directories of processes that are gone. */
  staging: string[];
  /** Image directories without a row (a publish cut short between rename and insert, or a lost rm). */
  orphanDirs: string[];
  /** Names of rows whose image file is gone. */
  rowsWithoutDir: string[];
}

const ID_DIR = /^[0-9a-f]{12}$/;
const STAGING_DIR = /^([0-9a-f]{12})\.staging$/;
const WORK_SEED_FILE = "work-seed.ext4";
/** A staging dir without an owner file this young may be a mkdir a moment before the file is written. */
const OWNERLESS_GRACE_MS = 60_000;

function newId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString("hex");
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Rejects as soon as the signal fires; a value that arrives later is handed to `late` (to dispose it). */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined, late: (v: T) => void): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(signal.reason);
      p.then(late, () => {});
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

export class ImageService {
  private readonly paths: BangerPaths;
  private readonly store: ImageStore;
  private readonly cache: BlobCache;
  private readonly warmLayerWorker: boolean;
  private readonly build: RootfsBuilderFn;
  private readonly buildSettings: BuildSettings;
  private readonly sourceOptions: SourceOptions;
  private readonly log: (message: string) => void;
  private readonly now: () => Date;
  private readonly guest: ImageServiceOptions["guest"];
  private readonly catalog: ImageServiceOptions["catalog"];
  private readonly kernels: ImageServiceOptions["kernels"];
  /** Ids this process is pulling right now: our own pid in an owner file is live only for these. */
  private readonly inProgress = new Set<string>();
  /** Names claimed by pulls in progress, with the source each pulls (for the refusal's message). */
  private readonly pullingNames = new Map<string, string>();
  /** The tail of the publish queue (see serialized). */
  private publishing: Promise<unknown> = Promise.resolve();

  constructor(opts: ImageServiceOptions) {
    this.paths = opts.paths;
    this.store = opts.store;
    this.cache = opts.cache;
    this.build = opts.build;
    this.buildSettings = opts.buildSettings ?? {};
    this.sourceOptions = opts.sourceOptions ?? {};
    this.log = opts.log ?? (() => {});
    this.now = opts.now ?? (() => new Date());
    this.guest = opts.guest;
    this.catalog = opts.catalog;
    this.kernels = opts.kernels;
    this.warmLayerWorker = opts.warmLayerWorker ?? false;
    if (this.warmLayerWorker) prestartLayerWorker();
  }

  private imageDir(id: string): string {
    return path.join(this.paths.imagesDir, id);
  }

  async pull(req: PullRequest): Promise<ImageRecord> {
    // Booting while the source resolves: most pulls decompress layers.
    prestartLayerWorker();
    const id = newId();
    const staging = path.join(this.paths.imagesDir, `${id}.staging`);
    const { source, normalized } = this.openPullSource(req, staging);
    const name = req.name ?? defaultImageName(source, id);
    // Before anything is downloaded: a pull that can only fail at the end should fail now.
    const releaseName = this.reserveName(name, normalized);
    let kernel: PullJob["kernel"] = null;
    let fallback: PullJob["fallback"] = null;
    try {
      kernel = req.kernelRef === undefined ? null : this.findKernel(req.kernelRef);
      fallback = req.kernelFallbackRef === undefined ? null : this.findKernel(req.kernelFallbackRef);
    } catch (err) {
      releaseName();
      throw err;
    }
    const job: PullJob = { id, name, normalized, staging, stagingMade: false, renamed: false, image: undefined, kernel, fallback };
    this.inProgress.add(id);
    try {
      return await this.runPull(req, source, job);
    } catch (err) {
      if (job.renamed) await this.removeDir(this.imageDir(id));
      else if (job.stagingMade) await this.removeDir(job.staging);
      throw this.pullError(err, req, job);
    } finally {
      this.inProgress.delete(id);
      releaseName();
      if (job.image) await job.image.dispose().catch((err) => this.log(`disposing ${normalized}: ${errorText(err)}`));
      if (this.warmLayerWorker) prestartLayerWorker();
    }
  }

  private findKernel(ref: string): { name: string; modulesPath: string | null } {
    const k = this.kernels?.find(ref);
    if (!k) throw new ImageError(`kernel "${ref}" is not in the store; \`banger kernel list\` shows the kernels there are (\`banger kernel register\` or \`kernel pull\` adds one)`);
    return k;
  }

  private openPullSource(req: PullRequest, staging: string): { source: ImageSource; normalized: string } {
    try {
      // Standard input is spooled inside the staging dir, in a file unlinked from the start:
      // whatever ends the pull (an error, an interrupt, a kill) takes the spool with it, and
      // it is on the filesystem the image is built on.
      const tmpDir = this.sourceOptions.tmpDir ?? staging;
      const catalog = this.catalog && { ...this.catalog, arch: req.platform?.architecture ?? hostPlatform().architecture };
      const perRequest = { tmpDir, cache: this.cache, diffIds: this.cache.diffIds, signal: req.signal, ...(req.cwd !== undefined && { cwd: req.cwd }), ...(req.stdin && { stdin: req.stdin }) };
      return openSource(req.source, { ...this.sourceOptions, ...perRequest }, catalog);
    } catch (err) {
      throw new ImageError(`source "${req.source}": ${errorText(err)}`, { cause: err });
    }
  }

  /**
   * Claims `name` for this pull until the returned function is called: a second pull to the
   * same name in this process is refused at once, before it downloads anything, and so is a
   * name the store already holds. (Pulls in other processes meet at the row's insert.)
   */
  private reserveName(name: string, source: string): () => void {
    const problem = nameProblem(name);
    if (problem) throw new ImageError(`invalid image name "${name}": ${problem}`);
    const pulling = this.pullingNames.get(name);
    if (pulling !== undefined) {
      throw new ImageError(`image "${name}" is being pulled right now (from ${pulling}); wait for that pull to finish, or pick another --name`);
    }
    const holder = this.store.byName(name);
    if (holder) {
      throw new ImageError(`image "${name}" already exists (id ${holder.id}, from ${holder.source}); remove it with \`banger image rm ${name}\` or pick another --name`);
    }
    this.pullingNames.set(name, source);
    return () => this.pullingNames.delete(name);
  }

  /** Every pull failure names the image and what was being pulled; an interrupt says nothing was kept. */
  private pullError(err: unknown, req: PullRequest, job: PullJob): ImageError {
    if (req.signal?.aborted) return new ImagePullAbortedError(`image "${job.name}": pull of ${job.normalized} interrupted; nothing was kept`, { cause: err });
    if (err instanceof ImageError) return err;
    // Even when the cause (a full disk, a refused login) knows nothing of the source.
    const text = errorText(err);
    const from = text.includes(job.normalized) ? "" : `pulling ${job.normalized}: `;
    return new ImageError(`image "${job.name}": ${from}${text}`, { cause: err });
  }

  /** The phases of a pull, in order: staging dir, resolve (and download), build, publish. */
  private async runPull(req: PullRequest, source: ImageSource, job: PullJob): Promise<ImageRecord> {
    req.signal?.throwIfAborted();
    await fs.promises.mkdir(this.paths.imagesDir, { recursive: true });
    await fs.promises.mkdir(job.staging);
    job.stagingMade = true;
    await writeOwner(job.staging);

    req.progress?.({ type: "phase", phase: "resolve", detail: job.normalized });
    // Sources honour the signal while downloading, but a spool of stdin or a read of a local
    // file does not: racing it makes an interrupt answer at once, whatever the source does.
    job.image = await abortable(source.resolve({ platform: req.platform, progress: downloadPhase(req.progress), followDownloads: true }), req.signal, (late) => void late.dispose());
    req.signal?.throwIfAborted();

    const out = path.join(job.staging, "rootfs.ext4");
    const modulesDir = (job.kernel ?? job.fallback)?.modulesPath ?? undefined;
    // A bundle (catalog image, registry bundle artifact) is installed as it is: pure I/O.
    const built = job.image.bundle
      ? await installBundleImage(job.image, job.staging, req.progress)
      : await this.build({ ...this.buildSettings, image: job.image, out, sizeBytes: req.sizeBytes, timestamp: req.timestamp, signal: req.signal, progress: req.progress, guest: this.guestSetup(job, modulesDir) });
    for (const message of [...(built.guest?.warnings ?? []), ...this.kernelWarnings(job, built)]) req.progress?.({ type: "warning", message });
    req.signal?.throwIfAborted();
    // The image is built: the source (and the disk space of a stdin spool) can go before publishing.
    const resolved = job.image;
    job.image = undefined;
    await resolved.dispose();

    const record = this.newRecord(job, resolved, built);
    await fs.promises.writeFile(path.join(job.staging, "image.json"), JSON.stringify(record, null, 2) + "\n");
    req.progress?.({ type: "phase", phase: "publish", detail: job.name });
    return this.serialized(() => this.publish(job, record));
  }

  /**
   * What makes the image a guest. The SSH key is read (or, at a first pull, made: ~1 ms of
   * WebCrypto) once the build waits for its first decompressed bytes, not before it starts:
   * the build awaits it only when it adds the guest files, after the layers.
   */
  private guestSetup(job: PullJob, modulesDir: string | undefined): GuestSetup | undefined {
    const guest = this.guest;
    if (!guest) return undefined;
    const authorizedKeys = new Promise<void>((resolve) => setTimeout(resolve, 0)).then(() => guest.authorizedKeys());
    // A build that fails first never awaits it: its failure (say, an unwritable config dir) is then moot.
    authorizedKeys.catch(() => {});
    return { assets: guest.assets, authorizedKeys, workSeedOut: path.join(job.staging, WORK_SEED_FILE), ...(modulesDir && { modulesDir }) };
  }

  private newRecord(job: PullJob, resolved: ResolvedImage, built: BuildResult): ImageRecord {
    const final = this.imageDir(job.id);
    const c = resolved.config.config ?? {};
    return {
      id: job.id,
      name: job.name,
      source: job.normalized,
      digest: resolved.manifestDigest,
      platform: formatPlatform(resolved.platform),
      rootfsPath: path.join(final, "rootfs.ext4"),
      sizeBytes: built.sizeBytes,
      createdAt: this.now().toISOString(),
      env: c.Env ?? [],
      cmd: c.Cmd ?? null,
      entrypoint: c.Entrypoint ?? null,
      workingDir: c.WorkingDir ?? "",
      user: c.User ?? "",
      init: built.guest?.init ?? null,
      kernelCmdline: built.guest?.kernelCmdline ?? null,
      injected: built.guest?.injected ?? [],
      workSeedPath: built.guest?.workSeedPath ? path.join(final, WORK_SEED_FILE) : null,
      kernelRef: this.kernelRefOf(job, built),
    };
  }

  /** --kernel-ref first, then the kernel a bundle names when that kernel is in the store. */
  private kernelRefOf(job: PullJob, built: BuildResult): string | null {
    if (job.kernel) return job.kernel.name;
    const named = built.bundleKernelRef;
    const stored = named ? (this.kernels?.find(named)?.name ?? null) : null;
    return stored ?? job.fallback?.name ?? null;
  }

  private kernelWarnings(job: PullJob, built: BuildResult): string[] {
    const out: string[] = [];
    if (job.kernel && built.bundleKernelRef !== undefined) out.push(`kernel "${job.kernel.name}" is attached, but its modules are not added to a prebuilt bundle image`);
    const named = built.bundleKernelRef;
    if (!job.kernel && named && !this.kernels?.find(named)) out.push(`the bundle boots with kernel "${named}", which is not in the store: \`banger kernel pull ${named}\``);
    return out;
  }

  /** Staging dir -> image dir -> row. Run one at a time (serialized), so names are published in order. */
  private async publish(job: PullJob, record: ImageRecord): Promise<ImageRecord> {
    const final = this.imageDir(job.id);
    await fs.promises.rename(job.staging, final);
    job.renamed = true;
    try {
      this.store.insert(record);
    } catch (err) {
      if (err instanceof NameTakenError) {
        throw new ImageError(`image "${job.name}" was created by another pull meanwhile (id ${err.holderId}); this one was discarded`, { cause: err });
      }
      throw err;
    }
    // The row exists: from here reconcile judges the directory by the row, not the owner.
    await fs.promises.rm(path.join(final, OWNER_FILE), { force: true });
    return record;
  }

  /** Runs `fn` after every earlier serialized call has settled. */
  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.publishing.then(fn);
    this.publishing = run.catch(() => {});
    return run;
  }

  private async removeDir(dir: string): Promise<void> {
    try {
      await fs.promises.rm(dir, { recursive: true, force: true });
    } catch (err) {
      this.log(`cannot remove ${dir}: ${errorText(err)}`);
    }
  }

  list(): ImageRecord[] {
    return this.store.list();
  }

  show(nameOrId: string): ImageRecord {
    let found: ImageRecord | null;
    try {
      found = this.store.find(nameOrId);
    } catch (err) {
      throw new ImageError(errorText(err), { cause: err });
    }
    if (!found) throw new ImageNotFoundError(`image "${nameOrId}" not found; \`banger image list\` shows the images there are`);
    return found;
  }

  /** Deletes the row first (so the image is gone for everyone), then its directory. */
  async remove(nameOrId: string): Promise<ImageRecord> {
    const rec = this.show(nameOrId);
    this.store.delete(rec.id);
    await fs.promises.rm(this.imageDir(rec.id), { recursive: true, force: true });
    // The blob cache keeps a ref per pulled registry reference, and prune keeps what refs
    // reach: when no image from that reference is left, its blobs become prunable.
    if (!this.store.list().some((r) => r.source === rec.source)) {
      await this.cache.removeRefs((ref) => ref === rec.source).catch((err) => this.log(`blob cache: forgetting ${rec.source}: ${errorText(err)}`));
    }
    return rec;
  }

  ls(nameOrId: string, dirPath = "/"): ImageDirEntry[] {
    const rec = this.show(nameOrId);
    try {
      return listExt4Dir(rec.rootfsPath, dirPath);
    } catch (err) {
      throw new ImageError(`image "${rec.name}": ${errorText(err)}`, { cause: err });
    }
  }

  /**
   * Makes the images dir and the table agree: removes staging dirs of dead processes, image
   * dirs without a row (unless a live pull is between rename and insert), rows without an image.
   */
  async reconcile(): Promise<ReconcileReport> {
    const report: ReconcileReport = { staging: [], orphanDirs: [], rowsWithoutDir: [] };
    let names: string[] = [];
    try {
      names = await fs.promises.readdir(this.paths.imagesDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const rows = new Map(this.store.list().map((r) => [r.id, r]));
    for (const entry of names) {
      const dir = path.join(this.paths.imagesDir, entry);
      const staging = STAGING_DIR.exec(entry);
      const id = staging ? staging[1]! : ID_DIR.test(entry) ? entry : null;
      if (id === null || (!staging && rows.has(id))) continue;
      const alive = ownerAlive(dir, this.inProgress.has(id));
      if (alive === true) continue;
      if (alive === "no-owner" && staging) {
        const st = await fs.promises.stat(dir).catch(() => null);
        if (!st || Date.now() - st.mtimeMs < OWNERLESS_GRACE_MS) continue;
      }
      // Re-read after the checks: a live pull may have inserted its row meanwhile.
      if (!staging && this.store.find(id)?.id === id) continue;
      await fs.promises.rm(dir, { recursive: true, force: true });
      (staging ? report.staging : report.orphanDirs).push(entry);
      this.log(`removed ${staging ? "an abandoned staging" : "an unlisted image"} directory ${dir}`);
    }
    for (const r of rows.values()) {
      if (fs.existsSync(r.rootfsPath)) continue;
      this.store.delete(r.id);
      report.rowsWithoutDir.push(r.name);
      this.log(`forgot image "${r.name}" (${r.id}): ${r.rootfsPath} is gone`);
    }
    return report;
  }
}
