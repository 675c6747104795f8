// Resolved image → ext4 root filesystem file. The phases, in order:
//   1. open the image (unnamed until published, so a failure leaves nothing);
//   2. unpack every layer: decompress, verify, parse its tar into entries, and spool its
//      bytes (holes for zero blocks) into an already-unlinked file beside the image, several
//      layers at once; a one-layer image instead streams its file data straight into the image
//      while it is parsed, as `make-ext4 -` does (nothing spooled);
//   3. merge the layers' entries bottom-up (src/merge) into one tree (a one-layer image's as
//      they are parsed);
//   4. decide how the image boots (its systemd, or banger-init) and merge banger's guest files
//      on top as one more layer (src/inject), from memory;
//   5. plan and write the tree, copying each surviving file's bytes once from its layer's spool;
//   6. publish the image under its name, and close the spools;
//   7. write the work seed (the image's /root) beside it, read back from the finished rootfs.
// Every layer is read exactly once; shadowed and deleted files are never copied.
import { Ext4ImageWriter, type WriteStats } from "../ext4/index.ts";
import { LayerMerger } from "../merge/index.ts";
import type { ResolvedImage } from "../oci/index.ts";
import { Spool, SpoolInputError, spoolPathNear, spoolStream } from "../io/spool.ts";
import { FdByteSource, TarError, TarParser, type TarEntry } from "../tar/index.ts";
import { SpoolPolicy, type ByteSource, type Timestamp } from "../tree/index.ts";
import type { IoOptions } from "../io/options.ts";
import { selectGuestModules } from "../inject/kernel-modules.ts";
import { detectInit, guestLayer, kernelCommandLine, type GuestAssets, type InitChoice, type InitKind } from "../inject/index.ts";
import type { PullListener } from "./events.ts";
import { writeWorkSeed } from "./work-seed.ts";

/** What makes a pulled image a banger guest (src/inject). */
export interface GuestSetup {
  assets: GuestAssets;
  /** The authorized_keys content for root (banger's public key), awaited when the guest files are added. */
  authorizedKeys: string | Promise<string>;
  /** Where to write the work seed (beside the rootfs); none when absent. */
  workSeedOut?: string;
  /** An attached kernel's modules tree: the guest's boot modules go into /lib/modules. */
  modulesDir?: string;
}

/** What every build of one service shares: the settings the CLI (or the daemon's start-up) resolved. */
export interface BuildSettings {
  /** How layers are spooled and the image written (O_DIRECT, copy_file_range, O_TMPFILE). */
  io?: IoOptions;
  /** Gets one line per write phase with its wall and CPU milliseconds (BANGER_TIMING). */
  timing?: (line: string) => void;
}

export interface BuildRequest extends BuildSettings {
  image: ResolvedImage;
  /** The ext4 file to create (inside the image's staging directory); nothing is left there on failure. */
  out: string;
  /** Image size in bytes; default max(1 GiB, used x 1.25). */
  sizeBytes?: number;
  /** Superblock times (seconds); the CLI resolves SOURCE_DATE_EPOCH into this. */
  timestamp?: number;
  signal?: AbortSignal;
  progress?: PullListener;
  /** Layers unpacked at once (default 2: one per core of the machines we measured on). */
  unpackConcurrency?: number;
  /** Guest files and work seed; without it the image is the layers' merge alone. */
  guest?: GuestSetup;
}

export interface GuestResult {
  init: InitKind;
  /** What the image's /sbin/init resolved to, if anything. */
  imageInit: string | null;
  kernelCmdline: string;
  /** Guest paths banger wrote. */
  injected: string[];
  /** Written work seed, or null with the reason in `warnings`. */
  workSeedPath: string | null;
  warnings: string[];
}

export interface BuildResult {
  sizeBytes: number;
  blocksUsed: number;
  inodesUsed: number;
  uuid: string;
  /** Uncompressed layer bytes written to spools (0 when the one layer streamed into the image). */
  spooledBytes?: number;
  guest?: GuestResult;
  /** Installed bundles: the kernel their manifest names (null: none); absent for builds. */
  bundleKernelRef?: string | null;
}

export type RootfsBuilderFn = (req: BuildRequest) => Promise<BuildResult>;

/** A layer read once: its members in archive order (unless already merged), and its bytes at the same offsets. */
interface UnpackedLayer {
  entries: TarEntry[];
  /** Its members went into the merger as they were parsed (a one-layer image). */
  merged: boolean;
  source: FdByteSource;
  spooledBytes: number;
}

export async function buildRootfs(req: BuildRequest): Promise<BuildResult> {
  const { image } = req;
  checkAborted(req.signal, image.source);
  const layers: UnpackedLayer[] = [];
  // The spools go as soon as their bytes are in the image: the kernel frees their blocks while
  // the image is flushed (5 layers: 78-82 ms that came after the publish's fsync).
  const closing: Promise<void>[] = [];
  const releaseSpools = () => {
    for (const l of layers) closing.push(l.source.closeInBackground());
  };
  const writer = Ext4ImageWriter.open({ out: req.out, size: req.sizeBytes, timestamp: req.timestamp, metadataCsum: true, likelyDataBytes: likelyBytes(image), io: req.io, timing: req.timing, onSourcesDone: releaseSpools });
  try {
    req.progress?.({ type: "phase", phase: "unpack", detail: `${image.layers.length} layer${image.layers.length === 1 ? "" : "s"}` });
    const merger = new LayerMerger();
    layers.push(...(await unpackLayers(req, writer, merger)));
    req.progress?.({ type: "phase", phase: "merge" });
    mergeLayers(image, layers, merger);
    const sources = layers.map((l) => l.source);
    const guest = req.guest ? addGuestLayer(merger, { ...req.guest, authorizedKeys: await req.guest.authorizedKeys }, image, sources) : null;
    checkAborted(req.signal, image.source);
    req.progress?.({ type: "phase", phase: "write" });
    const stats = await writer.finish(merger.root, sources, imageIdentity(image));
    const built = result(stats, layers);
    if (guest && req.guest) built.guest = await finishGuest(req, guest);
    return built;
  } catch (err) {
    await writer.discard();
    throw err;
  } finally {
    for (const l of layers) l.source.close();
    await Promise.all(closing);
  }
}

function result(stats: WriteStats, layers: UnpackedLayer[]): BuildResult {
  return {
    sizeBytes: stats.sizeBytes,
    blocksUsed: stats.blocksUsed,
    inodesUsed: stats.inodesUsed,
    uuid: stats.uuid,
    spooledBytes: layers.reduce((n, l) => n + l.spooledBytes, 0),
  };
}

/** The layers' compressed sizes, a floor for their uncompressed data (the geometry guess). */
function likelyBytes(image: ResolvedImage): number {
  return image.layers.reduce((n, l) => n + l.size, 0);
}

/**
 * The image's identity for the UUID and directory hash seed: its layers' uncompressed digests
 * (diff_ids), so the same layers give the same image whether they came gzip'ed from a registry,
 * zstd'ed in an OCI layout or raw in a docker archive. Falls back to the blob digests.
 */
export function imageIdentity(image: ResolvedImage): Uint8Array {
  const h = new Bun.CryptoHasher("sha256").update("banger image layers\n");
  image.layers.forEach((l, i) => h.update(`${image.config.rootfs.diff_ids[i] ?? l.diffId ?? l.digest}\n`));
  return new Uint8Array(h.digest());
}

function layerLabel(image: ResolvedImage, i: number): string {
  const digest = image.layers[i]!.digest.replace(/^sha256:/, "").slice(0, 12);
  return `${image.source}: layer ${i + 1}/${image.layers.length} (sha256:${digest})`;
}

/** Unpacks every layer, `unpackConcurrency` at a time; on any failure the others are cancelled. */
async function unpackLayers(req: BuildRequest, writer: Ext4ImageWriter, merger: LayerMerger): Promise<UnpackedLayer[]> {
  const { image } = req;
  const count = image.layers.length;
  const done: (UnpackedLayer | undefined)[] = new Array(count);
  const failure = new AbortController();
  const onAbort = () => failure.abort(req.signal?.reason);
  req.signal?.addEventListener("abort", onAbort, { once: true });
  let next = 0;
  const worker = async () => {
    while (next < count && !failure.signal.aborted) {
      const i = next++;
      // Only a one-layer image streams into the image: with several, upper layers may shadow
      // any file, and the writer's prediction holds for one source in archive order. Its
      // members are merged as they are parsed, beside the decompression instead of after it.
      done[i] = await unpackLayer(req, i, failure.signal, count === 1 ? { writer, merger } : null);
    }
  };
  try {
    const workers = Array.from({ length: Math.min(count, Math.max(1, req.unpackConcurrency ?? 2)) }, () => worker);
    const results = await Promise.allSettled(
      workers.map((w) =>
        w().catch((e: unknown) => {
          failure.abort(e);
          throw e;
        }),
      ),
    );
    const firstError = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (firstError) throw req.signal?.aborted ? abortError(req.signal, image.source) : firstError.reason;
    checkAborted(req.signal, image.source);
    return done as UnpackedLayer[];
  } catch (err) {
    for (const l of done) l?.source.close();
    throw err;
  } finally {
    req.signal?.removeEventListener("abort", onAbort);
  }
}

async function unpackLayer(req: BuildRequest, i: number, signal: AbortSignal, only: { writer: Ext4ImageWriter; merger: LayerMerger } | null): Promise<UnpackedLayer> {
  const { image } = req;
  const label = layerLabel(image, i);
  const entries: TarEntry[] = [];
  const writer = only?.writer;
  const merger = only?.merger;
  merger?.beginLayer(i, label);
  const parser = new TarParser(merger ? (e) => merger.add(e) : (e) => entries.push(e));
  // Beside the image, unlinked: nothing is left behind, even by a killed process.
  // Read back (its surviving files copied into the image) within this pull, then dropped: its
  // pages stay in memory for that and need never reach the disk (SpoolOptions.transient).
  const spool = Spool.create(spoolPathNear(req.out, `layer${i}`), { io: req.io, transient: true });
  const source = new FdByteSource(spool.fd, `spool of layer ${i + 1} (unlinked)`);
  try {
    // A sink that holds the file bytes (SpoolPolicy) spares the spool that data.
    const policy = new SpoolPolicy((bytes, offset) => spool.writeBack(bytes, offset));
    const sink = writer?.fileDataSink(source, policy) ?? null;
    if (sink) parser.useFileDataSink(sink);
    const stream = counted(image.openLayer(i), signal, (bytes, ended) => req.progress?.({ type: "unpack", index: i, bytes, done: ended }));
    try {
      await spoolStream(stream, spool, {
        observe: (chunk) => {
          parser.push(chunk);
          return !parser.ended;
        },
        spoolChunk: () => policy.spoolsChunks,
        what: label,
        // The layer reader's own piece size (src/oci/inflate-worker.ts): pieces pass through uncopied.
        chunkSize: 1 << 20,
      });
      parser.end();
    } catch (err) {
      throw withPrefix(layerReadError(err), label);
    }
    merger?.endLayer();
    await spool.close();
    // A spool's writer holds 34 MiB of shared slots that only a collection frees; left to the
    // GC's own pace, a 5-layer Debian pull peaked at 305-340 MB RSS, with this at 236-243 MB,
    // no slower (1.03-1.24 s either way). A layer streamed into the image spooled nothing and
    // has no slots: there the full collection would only cost its ~8 ms.
    if (spool.usedSlots) Bun.gc(true);
    return { entries, merged: merger !== undefined, source, spooledBytes: spool.bytesWritten };
  } catch (err) {
    await spool.stop();
    source.close();
    throw err;
  }
}

/** Passes a layer's chunks through, reporting bytes and stopping (cancelling the source) on abort. */
function counted(stream: ReadableStream<Uint8Array>, signal: AbortSignal, report: (bytes: number, ended: boolean) => void): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  let bytes = 0;
  let lastReport = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (signal.aborted) {
          await reader.cancel().catch(() => {});
          controller.error(signal.reason ?? new Error("aborted"));
          return;
        }
        const r = await reader.read();
        if (r.done) {
          report(bytes, true);
          controller.close();
          return;
        }
        bytes += r.value.length;
        if (bytes - lastReport >= 4 << 20) {
          lastReport = bytes;
          report(bytes, false);
        }
        controller.enqueue(r.value);
      },
      async cancel(reason) {
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

function mergeLayers(image: ResolvedImage, layers: UnpackedLayer[], merger: LayerMerger): void {
  layers.forEach((layer, i) => {
    if (layer.merged) return;
    merger.beginLayer(i, layerLabel(image, i));
    for (const e of layer.entries) merger.add(e);
    merger.endLayer();
    layer.entries = []; // merged: the entries can go
  });
}

/**
 * The image's own time for the files banger adds (its config's `created`), so the same image
 * pulled twice, from any source, gives the same bytes; the epoch when it has none.
 */
function imageTime(image: ResolvedImage): Timestamp {
  const created = image.config.raw.created;
  const ms = typeof created === "string" ? Date.parse(created) : NaN;
  return { sec: Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : 0, nsec: 0 };
}

/** Decides the boot path from the merged tree, then merges the guest files as the top layer. */
function addGuestLayer(merger: LayerMerger, setup: GuestSetup & { authorizedKeys: string }, image: ResolvedImage, sources: ByteSource[]): AddedGuest {
  const choice = detectInit(merger.root);
  // Asked before the guest layer, which makes a /root for the SSH key where the image has none.
  const rootHome = merger.root.children!.get("root");
  const seedless = rootHome === undefined ? "the image has no /root: no work seed was made" : rootHome.kind !== "dir" ? `the image's /root is a ${rootHome.kind}, not a directory: no work seed was made` : null;
  const modules = setup.modulesDir ? selectGuestModules(setup.modulesDir) : null;
  const layer = guestLayer(merger.root, setup.assets, { init: choice.kind, authorizedKeys: setup.authorizedKeys, time: imageTime(image), extraFiles: modules?.files });
  merger.beginLayer(sources.length, `${image.source}: banger's guest files`);
  for (const e of layer.entries) merger.add(e);
  merger.endLayer();
  sources.push(layer.source);
  return { choice, injected: layer.injected, seedless };
}

interface AddedGuest {
  choice: InitChoice;
  injected: string[];
  /** Why the image gets no work seed, or null. */
  seedless: string | null;
}

async function finishGuest(req: BuildRequest, guest: AddedGuest): Promise<GuestResult> {
  const warnings: string[] = [];
  let workSeedPath: string | null = null;
  const seedOut = req.guest?.workSeedOut;
  if (guest.seedless) warnings.push(guest.seedless);
  else if (seedOut) {
    const seed = await writeWorkSeed(req.out, seedOut, { timestamp: req.timestamp, identity: imageIdentity(req.image), io: req.io });
    if (seed.written) workSeedPath = seedOut;
    else warnings.push(seed.warning);
  }
  return { init: guest.choice.kind, imageInit: guest.choice.imageInit, kernelCmdline: kernelCommandLine(guest.choice.kind), injected: guest.injected, workSeedPath, warnings };
}

/** A layer's own read errors (digest, decompression) already say which layer and why: those as they are. */
function layerReadError(err: unknown): unknown {
  if (!(err instanceof SpoolInputError)) return err;
  return err.cause instanceof Error ? err.cause : new TarError(null, err.message);
}

/** Names the layer in an error that does not already (tar errors name only the member). */
function withPrefix(err: unknown, label: string): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  if (!e.message.includes(label) && !e.message.includes(label.split(": ")[0]!)) e.message = `${label}: ${e.message}`;
  return e;
}

function abortError(signal: AbortSignal, source: string): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name !== "AbortError") return reason;
  return Object.assign(new Error(`${source}: pull cancelled`), { name: "AbortError" });
}

function checkAborted(signal: AbortSignal | undefined, source: string): void {
  if (signal?.aborted) throw abortError(signal, source);
}
