// `banger image push <name> <ref>`: a stored image as a bundle (src/bundle), uploaded to any
// OCI registry as an artifact (src/bundle/artifact.ts). The bundle is made in a temporary
// directory beside the image and removed afterwards; the upload holds it in memory (a bundle of
// the Debian rootfs is ~60 MB at level 19).
import fs from "node:fs";
import path from "node:path";
import { bundleArtifactManifest, EMPTY_CONFIG } from "../oci/bundle-artifact.ts";
import { writeBundle } from "../bundle/write.ts";
import { parseReference, type Reference } from "../oci/index.ts";
import { sha256Digest } from "../oci/digest.ts";
import { RegistryClient, type RegistryClientOptions } from "../oci/registry.ts";
import type { ImageRecord } from "./store.ts";

export interface PushResult {
  reference: string;
  manifestDigest: string;
  bundleDigest: string;
  bundleBytes: number;
}

export interface PushOptions extends RegistryClientOptions {
  /** zstd level of the bundle (default 19). */
  level?: number;
  distro?: string;
}

export async function pushImage(rec: ImageRecord, refText: string, opts: PushOptions = {}): Promise<PushResult> {
  const ref: Reference = parseReference(refText);
  if (ref.digest) throw new Error(`push to "${refText}": give a tag, not a digest (the registry names the manifest by its digest)`);
  const tag = ref.tag ?? "latest";
  const work = fs.mkdtempSync(path.join(path.dirname(rec.rootfsPath), ".push-"));
  try {
    const out = path.join(work, "bundle.tar.zst");
    const arch = rec.platform.split("/")[1] ?? "amd64";
    writeBundle({
      rootfs: rec.rootfsPath,
      workSeed: rec.workSeedPath ?? undefined,
      out,
      level: opts.level,
      workers: Math.max(1, navigator.hardwareConcurrency ?? 1),
      manifest: { name: rec.name, distro: opts.distro ?? "", arch, kernel_ref: null, description: `banger image ${rec.name} from ${rec.source}`, created: rec.createdAt, init: rec.init ?? "banger-init" },
    });
    const bytes = new Uint8Array(fs.readFileSync(out));
    const client = new RegistryClient(opts);
    const bundleDigest = sha256Digest(bytes);
    const configDigest = sha256Digest(EMPTY_CONFIG);
    await client.pushBlob(ref, configDigest, EMPTY_CONFIG);
    await client.pushBlob(ref, bundleDigest, bytes);
    const manifest = bundleArtifactManifest({ digest: bundleDigest, size: bytes.length }, configDigest, {
      "org.opencontainers.image.title": `${rec.name}.tar.zst`,
      "dev.banger.image.name": rec.name,
      "dev.banger.image.source": rec.source,
    });
    const manifestDigest = await client.pushManifest(ref, tag, manifest.bytes, manifest.mediaType);
    return { reference: `${ref.registry}/${ref.repository}:${tag}`, manifestDigest, bundleDigest, bundleBytes: bytes.length };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
