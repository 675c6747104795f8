// A catalog image as an ImageSource: resolve() downloads its bundle (verified, resumable, kept
// by digest under the cache's bundles/ dir) and hands it over as ResolvedImage.bundle, the
// same way a registry bundle artifact arrives, so the pull installs both the same way.
import fs from "node:fs";
import path from "node:path";
import { downloadVerified } from "../oci/download.ts";
import { OciError, type ImageSource, type ResolvedImage, type ResolveOptions } from "../oci/index.ts";
import type { CatalogImage } from "./catalog.ts";

export class CatalogSource implements ImageSource {
  constructor(readonly entry: CatalogImage, private readonly bundleDir: string, private readonly signal?: AbortSignal) {}

  describe(): string {
    return `catalog:${this.entry.name}`;
  }

  async resolve(ropts: ResolveOptions = {}): Promise<ResolvedImage> {
    const e = this.entry;
    const source = this.describe();
    const digest = `sha256:${e.sha256}`;
    const platform = { os: "linux", architecture: e.arch };
    const layer = { digest, size: e.size };
    ropts.progress?.({ type: "resolved", source, manifestDigest: digest, platform, layers: [layer] });
    fs.mkdirSync(this.bundleDir, { recursive: true });
    const file = path.join(this.bundleDir, `${e.sha256}.tar.zst`);
    const emit = (state: "cached" | "downloading" | "done", bytesDone: number) => ropts.progress?.({ type: "layer", index: 0, digest, bytesDone, bytesTotal: e.size, state });
    if (fs.existsSync(file)) emit("cached", e.size);
    else {
      await downloadVerified(e.url, file, { sha256: e.sha256, size: e.size, signal: this.signal, what: `image "${e.name}" (catalog)`, progress: (done) => emit("downloading", done) });
      emit("done", e.size);
    }
    return {
      source,
      manifestDigest: digest,
      platform,
      config: { os: "linux", architecture: e.arch, rootfs: { type: "layers", diff_ids: [] }, raw: {} },
      layers: [],
      openLayer: () => {
        throw new OciError(`${source}: a bundle has no layers to open`);
      },
      dispose: async () => {},
      bundle: { digest, size: e.size, path: file },
    };
  }
}
