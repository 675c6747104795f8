// Small OCI/Docker images built in memory for tests: ustar layers, gzip/zstd compression,
// configs with diff_ids, manifests and indexes, plus writers for an OCI layout directory and
// a `docker save` archive.
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

export type Compression = "none" | "gzip" | "zstd";

export function sha256(data: Uint8Array | string): string {
  return "sha256:" + new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

const enc = new TextEncoder();

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

/** Minimal ustar writer: regular files and directories, names under 100 bytes. */
export function makeTar(entries: { name: string; content?: string | Uint8Array; dir?: boolean; mode?: number }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const data = e.dir ? new Uint8Array(0) : typeof e.content === "string" ? enc.encode(e.content) : (e.content ?? new Uint8Array(0));
    const h = new Uint8Array(512);
    const put = (off: number, s: string) => h.set(enc.encode(s), off);
    put(0, e.name);
    put(100, octal(e.mode ?? (e.dir ? 0o755 : 0o644), 8));
    put(108, octal(0, 8));
    put(116, octal(0, 8));
    put(124, octal(data.length, 12));
    put(136, octal(1_700_000_000, 12));
    put(148, "        ");
    put(156, e.dir ? "5" : "0");
    put(257, "ustar\0");
    put(263, "00");
    let sum = 0;
    for (const b of h) sum += b;
    put(148, octal(sum, 7) + " ");
    parts.push(h, data);
    const pad = (512 - (data.length % 512)) % 512;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024));
  return concat(parts);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function compress(data: Uint8Array, c: Compression): Uint8Array {
  if (c === "gzip") return new Uint8Array(zlib.gzipSync(data));
  if (c === "zstd") return new Uint8Array(zlib.zstdCompressSync(data));
  return data;
}

export interface TestLayer {
  tar: Uint8Array;
  blob: Uint8Array;
  digest: string;
  diffId: string;
  mediaType: string;
  compression: Compression;
}

const OCI_LAYER = { none: "application/vnd.oci.image.layer.v1.tar", gzip: "application/vnd.oci.image.layer.v1.tar+gzip", zstd: "application/vnd.oci.image.layer.v1.tar+zstd" };
const DOCKER_LAYER = { none: "application/vnd.docker.image.rootfs.diff.tar", gzip: "application/vnd.docker.image.rootfs.diff.tar.gzip", zstd: "application/vnd.docker.image.rootfs.diff.tar.zstd" };

export function makeLayer(tar: Uint8Array, compression: Compression, docker = false): TestLayer {
  const blob = compress(tar, compression);
  return { tar, blob, digest: sha256(blob), diffId: sha256(tar), mediaType: (docker ? DOCKER_LAYER : OCI_LAYER)[compression], compression };
}

export interface TestImage {
  layers: TestLayer[];
  config: Uint8Array;
  configDigest: string;
  manifest: Uint8Array;
  manifestDigest: string;
  mediaType: string;
  platform: { os: string; architecture: string; variant?: string };
  /** Every blob by digest (config and layers). */
  blobs: Map<string, Uint8Array>;
}

export function makeImage(opts: { layers: TestLayer[]; platform?: { os: string; architecture: string; variant?: string }; docker?: boolean; env?: string[] }): TestImage {
  const platform = opts.platform ?? { os: "linux", architecture: "amd64" };
  const config = enc.encode(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: opts.env ?? ["PATH=/usr/bin:/bin"], Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: opts.layers.map((l) => l.diffId) },
    }),
  );
  const configDigest = sha256(config);
  const mediaType = opts.docker ? "application/vnd.docker.distribution.manifest.v2+json" : "application/vnd.oci.image.manifest.v1+json";
  const manifest = enc.encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: opts.docker ? "application/vnd.docker.container.image.v1+json" : "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
      layers: opts.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length })),
    }),
  );
  const blobs = new Map<string, Uint8Array>([[configDigest, config]]);
  for (const l of opts.layers) blobs.set(l.digest, l.blob);
  return { layers: opts.layers, config, configDigest, manifest, manifestDigest: sha256(manifest), mediaType, platform, blobs };
}

/** An index over images, plus an attestation entry pointing at the first one (as BuildKit writes). */
export function makeIndex(images: TestImage[], opts: { docker?: boolean; attestation?: TestImage } = {}): { bytes: Uint8Array; digest: string; mediaType: string } {
  const mediaType = opts.docker ? "application/vnd.docker.distribution.manifest.list.v2+json" : "application/vnd.oci.image.index.v1+json";
  const manifests: unknown[] = images.map((i) => ({ mediaType: i.mediaType, digest: i.manifestDigest, size: i.manifest.length, platform: i.platform }));
  if (opts.attestation) {
    manifests.unshift({
      mediaType: opts.attestation.mediaType,
      digest: opts.attestation.manifestDigest,
      size: opts.attestation.manifest.length,
      platform: { os: "unknown", architecture: "unknown" },
      annotations: { "vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": images[0]!.manifestDigest },
    });
  }
  const bytes = enc.encode(JSON.stringify({ schemaVersion: 2, mediaType, manifests }));
  return { bytes, digest: sha256(bytes), mediaType };
}

/** Writes an OCI image layout directory holding the images, tagged as given. */
export function writeOciLayout(dir: string, entries: { tag?: string; image?: TestImage; index?: { bytes: Uint8Array; digest: string; mediaType: string }; images?: TestImage[] }[]): void {
  fs.mkdirSync(path.join(dir, "blobs", "sha256"), { recursive: true });
  fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const put = (digest: string, bytes: Uint8Array) => fs.writeFileSync(path.join(dir, "blobs", "sha256", digest.slice(7)), bytes);
  const manifests: unknown[] = [];
  for (const e of entries) {
    const imgs = e.images ?? (e.image ? [e.image] : []);
    for (const img of imgs) {
      put(img.manifestDigest, img.manifest);
      for (const [d, b] of img.blobs) put(d, b);
    }
    const annotations = e.tag ? { "org.opencontainers.image.ref.name": e.tag } : undefined;
    if (e.index) {
      put(e.index.digest, e.index.bytes);
      manifests.push({ mediaType: e.index.mediaType, digest: e.index.digest, size: e.index.bytes.length, annotations });
    } else if (e.image) {
      manifests.push({ mediaType: e.image.mediaType, digest: e.image.manifestDigest, size: e.image.manifest.length, annotations });
    }
  }
  fs.writeFileSync(path.join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests }));
}

/** A `docker save` archive in the classic layout: manifest.json, <id>.json, <id>/layer.tar. */
export function makeDockerArchive(img: TestImage, repoTags: string[]): Uint8Array {
  const entries: { name: string; content?: Uint8Array | string; dir?: boolean }[] = [];
  const configName = `${img.configDigest.slice(7)}.json`;
  const layerNames: string[] = [];
  img.layers.forEach((l, i) => {
    const id = sha256(`layer-${i}-${l.diffId}`).slice(7);
    entries.push({ name: `${id}/`, dir: true }, { name: `${id}/VERSION`, content: "1.0" }, { name: `${id}/layer.tar`, content: l.tar });
    layerNames.push(`${id}/layer.tar`);
  });
  entries.push({ name: configName, content: img.config });
  entries.push({ name: "manifest.json", content: JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: layerNames }]) });
  entries.push({ name: "repositories", content: "{}" });
  return makeTar(entries);
}
