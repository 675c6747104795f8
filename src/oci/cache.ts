// The blob cache: an OCI image layout under $XDG_CACHE_HOME/banger/oci/, so skopeo, umoci
// or crane can read it too.
//
//   oci-layout                 {"imageLayoutVersion":"1.0.0"}
//   index.json                 one entry per pulled reference and platform (what "needed" means)
//   blobs/sha256/<hex>         only ever bytes that hashed to <hex>
//   ingest/<hex>.partial       a download in progress, kept for resuming with Range
//   ingest/<hex>.lock          who is downloading it (pid); stale locks of dead pids are taken over
//   diffids/<compression>-<hex>  the diff_id blob <hex> was proven to decompress to (diffid-memo.ts)
//
// A blob appears under its digest name only by rename(2) after its hash matched; concurrent
// pulls of one blob (threads or processes) wait for the one download instead of racing.
import { constants as fsc } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DigestWriter, checkDigest, digestHex, sha256Digest } from "./digest.ts";
import { DirDiffIdMemo } from "./diffid-memo.ts";
import { OciDigestMismatchError, OciError, errorText } from "./errors.ts";
import { parseManifest, type Descriptor } from "./manifest.ts";
import { MT } from "./media-types.ts";
import { pidAlive } from "../io/process.ts";

export const REF_NAME = "org.opencontainers.image.ref.name";

/** `env`: the process environment, handed in by the CLI (library code does not read it). */
export function defaultCacheDir(env: Record<string, string | undefined>): string {
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), ".cache");
  return path.join(base, "banger", "oci");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** In-process mutexes, keyed by lock file path, so a lock file with our own pid is always stale. */
const localLocks = new Map<string, Promise<void>>();

async function localMutex(key: string): Promise<() => void> {
  while (localLocks.has(key)) await localLocks.get(key);
  let release!: () => void;
  localLocks.set(key, new Promise<void>((r) => (release = r)));
  return () => {
    localLocks.delete(key);
    release();
  };
}

/**
 * Cross-process lock: a file created with O_EXCL holding our pid; locks of dead processes are
 * taken over. `onWait` is polled while another live process holds it; when it returns true we
 * stop waiting and return null.
 */
async function acquireLock(lockPath: string, onWait?: () => Promise<boolean>): Promise<(() => Promise<void>) | null> {
  const unlockLocal = await localMutex(lockPath);
  try {
    const release = await acquireFileLock(lockPath, onWait);
    if (release === null) {
      unlockLocal();
      return null;
    }
    return async () => {
      try {
        await release();
      } finally {
        unlockLocal();
      }
    };
  } catch (err) {
    unlockLocal();
    throw err;
  }
}

async function acquireFileLock(lockPath: string, onWait?: () => Promise<boolean>): Promise<(() => Promise<void>) | null> {
  for (;;) {
    try {
      const fh = await fs.open(lockPath, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o644);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await fs.rm(lockPath, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = Number((await fs.readFile(lockPath, "utf8").catch(() => "")).trim());
    // Empty file: its creator is between open and write; give it a moment.
    if (holder === 0) {
      const st = await fs.stat(lockPath).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs < 2000) {
        await sleep(20);
        continue;
      }
    }
    if (!pidAlive(holder) || holder === process.pid) {
      // The holder died (or is a previous incarnation of this pid): take the lock over. A
      // rename of our own fresh lock over the stale one keeps this atomic between racers.
      const mine = `${lockPath}.${process.pid}.${Math.random().toString(36).slice(2)}`;
      await fs.writeFile(mine, String(process.pid));
      const again = Number((await fs.readFile(lockPath, "utf8").catch(() => "")).trim());
      if (again === holder) {
        await fs.rename(mine, lockPath);
        const now = Number((await fs.readFile(lockPath, "utf8").catch(() => "")).trim());
        if (now === process.pid) {
          return async () => {
            await fs.rm(lockPath, { force: true });
          };
        }
      } else {
        await fs.rm(mine, { force: true });
      }
      continue;
    }
    if (onWait && (await onWait())) return null;
    await sleep(100);
  }
}

/** An in-progress download of one blob, holding its lock. */
export class BlobIngest {
  private hasher = new DigestWriter();
  private fh: fs.FileHandle | undefined;
  private closed = false;

  constructor(
    readonly digest: string,
    readonly expectedSize: number | undefined,
    private readonly partialPath: string,
    private readonly finalPath: string,
    private readonly release: () => Promise<void>,
  ) {}

  /** Bytes already present (and hashed): where the next download should start. */
  get offset(): number {
    return this.hasher.bytes;
  }

  /** Opens the partial file and hashes what an earlier attempt left behind. */
  async open(): Promise<void> {
    let existing = 0;
    try {
      existing = (await fs.stat(this.partialPath)).size;
    } catch {}
    if (this.expectedSize !== undefined && existing > this.expectedSize) {
      await fs.truncate(this.partialPath, 0);
      existing = 0;
    }
    if (existing > 0) {
      for await (const chunk of Bun.file(this.partialPath).slice(0, existing).stream()) this.hasher.update(chunk);
    }
    this.fh = await fs.open(this.partialPath, "a", 0o644);
  }

  async append(chunk: Uint8Array): Promise<void> {
    if (this.expectedSize !== undefined && this.hasher.bytes + chunk.length > this.expectedSize) {
      throw new OciDigestMismatchError(
        `blob ${this.digest}: received more than the ${this.expectedSize} bytes its descriptor announces`,
        { digest: this.digest },
      );
    }
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh!.write(chunk, off, chunk.length - off);
      off += bytesWritten;
    }
    this.hasher.update(chunk);
  }

  /** Throws away what is there (the server ignored our Range and sent everything). */
  async restart(): Promise<void> {
    await this.fh!.truncate(0);
    this.hasher = new DigestWriter();
  }

  /** Verifies digest and size, then makes the blob visible under its digest name. */
  async commit(source: string): Promise<void> {
    const got = this.hasher.digest();
    const size = this.hasher.bytes;
    await this.fh!.sync();
    await this.fh!.close();
    this.fh = undefined;
    if (got !== this.digest || (this.expectedSize !== undefined && size !== this.expectedSize)) {
      await this.abort(false);
      const sizeNote = this.expectedSize !== undefined && size !== this.expectedSize ? ` (${size} bytes, descriptor says ${this.expectedSize})` : "";
      throw new OciDigestMismatchError(
        `blob ${this.digest} from ${source}: content hashes to ${got}${sizeNote}; the download was discarded`,
        { digest: this.digest, url: source },
      );
    }
    await fs.rename(this.partialPath, this.finalPath);
    this.closed = true;
    await this.release();
  }

  /** Gives up; keeps the partial for a later resume unless told otherwise. */
  async abort(keepPartial: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
    if (!keepPartial) await fs.rm(this.partialPath, { force: true });
    await this.release();
  }
}

export interface PruneResult {
  removed: string[];
  freedBytes: number;
  kept: number;
}

/**
 * Downloads in progress in this process, keyed by cache root and digest, with the signal of
 * the pull that started each: a pull joining it can tell that download's cancellation (its
 * owner was interrupted) from a failure of the blob itself.
 */
const inflight = new Map<string, { done: Promise<void>; signal: AbortSignal | undefined }>();

/** Rejects with the signal's reason as soon as it fires; `p` itself goes on. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

export class BlobCache {
  private ready: Promise<void> | undefined;

  readonly root: string;

  /** Which blobs were proven to give which diff_id (diffid-memo.ts), in `diffids/`. */
  readonly diffIds: DirDiffIdMemo;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.diffIds = new DirDiffIdMemo(path.join(this.root, "diffids"));
  }

  get blobsDir(): string {
    return path.join(this.root, "blobs", "sha256");
  }
  get ingestDir(): string {
    return path.join(this.root, "ingest");
  }

  init(): Promise<void> {
    this.ready ??= (async () => {
      await fs.mkdir(this.blobsDir, { recursive: true });
      await fs.mkdir(this.ingestDir, { recursive: true });
      const layout = path.join(this.root, "oci-layout");
      if (!(await Bun.file(layout).exists())) await this.writeAtomic(layout, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
      const index = path.join(this.root, "index.json");
      if (!(await Bun.file(index).exists())) await this.writeAtomic(index, JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] }));
    })();
    return this.ready;
  }

  blobPath(digest: string): string {
    return path.join(this.blobsDir, digestHex(digest));
  }

  /** Where a download of `digest` in progress (by this process or another) keeps its bytes. */
  partialPath(digest: string): string {
    return path.join(this.ingestDir, `${digestHex(digest)}.partial`);
  }

  async has(digest: string, size?: number): Promise<boolean> {
    try {
      const st = await fs.stat(this.blobPath(digest));
      return size === undefined || st.size === size;
    } catch {
      return false;
    }
  }

  async readBlob(digest: string): Promise<Uint8Array> {
    return new Uint8Array(await Bun.file(this.blobPath(digest)).arrayBuffer());
  }

  private async writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
    const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      await fs.writeFile(tmp, data, { mode: 0o644 });
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }

  /** Stores small bytes we already hold (manifests, configs) after checking their digest. */
  async putBytes(digest: string, bytes: Uint8Array, source: string): Promise<void> {
    await this.init();
    const got = sha256Digest(bytes);
    if (got !== digest) {
      throw new OciDigestMismatchError(`${source}: content of ${digest} hashes to ${got}`, { digest, url: source });
    }
    if (await this.has(digest, bytes.length)) return;
    const tmp = path.join(this.ingestDir, `${digestHex(digest)}.put-${process.pid}-${Math.random().toString(36).slice(2)}`);
    try {
      await fs.writeFile(tmp, bytes, { mode: 0o644 });
      await fs.rename(tmp, this.blobPath(digest));
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  /**
   * Makes sure a blob is present: `download` is called with an ingest (lock held, partial
   * hashed) unless the blob is already there or another process finished it meanwhile.
   * Concurrent calls in this process for one digest share one download. `signal` is the
   * caller's: a caller that joined another's download stops waiting when its own signal fires
   * (the download goes on for the others), and takes over, resuming from the partial file,
   * when the download it joined was cancelled by its owner's.
   */
  async ensure(digest: string, size: number | undefined, download: (ingest: BlobIngest) => Promise<void>, opts: { signal?: AbortSignal } = {}): Promise<void> {
    checkDigest(digest, "blob cache request");
    const key = `${this.root}\0${digest}`;
    for (;;) {
      const running = inflight.get(key);
      if (!running) {
        const done = this.ensureOnce(digest, size, download).finally(() => inflight.delete(key));
        inflight.set(key, { done, signal: opts.signal });
        return done;
      }
      try {
        return await untilAborted(running.done, opts.signal);
      } catch (err) {
        // The map entry is gone by now (its finally ran before this await returned).
        if (opts.signal?.aborted || !running.signal?.aborted) throw err;
      }
    }
  }

  private async ensureOnce(digest: string, size: number | undefined, download: (ingest: BlobIngest) => Promise<void>): Promise<void> {
    await this.init();
    if (await this.has(digest, size)) return;
    const hex = digestHex(digest);
    const release = await acquireLock(path.join(this.ingestDir, `${hex}.lock`), () => this.has(digest, size));
    if (release === null) return; // another process committed it while we waited
    if (await this.has(digest, size)) {
      await release();
      return;
    }
    const ingest = new BlobIngest(digest, size, this.partialPath(digest), this.blobPath(digest), release);
    try {
      await ingest.open();
      await download(ingest);
    } catch (err) {
      // Keep the partial for a resume unless its bytes are known bad.
      await ingest.abort(!(err instanceof OciDigestMismatchError));
      throw err;
    }
  }

  async readIndex(): Promise<Descriptor[]> {
    await this.init();
    const text = await fs.readFile(path.join(this.root, "index.json"), "utf8");
    const o = JSON.parse(text) as { manifests?: Descriptor[] };
    return Array.isArray(o.manifests) ? o.manifests : [];
  }

  private async updateIndex(change: (entries: Descriptor[]) => Descriptor[]): Promise<void> {
    await this.init();
    const release = (await acquireLock(path.join(this.root, "index.json.lock")))!;
    try {
      const entries = change(await this.readIndex());
      await this.writeAtomic(path.join(this.root, "index.json"), JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: entries }, null, 2));
    } finally {
      await release();
    }
  }

  /** Records that `refName` (for one platform) needs the manifest `desc` and everything under it. */
  async addRef(refName: string, desc: Descriptor): Promise<void> {
    const entry: Descriptor = { ...desc, annotations: { ...(desc.annotations ?? {}), [REF_NAME]: refName } };
    const samePlatform = (a?: Descriptor["platform"], b?: Descriptor["platform"]) =>
      (a?.os ?? "") === (b?.os ?? "") && (a?.architecture ?? "") === (b?.architecture ?? "") && (a?.variant ?? "") === (b?.variant ?? "");
    await this.updateIndex((entries) => [
      ...entries.filter((e) => !(e.annotations?.[REF_NAME] === refName && samePlatform(e.platform, desc.platform))),
      entry,
    ]);
  }

  /** Forgets references (all of them when `match` is omitted); their blobs go at the next prune. */
  async removeRefs(match?: (refName: string) => boolean): Promise<number> {
    let removed = 0;
    await this.updateIndex((entries) =>
      entries.filter((e) => {
        const drop = !match || match(e.annotations?.[REF_NAME] ?? "");
        if (drop) removed++;
        return !drop;
      }),
    );
    return removed;
  }

  /** Digests reachable from index.json: manifests, nested indexes, configs, layers. */
  async reachable(): Promise<Set<string>> {
    const seen = new Set<string>();
    const visit = async (d: Descriptor): Promise<void> => {
      if (seen.has(d.digest)) return;
      seen.add(d.digest);
      const isManifestType = ([MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest] as string[]).includes(d.mediaType);
      if (!isManifestType || !(await this.has(d.digest))) return;
      const m = parseManifest(await this.readBlob(d.digest), d.mediaType, `cached manifest ${d.digest}`);
      if (m.kind === "index") for (const c of m.manifests) await visit(c);
      else {
        seen.add(m.config.digest);
        for (const l of m.layers) seen.add(l.digest);
      }
    };
    for (const e of await this.readIndex()) await visit(e);
    return seen;
  }

  /**
   * Removes blobs no recorded reference needs, and leftovers of dead downloads. Blobs younger
   * than `graceMs` are kept: a pull in another process may have stored them a moment before
   * recording its reference.
   */
  async prune(opts: { graceMs?: number; dryRun?: boolean; keepNothing?: boolean } = {}): Promise<PruneResult> {
    await this.init();
    const grace = opts.graceMs ?? 10 * 60_000;
    const keep = opts.keepNothing ? new Set<string>() : await this.reachable();
    const result: PruneResult = { removed: [], freedBytes: 0, kept: 0 };
    const now = Date.now();
    for (const name of await fs.readdir(this.blobsDir)) {
      const file = path.join(this.blobsDir, name);
      const digest = `sha256:${name}`;
      if (keep.has(digest)) {
        result.kept++;
        continue;
      }
      const st = await fs.stat(file).catch(() => undefined);
      if (!st || now - st.mtimeMs < grace) {
        result.kept++;
        continue;
      }
      result.removed.push(digest);
      result.freedBytes += st.size;
      if (!opts.dryRun) await fs.rm(file, { force: true });
    }
    // What was proven of the removed blobs goes with them (of blobs read from elsewhere, an
    // OCI layout, only when nothing is kept).
    if (!opts.dryRun) {
      const removed = new Set(result.removed);
      this.diffIds.forget(opts.keepNothing ? undefined : (d) => removed.has(d));
    }
    // Partial downloads nobody is working on, and stray temp files.
    for (const name of await fs.readdir(this.ingestDir)) {
      const file = path.join(this.ingestDir, name);
      const m = /^([0-9a-f]{64})\.(partial|lock)$/.exec(name);
      if (m) {
        const lock = path.join(this.ingestDir, `${m[1]}.lock`);
        const holder = Number((await fs.readFile(lock, "utf8").catch(() => "")).trim());
        if (pidAlive(holder) && holder !== process.pid) continue;
        if (inflight.has(`${this.root}\0sha256:${m[1]}`)) continue;
      }
      const st = await fs.stat(file).catch(() => undefined);
      if (!st) continue;
      if (!m && now - st.mtimeMs < grace) continue;
      result.freedBytes += st.size;
      if (!opts.dryRun) await fs.rm(file, { force: true });
    }
    return result;
  }
}

export function describeFsError(err: unknown, what: string): OciError {
  return new OciError(`${what}: ${errorText(err)}`, { cause: err });
}
