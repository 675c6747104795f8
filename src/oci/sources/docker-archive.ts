// `docker save` archive (`docker-archive:FILE[:REPO:TAG]`): manifest.json names the config and
// the layer members; layers are read in place from the archive and checked against the
// config's diff_ids. Both the classic layout (<id>/layer.tar) and Docker 25+'s OCI-style
// layout (blobs/sha256/<hex>) work.
import fs from "node:fs/promises";
import { isDigest } from "../digest.ts";
import { OciError, OciNotFoundError, errorText } from "../errors.ts";
import { fileChunks, layerChunks, toReadableStream } from "../layer-stream.ts";
import { parseImageConfig, synthesizedManifestDigest, type LayerRef } from "../manifest.ts";
import { sniffCompression } from "../media-types.ts";
import { formatPlatform, platformMatches, type Platform } from "../platform.ts";
import type { ImageSource, LayerReadOptions, ResolveOptions, ResolvedImage } from "../source.ts";
import { indexArchive, type ArchiveMember } from "./archive-index.ts";

interface ArchiveManifestEntry {
  Config?: unknown;
  RepoTags?: unknown;
  Layers?: unknown;
}

export class DockerArchiveSource implements ImageSource {
  constructor(
    readonly file: string,
    readonly tag?: string,
    private readonly opts: LayerReadOptions = {},
  ) {}

  describe(): string {
    return `docker-archive:${this.file}${this.tag ? ":" + this.tag : ""}`;
  }

  async resolve(ropts: ResolveOptions = {}): Promise<ResolvedImage> {
    const src = this.describe();
    const head = new Uint8Array(6);
    try {
      const fh = await fs.open(this.file, "r");
      await fh.read(head, 0, 6, 0);
      await fh.close();
    } catch (err) {
      throw new OciError(`${src}: cannot open: ${errorText(err)}`, { cause: err });
    }
    const kind = sniffCompression(head);
    if (kind !== "none") throw new OciError(`${src}: the archive is ${kind}-compressed; decompress it first (docker save writes a plain tar)`);
    const members = await indexArchive(this.file);
    const readMember = async (name: string, what: string): Promise<Uint8Array> => {
      const m = members.get(name.replace(/^\.\//, ""));
      if (!m) throw new OciNotFoundError(`${src}: ${what} "${name}" is not in the archive`);
      if (m.size > 64 * 1024 * 1024) throw new OciError(`${src}: ${what} "${name}" is implausibly large (${m.size} bytes)`);
      return new Uint8Array(await Bun.file(this.file).slice(m.offset, m.offset + m.size).arrayBuffer());
    };
    let list: unknown;
    try {
      list = JSON.parse(new TextDecoder().decode(await readMember("manifest.json", "manifest")));
    } catch (err) {
      if (err instanceof OciError) throw err;
      throw new OciError(`${src}: manifest.json is not valid JSON: ${errorText(err)}`);
    }
    if (!Array.isArray(list) || list.length === 0) throw new OciError(`${src}: manifest.json lists no images`);
    const entries = list as ArchiveManifestEntry[];
    const tagsOf = (e: ArchiveManifestEntry) => (Array.isArray(e.RepoTags) ? e.RepoTags.filter((t): t is string => typeof t === "string") : []);
    let entry: ArchiveManifestEntry | undefined;
    if (this.tag) {
      const t = this.tag;
      entry = entries.find((e) => tagsOf(e).some((rt) => rt === t || rt.endsWith("/" + t) || rt === `docker.io/${t}` || rt === `docker.io/library/${t}`));
      if (!entry) throw new OciNotFoundError(`${src}: no image tagged "${t}" (archive has: ${entries.flatMap(tagsOf).join(", ") || "untagged images"})`);
    } else if (entries.length > 1) {
      throw new OciError(`${src}: the archive holds ${entries.length} images; name one as docker-archive:FILE:REPO:TAG (${entries.flatMap(tagsOf).join(", ")})`);
    } else entry = entries[0]!;
    if (typeof entry.Config !== "string" || !Array.isArray(entry.Layers)) throw new OciError(`${src}: manifest.json entry lacks Config or Layers`);
    const configBytes = await readMember(entry.Config, "config");
    const config = parseImageConfig(configBytes, `${src} config ${entry.Config}`);
    const layerNames = entry.Layers.map((l) => String(l));
    if (layerNames.length !== config.rootfs.diff_ids.length) {
      throw new OciError(`${src}: manifest.json lists ${layerNames.length} layers but the config has ${config.rootfs.diff_ids.length} diff_ids`);
    }
    const platform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
    if (ropts.platform && !platformMatches(ropts.platform, platform)) {
      throw new OciError(`${src}: image is ${formatPlatform(platform)}, not ${formatPlatform(ropts.platform)}`);
    }
    const located: ArchiveMember[] = [];
    const layers: LayerRef[] = [];
    for (const [i, name] of layerNames.entries()) {
      const m = members.get(name.replace(/^\.\//, ""));
      if (!m) throw new OciNotFoundError(`${src}: layer ${i} "${name}" is not in the archive`);
      const h = new Uint8Array(await Bun.file(this.file).slice(m.offset, m.offset + Math.min(m.size, 8)).arrayBuffer());
      const compression = sniffCompression(h);
      if (compression === "xz" || compression === "bzip2") throw new OciError(`${src}: layer ${i} "${name}" is ${compression}-compressed, which is not supported`);
      const hexName = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name);
      const diffId = config.rootfs.diff_ids[i]!;
      // Content-addressed members carry their digest in the name; classic layer.tar members are uncompressed tars named by diff_id.
      const digest = hexName && isDigest(`sha256:${hexName[1]}`) ? `sha256:${hexName[1]}` : diffId;
      const mediaType = compression === "gzip" ? "application/vnd.docker.image.rootfs.diff.tar.gzip" : compression === "zstd" ? "application/vnd.oci.image.layer.v1.tar+zstd" : "application/vnd.docker.image.rootfs.diff.tar";
      located.push(m);
      layers.push({ digest, size: m.size, mediaType, compression, diffId });
      ropts.progress?.({ type: "layer", index: i, digest, bytesDone: m.size, bytesTotal: m.size, state: "cached" });
    }
    const file = this.file;
    const diffIds = this.opts.diffIds;
    return {
      source: src,
      manifestDigest: synthesizedManifestDigest(configBytes, layers),
      platform,
      config,
      layers,
      openLayer(i) {
        const l = layers[i];
        const m = located[i];
        if (!l || !m) throw new OciError(`${src}: no layer ${i} (image has ${layers.length})`);
        const verifyBlob = l.digest !== l.diffId ? l.digest : undefined;
        return toReadableStream(layerChunks(fileChunks(file, m.offset, m.offset + m.size), { compression: l.compression, digest: verifyBlob, diffId: l.diffId, diffIds, where: `${src} layer ${i} (${layerNames[i]})` }));
      },
      async dispose() {},
    };
  }
}
