// Registry source: reference -> manifest for the platform -> config and layers in the blob
// cache (parallel, bounded, resumable, verified) -> layers opened from the cache.
import { BlobCache, type BlobIngest } from "../cache.ts";
import { OciAuthError, OciDigestMismatchError, OciError, OciNotFoundError, errorText } from "../errors.ts";
import { sleep, retryDelay } from "../http.ts";
import { layerChunks, fileChunks, toReadableStream } from "../layer-stream.ts";
import { MT } from "../media-types.ts";
import { layerRefs, parseImageConfig, parseManifest, selectPlatform, type Descriptor, type ImageManifest } from "../manifest.ts";
import { formatPlatform, hostPlatform, platformMatches, type Platform } from "../platform.ts";
import { forEachLimited } from "../pool.ts";
import { DownloadWatch, followDownload } from "../follow.ts";
import { formatReference, parseReference, referenceTarget, type Reference } from "../reference.ts";
import { RegistryClient, type RegistryClientOptions } from "../registry.ts";
import type { ImageSource, LayerReadOptions, ProgressListener, ResolveOptions, ResolvedImage } from "../source.ts";
import { BUNDLE_LAYER_MEDIA_TYPE, bundleLayerOf } from "../bundle-artifact.ts";

/** `credentials` absent: anonymous access (the daemon passes dockerConfigCredentials({ env })). */
export interface RegistrySourceOptions extends RegistryClientOptions, LayerReadOptions {
  /** Where blobs are downloaded to; needed to resolve (not to name or describe a reference). */
  cache?: BlobCache;
  /** Layers downloaded at once (default 3). */
  concurrency?: number;
}

function permanent(err: unknown): boolean {
  return err instanceof OciDigestMismatchError || err instanceof OciAuthError || err instanceof OciNotFoundError;
}

export class RegistrySource implements ImageSource {
  readonly ref: Reference;
  private readonly client: RegistryClient;

  constructor(reference: string, private readonly opts: RegistrySourceOptions = {}) {
    this.ref = parseReference(reference);
    this.client = new RegistryClient(opts);
  }

  private get cache(): BlobCache {
    if (!this.opts.cache) throw new OciError(`${this.describe()}: no blob cache to download into (RegistrySourceOptions.cache)`);
    return this.opts.cache;
  }

  describe(): string {
    return formatReference(this.ref);
  }

  async resolve(ropts: ResolveOptions = {}): Promise<ResolvedImage> {
    const refText = this.describe();
    const wanted = ropts.platform ?? hostPlatform();
    const top = await this.client.fetchManifest(this.ref, referenceTarget(this.ref));
    const bundle = bundleLayerOf(safeJson(top.bytes));
    if (bundle) return this.resolveBundle(top.digest, bundle, wanted, ropts.progress);
    let parsed = parseManifest(top.bytes, top.contentType, `manifest of ${refText} (${top.url})`);
    let manifestBytes = top.bytes;
    let manifestDigest = top.digest;
    let entry: Descriptor | undefined;
    if (parsed.kind === "index") {
      entry = selectPlatform(parsed, wanted, `index of ${refText}`);
      const child = await this.client.fetchManifest(this.ref, entry.digest);
      parsed = parseManifest(child.bytes, entry.mediaType || child.contentType, `manifest ${entry.digest} of ${refText}`);
      if (parsed.kind !== "manifest") throw new OciError(`${refText}: index entry ${entry.digest} for ${formatPlatform(wanted)} is itself an index`, { reference: refText });
      manifestBytes = child.bytes;
      manifestDigest = child.digest;
    }
    const manifest: ImageManifest = parsed;

    // Config: small, fetched through the cache like any blob.
    await this.fetchBlob(manifest.config, -1, undefined);
    const configWhere = `config ${manifest.config.digest} of ${refText}`;
    const config = parseImageConfig(await this.cache.readBlob(manifest.config.digest), configWhere);
    const platform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
    if (!entry && ropts.platform && !platformMatches(ropts.platform, platform)) {
      throw new OciError(`${refText}: image is ${formatPlatform(platform)} only, not ${formatPlatform(ropts.platform)}`, { reference: refText });
    }
    const layers = layerRefs(manifest, config, `manifest ${manifestDigest} of ${refText}`);

    // Record the reference before downloading layers, so a concurrent prune keeps them.
    await this.cache.putBytes(manifestDigest, manifestBytes, `manifest of ${refText}`);
    await this.cache.addRef(refText, { mediaType: manifest.mediaType || MT.ociManifest, digest: manifestDigest, size: manifestBytes.length, platform });

    ropts.progress?.({ type: "resolved", source: refText, manifestDigest, platform, layers: layers.map((l) => ({ digest: l.digest, size: l.size })) });
    const downloads = this.startDownloads(manifest.layers, ropts.progress);
    if (!ropts.followDownloads) await downloads.all;

    const cache = this.cache;
    const diffIds = this.opts.diffIds;
    return {
      source: refText,
      manifestDigest,
      platform,
      config,
      layers,
      openLayer(i) {
        const l = layers[i];
        if (!l) throw new OciError(`${refText}: no layer ${i} (image has ${layers.length})`, { reference: refText });
        // The cache verifies the blob digest before it names the blob (a followed download's
        // stream ends only after that); the diff_id is checked here, once per blob.
        const watch = downloads.watches[i]!;
        const bytes = watch.done && watch.error === undefined ? fileChunks(cache.blobPath(l.digest)) : followDownload(cache.partialPath(l.digest), cache.blobPath(l.digest), watch);
        return toReadableStream(layerChunks(bytes, { compression: l.compression, digest: l.digest, blobVerified: true, diffId: l.diffId, diffIds, where: `layer ${i + 1} (${l.digest}) of ${refText}` }));
      },
      async dispose() {
        // No download may go on writing after its image is disposed (a failed or cancelled pull).
        await downloads.all.catch(() => {});
      },
    };
  }

  /**
   * Downloads the layers, `concurrency` at a time, each watched so that openLayer can follow it.
   * `all` settles when every download has (rejecting with the first error).
   */
  private startDownloads(descs: Descriptor[], progress: ProgressListener | undefined): { watches: DownloadWatch[]; all: Promise<void> } {
    const watches = descs.map(() => new DownloadWatch());
    const all = forEachLimited(descs, this.opts.concurrency ?? 3, async (d, i) => {
      const watch = watches[i]!;
      const report: ProgressListener = (e) => {
        if (e.type === "layer" && (e.state === "downloading" || e.state === "resuming")) watch.update(e.bytesDone);
        progress?.(e);
      };
      try {
        await this.fetchBlob(d, i, report);
        watch.settle();
      } catch (err) {
        watch.settle(err);
        throw err;
      }
    });
    // A failed download fails the layer streams that follow it; with none following, the
    // rejection is seen by whoever awaits `all` (resolve itself, or dispose).
    // Downloads never started after another failed settle with that failure, so no reader waits forever.
    all.then(
      () => {},
      (err: unknown) => {
        for (const w of watches) w.settle(err);
      },
    );
    return { watches, all };
  }

  /** Makes one blob present in the cache, resuming and retrying as needed. */
  /** A bundle artifact: its one blob downloaded (verified) into the cache; installed by the caller. */
  private async resolveBundle(manifestDigest: string, bundle: { digest: string; size: number }, platform: Platform, progress: ProgressListener | undefined): Promise<ResolvedImage> {
    const refText = this.describe();
    progress?.({ type: "resolved", source: refText, manifestDigest, platform, layers: [bundle] });
    await this.fetchBlob({ mediaType: BUNDLE_LAYER_MEDIA_TYPE, digest: bundle.digest, size: bundle.size }, 0, progress);
    return {
      source: refText,
      manifestDigest,
      platform,
      config: { os: platform.os, architecture: platform.architecture, rootfs: { type: "layers", diff_ids: [] }, raw: {} },
      layers: [],
      openLayer: () => {
        throw new OciError(`${refText}: a bundle artifact has no layers to open`, { reference: refText });
      },
      dispose: async () => {},
      bundle: { ...bundle, path: this.cache.blobPath(bundle.digest) },
    };
  }

  private async fetchBlob(d: Descriptor, index: number, progress: ProgressListener | undefined): Promise<void> {
    const emit = (state: "cached" | "downloading" | "resuming" | "retrying" | "done", bytesDone: number, reason?: string) =>
      index >= 0 && progress?.({ type: "layer", index, digest: d.digest, bytesDone, bytesTotal: d.size, state, ...(reason ? { reason } : {}) });
    let downloaded = false;
    await this.cache.ensure(
      d.digest,
      d.size,
      async (ingest: BlobIngest) => {
        downloaded = true;
        await this.download(d, ingest, emit);
      },
      { signal: this.opts.signal },
    );
    if (!downloaded) emit("cached", d.size);
    else emit("done", d.size);
  }

  private async download(
    d: Descriptor,
    ingest: BlobIngest,
    emit: (state: "cached" | "downloading" | "resuming" | "retrying" | "done", bytesDone: number, reason?: string) => void,
  ): Promise<void> {
    const refText = this.describe();
    const policy = this.client.policy;
    let lastUrl = "";
    for (let attempt = 0; ; attempt++) {
      try {
        if (ingest.offset < d.size) {
          const resuming = ingest.offset > 0;
          const res = await this.client.openBlob(this.ref, d.digest, ingest.offset, d.urls);
          lastUrl = res.url;
          if (res.start === 0 && ingest.offset > 0) await ingest.restart();
          emit(resuming && res.start > 0 ? "resuming" : "downloading", ingest.offset);
          try {
            for await (const chunk of res.body) {
              await ingest.append(chunk);
              emit("downloading", ingest.offset);
            }
          } catch (err) {
            res.discard();
            throw err;
          }
        }
        if (ingest.offset < d.size) throw new OciError(`connection ended after ${ingest.offset} of ${d.size} bytes`);
        await ingest.commit(lastUrl || refText);
        return;
      } catch (err) {
        if (permanent(err) || attempt >= policy.retries) {
          if (permanent(err)) throw err;
          throw new OciError(`${refText}: downloading blob ${d.digest}${lastUrl ? " from " + lastUrl : ""} failed after ${attempt + 1} attempts: ${errorText(err)}`, {
            reference: refText,
            digest: d.digest,
            url: lastUrl,
            cause: err,
          });
        }
        emit("retrying", ingest.offset, errorText(err));
        await sleep(retryDelay(attempt + 1, policy), this.opts.signal);
      }
    }
  }
}

function safeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null; // parseManifest reports it with context
  }
}
