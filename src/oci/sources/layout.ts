// OCI image layout directory (`oci:DIR[:TAG]`), as written by skopeo, umoci, buildah or our
// own cache. Blobs are read in place and verified while reading.
import fs from "node:fs/promises";
import path from "node:path";
import { checkDigest, digestHex, sha256Digest } from "../digest.ts";
import { OciError, OciNotFoundError, errorText } from "../errors.ts";
import { fileChunks, layerChunks, toReadableStream } from "../layer-stream.ts";
import { layerRefs, parseDescriptor, parseImageConfig, parseJson, parseManifest, selectPlatform, type Descriptor } from "../manifest.ts";
import { MT } from "../media-types.ts";
import { formatPlatform, hostPlatform, platformMatches, type Platform } from "../platform.ts";
import type { ImageSource, LayerReadOptions, ResolveOptions, ResolvedImage } from "../source.ts";

const REF_NAME = "org.opencontainers.image.ref.name";

export class OciLayoutSource implements ImageSource {
  constructor(
    readonly dir: string,
    readonly tag?: string,
    private readonly opts: LayerReadOptions = {},
  ) {}

  describe(): string {
    return `oci:${this.dir}${this.tag ? ":" + this.tag : ""}`;
  }

  private blobPath(digest: string): string {
    return path.join(this.dir, "blobs", "sha256", digestHex(digest));
  }

  private async readVerified(d: Descriptor, what: string): Promise<Uint8Array> {
    const file = this.blobPath(d.digest);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await fs.readFile(file));
    } catch (err) {
      throw new OciNotFoundError(`${this.describe()}: ${what} ${d.digest} cannot be read (${file}): ${errorText(err)}`, { digest: d.digest, cause: err });
    }
    const got = sha256Digest(bytes);
    if (got !== d.digest) throw new OciError(`${this.describe()}: ${what} ${file} hashes to ${got}, not ${d.digest}`, { digest: d.digest });
    return bytes;
  }

  async resolve(ropts: ResolveOptions = {}): Promise<ResolvedImage> {
    const src = this.describe();
    const layoutFile = path.join(this.dir, "oci-layout");
    let layout: Record<string, unknown>;
    try {
      layout = parseJson(await fs.readFile(layoutFile), layoutFile);
    } catch (err) {
      throw new OciError(`${src}: not an OCI image layout (${layoutFile}: ${errorText(err)})`, { cause: err });
    }
    if (typeof layout.imageLayoutVersion !== "string") throw new OciError(`${src}: ${layoutFile} has no imageLayoutVersion`);
    const indexFile = path.join(this.dir, "index.json");
    const index = parseJson(await fs.readFile(indexFile).catch((err) => {
      throw new OciError(`${src}: cannot read ${indexFile}: ${errorText(err)}`, { cause: err });
    }), indexFile);
    const entries = (Array.isArray(index.manifests) ? index.manifests : []).map((m, i) => parseDescriptor(m, `${indexFile} manifests[${i}]`));
    let candidates = entries;
    if (this.tag) {
      const t = this.tag;
      candidates = entries.filter((e) => {
        const n = e.annotations?.[REF_NAME];
        return n === t || (n !== undefined && n.endsWith(":" + t) && !n.slice(0, -t.length - 1).includes("@"));
      });
      if (candidates.length === 0) {
        const names = entries.map((e) => e.annotations?.[REF_NAME]).filter(Boolean);
        throw new OciNotFoundError(`${src}: no image tagged "${t}" in ${indexFile} (tags: ${names.length ? names.join(", ") : "none"})`);
      }
    } else if (entries.length === 0) {
      throw new OciNotFoundError(`${src}: ${indexFile} lists no images`);
    } else {
      const names = [...new Set(entries.map((e) => e.annotations?.[REF_NAME] ?? ""))];
      if (names.length > 1) {
        throw new OciError(`${src}: ${indexFile} holds several images; name one as oci:DIR:TAG (tags: ${names.map((n) => n || "(untagged)").join(", ")})`);
      }
    }
    const wanted = ropts.platform ?? hostPlatform();
    let entry: Descriptor;
    let explicitPlatform = false;
    if (candidates.length === 1) entry = candidates[0]!;
    else {
      // Several entries (one per platform, as our own cache stores them): pick by platform,
      // reading it from the config where the entry does not say.
      for (const c of candidates) {
        if (c.platform || c.mediaType === MT.ociIndex || c.mediaType === MT.dockerList) continue;
        const m = parseManifest(await this.readVerified(c, "manifest"), c.mediaType, `${src} manifest ${c.digest}`);
        if (m.kind !== "manifest") continue;
        const cfg = parseImageConfig(await this.readVerified(m.config, "config"), `${src} config ${m.config.digest}`);
        c.platform = { os: cfg.os, architecture: cfg.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) };
      }
      entry = selectPlatform({ kind: "index", mediaType: MT.ociIndex, manifests: candidates }, wanted, `${src} index.json`);
      explicitPlatform = true;
    }
    let bytes = await this.readVerified(entry, "manifest");
    let m = parseManifest(bytes, entry.mediaType, `${src} manifest ${entry.digest}`);
    for (let depth = 0; m.kind === "index"; depth++) {
      if (depth > 4) throw new OciError(`${src}: indexes nested too deeply`);
      entry = selectPlatform(m, wanted, `${src} index ${entry.digest}`);
      explicitPlatform = true;
      bytes = await this.readVerified(entry, "manifest");
      m = parseManifest(bytes, entry.mediaType, `${src} manifest ${entry.digest}`);
    }
    const manifest = m;
    const config = parseImageConfig(await this.readVerified(manifest.config, "config"), `${src} config ${manifest.config.digest}`);
    const platform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
    if (!explicitPlatform && ropts.platform && !platformMatches(ropts.platform, platform)) {
      throw new OciError(`${src}: image is ${formatPlatform(platform)} only, not ${formatPlatform(ropts.platform)}`);
    }
    const layers = layerRefs(manifest, config, `${src} manifest ${entry.digest}`);
    for (const [i, l] of layers.entries()) {
      const st = await fs.stat(this.blobPath(l.digest)).catch(() => undefined);
      if (!st) throw new OciNotFoundError(`${src}: layer ${i} blob ${l.digest} is missing (${this.blobPath(l.digest)})`, { digest: l.digest });
      if (st.size !== l.size) throw new OciError(`${src}: layer ${i} blob ${l.digest} is ${st.size} bytes, manifest says ${l.size}`, { digest: l.digest });
      ropts.progress?.({ type: "layer", index: i, digest: l.digest, bytesDone: l.size, bytesTotal: l.size, state: "cached" });
    }
    checkDigest(entry.digest, src);
    return {
      source: src,
      manifestDigest: entry.digest,
      platform,
      config,
      layers,
      openLayer: (i) => {
        const l = layers[i];
        if (!l) throw new OciError(`${src}: no layer ${i} (image has ${layers.length})`);
        // A file anyone may have changed since: its blob digest is checked on every read.
        return toReadableStream(layerChunks(fileChunks(this.blobPath(l.digest)), { compression: l.compression, digest: l.digest, diffId: l.diffId, diffIds: this.opts.diffIds, where: `${src} layer ${i} (${l.digest})` }));
      },
      async dispose() {},
    };
  }
}
