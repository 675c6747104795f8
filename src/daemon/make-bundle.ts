// `banger internal make-bundle`: a rootfs tar -> banger's ext4 (with the guest files, no user's
// SSH key: a bundle is made to be shared) and its work seed -> a .tar.zst bundle (src/bundle).
// Built in a temporary directory beside the output, removed whatever happens.
import fs from "node:fs";
import path from "node:path";
import { writeBundle, type BundleWritten } from "../bundle/write.ts";
import { GUEST_ASSETS } from "../inject/index.ts";
import type { IoOptions } from "../io/options.ts";
import type { SourceOptions } from "../oci/index.ts";
import { buildRootfs } from "./build-image.ts";
import { openSource } from "./image-names.ts";

export interface MakeBundleRequest {
  /** A rootfs tar file, or "-" for standard input. */
  rootfsTar: string;
  name: string;
  distro: string;
  arch: string;
  kernelRef?: string;
  description?: string;
  sizeBytes?: number;
  out: string;
  /** zstd level (default 19). */
  level?: number;
  /** Superblock and manifest time (seconds); default now. */
  timestamp?: number;
  io?: IoOptions;
  sourceOptions?: SourceOptions;
}

export async function makeBundle(req: MakeBundleRequest): Promise<BundleWritten> {
  const outDir = path.dirname(path.resolve(req.out));
  let work: string;
  try {
    work = fs.mkdtempSync(path.join(outDir, ".make-bundle-"));
  } catch (err) {
    throw new Error(`cannot write the bundle into ${outDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const { source } = openSource(req.rootfsTar === "-" ? "-" : `rootfs:${req.rootfsTar}`, req.sourceOptions ?? {});
    const image = await source.resolve({});
    const rootfs = path.join(work, "rootfs.ext4");
    const seed = path.join(work, "work-seed.ext4");
    try {
      const built = await buildRootfs({ image, out: rootfs, sizeBytes: req.sizeBytes, timestamp: req.timestamp, io: req.io, guest: { assets: GUEST_ASSETS, authorizedKeys: "", workSeedOut: seed } });
      const created = new Date((req.timestamp ?? Math.floor(Date.now() / 1000)) * 1000).toISOString();
      return writeBundle({
        rootfs,
        workSeed: built.guest?.workSeedPath ?? undefined,
        out: req.out,
        level: req.level,
        workers: Math.max(1, navigator.hardwareConcurrency ?? 1),
        manifest: { name: req.name, distro: req.distro, arch: req.arch, kernel_ref: req.kernelRef ?? null, description: req.description ?? "", created, init: built.guest!.init },
      });
    } finally {
      await image.dispose();
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
