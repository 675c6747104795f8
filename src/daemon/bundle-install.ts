// Installing a catalog image: its bundle downloaded (verified, resumable, kept in the cache
// under its sha256 so a second pull downloads nothing) and unpacked into the image's staging
// directory, where publishing takes over as for any pull.
import fs from "node:fs";
import path from "node:path";
import { unpackBundle } from "../bundle/read.ts";
import type { BundleManifest } from "../bundle/manifest.ts";
import { fileChunks } from "../oci/layer-stream.ts";
import { downloadVerified } from "../oci/download.ts";
import { zstdDecompressNative } from "../oci/zstd.ts";
import type { CatalogImage } from "./catalog.ts";
import type { ResolvedImage } from "../oci/index.ts";
import { kernelCommandLine } from "../inject/index.ts";
import type { BuildResult } from "./build-image.ts";
import type { PullListener } from "./events.ts";

export interface InstallOptions {
  /** Where verified bundles are kept ($XDG_CACHE_HOME/banger/bundles). */
  bundleDir: string;
  signal?: AbortSignal;
  progress?: (done: number, total: number) => void;
}

export async function installBundle(entry: CatalogImage, staging: string, opts: InstallOptions): Promise<BundleManifest> {
  fs.mkdirSync(opts.bundleDir, { recursive: true });
  const file = path.join(opts.bundleDir, `${entry.sha256}.tar.zst`);
  const what = `image "${entry.name}" (catalog)`;
  if (!fs.existsSync(file)) await downloadVerified(entry.url, file, { sha256: entry.sha256, size: entry.size, signal: opts.signal, progress: opts.progress, what });
  else opts.progress?.(entry.size, entry.size);
  const manifest = await unpackBundleFile(file, staging, `${what} bundle ${entry.url}`, entry.arch);
  if (manifest.name !== entry.name) throw new Error(`${what}: the bundle says it is "${manifest.name}"`);
  return manifest;
}

/** A verified bundle file (the cache's, a catalog download) unpacked into `staging`. */
export function unpackBundleFile(file: string, staging: string, where: string, arch?: string): Promise<BundleManifest> {
  return unpackBundle(zstdDecompressNative(fileChunks(file)), staging, { where, arch });
}

/**
 * A resolved bundle (ResolvedImage.bundle) unpacked into the staging dir as rootfs.ext4 and
 * work-seed.ext4, described like a build's result so the pull publishes it the same way.
 */
export async function installBundleImage(image: ResolvedImage, staging: string, progress?: PullListener): Promise<BuildResult> {
  const b = image.bundle!;
  progress?.({ type: "phase", phase: "unpack", detail: "bundle" });
  const m = await unpackBundleFile(b.path, staging, `${image.source}: bundle ${b.digest}`, image.platform.architecture);
  const seed = path.join(staging, "work-seed.ext4");
  const hasSeed = fs.existsSync(seed);
  return {
    sizeBytes: m.size_bytes,
    blocksUsed: 0,
    inodesUsed: 0,
    uuid: "",
    bundleKernelRef: m.kernel_ref,
    guest: { init: m.init, imageInit: null, kernelCmdline: kernelCommandLine(m.init), injected: [], workSeedPath: hasSeed ? seed : null, warnings: hasSeed ? [] : ["the bundle has no work seed"] },
  };
}
