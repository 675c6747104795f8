// Manifests, indexes and image configs: parsed from JSON and checked just enough that
// everything later can trust their shape (digests valid, layers readable, platform known).
import { checkDigest, sha256Digest } from "./digest.ts";
import { OciError } from "./errors.ts";
import { MT, layerCompression, type Compression } from "./media-types.ts";
import { formatPlatform, platformMatches, type Platform } from "./platform.ts";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform & { "os.version"?: string; "os.features"?: string[] };
}

export interface IndexManifest {
  kind: "index";
  mediaType: string;
  manifests: Descriptor[];
}

export interface ImageManifest {
  kind: "manifest";
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** The parts of the image config banger uses; `raw` keeps the rest. */
export interface ImageConfig {
  os: string;
  architecture: string;
  variant?: string;
  rootfs: { type: string; diff_ids: string[] };
  config?: {
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    User?: string;
    Labels?: Record<string, string> | null;
    ExposedPorts?: Record<string, unknown>;
    StopSignal?: string;
  };
  raw: Record<string, unknown>;
}

/** A layer as sources hand it out: bottom-up, with what is needed to open and verify it. */
export interface LayerRef {
  /** Digest of the blob as stored (compressed); for rootfs tars, of the file. */
  digest: string;
  size: number;
  mediaType: string;
  compression: Compression;
  /** sha256 of the uncompressed tar, from the config; undefined when no config exists (rootfs:). */
  diffId?: string;
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new OciError(`${where}: expected a JSON object`);
  return v as Record<string, unknown>;
}

export function parseJson(bytes: Uint8Array | string, where: string): Record<string, unknown> {
  const text = typeof bytes === "string" ? bytes : new TextDecoder().decode(bytes);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new OciError(`${where}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  return obj(v, where);
}

export function parseDescriptor(v: unknown, where: string): Descriptor {
  const o = obj(v, where);
  const digest = checkDigest(o.digest, where);
  const size = o.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) throw new OciError(`${where}: invalid size ${JSON.stringify(size)}`);
  const mediaType = typeof o.mediaType === "string" ? o.mediaType : "";
  const d: Descriptor = { mediaType, digest, size };
  if (Array.isArray(o.urls)) d.urls = o.urls.filter((u): u is string => typeof u === "string");
  if (o.annotations && typeof o.annotations === "object") d.annotations = o.annotations as Record<string, string>;
  if (o.platform && typeof o.platform === "object") {
    const p = o.platform as Record<string, unknown>;
    if (typeof p.os === "string" && typeof p.architecture === "string") {
      d.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === "string" && p.variant ? { variant: p.variant } : {}) };
    }
  }
  return d;
}

/**
 * Parses a manifest or index. `contentType` is the HTTP Content-Type or the descriptor's
 * media type; the document's own mediaType wins when present.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, where: string): IndexManifest | ImageManifest {
  const o = parseJson(bytes, where);
  const mediaType = (typeof o.mediaType === "string" && o.mediaType) || (contentType ?? "").split(";")[0]!.trim();
  if (mediaType === MT.dockerSchema1 || mediaType === MT.dockerSchema1Signed || o.schemaVersion === 1) {
    throw new OciError(
      `${where}: Docker schema 1 manifests are not supported (deprecated since 2017 and removed from Docker); ` +
        `push the image again with a current client to get a schema 2 or OCI manifest`,
    );
  }
  if (o.schemaVersion !== 2) throw new OciError(`${where}: unsupported schemaVersion ${JSON.stringify(o.schemaVersion)}`);
  const isIndex = mediaType === MT.ociIndex || mediaType === MT.dockerList || (!mediaType && Array.isArray(o.manifests));
  if (isIndex) {
    if (!Array.isArray(o.manifests)) throw new OciError(`${where}: index has no "manifests" array`);
    return { kind: "index", mediaType: mediaType || MT.ociIndex, manifests: o.manifests.map((m, i) => parseDescriptor(m, `${where} manifests[${i}]`)) };
  }
  const isManifest = mediaType === MT.ociManifest || mediaType === MT.dockerManifest || (!mediaType && o.config !== undefined);
  if (!isManifest) throw new OciError(`${where}: unsupported manifest media type "${mediaType}"`);
  if (!Array.isArray(o.layers)) throw new OciError(`${where}: manifest has no "layers" array`);
  const config = parseDescriptor(o.config, `${where} config`);
  const layers = o.layers.map((l, i) => parseDescriptor(l, `${where} layers[${i}]`));
  return { kind: "manifest", mediaType: mediaType || MT.ociManifest, config, layers };
}

/** Attestation and other non-image entries in an index (BuildKit writes unknown/unknown). */
function isAttestation(d: Descriptor): boolean {
  if (d.platform && d.platform.os === "unknown" && d.platform.architecture === "unknown") return true;
  return d.annotations?.["vnd.docker.reference.type"] === "attestation-manifest";
}

/** Picks the index entry for a platform, or throws listing what the index offers. */
export function selectPlatform(index: IndexManifest, wanted: Platform, where: string): Descriptor {
  const images = index.manifests.filter((d) => !isAttestation(d));
  const candidates = images.filter((d) => d.platform && platformMatches(wanted, d.platform));
  // Prefer an exact variant match over an entry without a variant.
  const exact = candidates.find((d) => (d.platform!.variant ?? "") === (wanted.variant ?? ""));
  const chosen = exact ?? candidates[0];
  if (chosen) return chosen;
  const offered = images.map((d) => (d.platform ? formatPlatform(d.platform) : "(no platform)"));
  throw new OciError(
    `${where}: no image for platform ${formatPlatform(wanted)}; the index offers ${offered.length ? offered.join(", ") : "nothing"}`,
  );
}

export function parseImageConfig(bytes: Uint8Array, where: string): ImageConfig {
  const o = parseJson(bytes, where);
  const rootfs = obj(o.rootfs, `${where} rootfs`);
  if (!Array.isArray(rootfs.diff_ids)) throw new OciError(`${where}: rootfs.diff_ids is not an array`);
  const diffIds = rootfs.diff_ids.map((d, i) => checkDigest(d, `${where} rootfs.diff_ids[${i}]`));
  const c: ImageConfig = {
    os: typeof o.os === "string" ? o.os : "linux",
    architecture: typeof o.architecture === "string" ? o.architecture : "",
    rootfs: { type: typeof rootfs.type === "string" ? rootfs.type : "layers", diff_ids: diffIds },
    raw: o,
  };
  if (typeof o.variant === "string" && o.variant) c.variant = o.variant;
  if (o.config && typeof o.config === "object") c.config = o.config as ImageConfig["config"];
  return c;
}

/** Joins manifest layers with config diff_ids, refusing layer types we cannot read. */
export function layerRefs(manifest: ImageManifest, config: ImageConfig, where: string): LayerRef[] {
  if (manifest.layers.length !== config.rootfs.diff_ids.length) {
    throw new OciError(`${where}: manifest lists ${manifest.layers.length} layers but the config has ${config.rootfs.diff_ids.length} diff_ids`);
  }
  return manifest.layers.map((l, i) => {
    const compression = layerCompression(l.mediaType);
    if (!compression) throw new OciError(`${where}: layer ${i} (${l.digest}) has unsupported media type "${l.mediaType}"`, { digest: l.digest });
    return { digest: l.digest, size: l.size, mediaType: l.mediaType, compression, diffId: config.rootfs.diff_ids[i] };
  });
}

/**
 * The digest of the OCI manifest an image of this config and these layers would have: a stable
 * identity for sources that carry no manifest of their own (docker-save archives, rootfs tars).
 */
export function synthesizedManifestDigest(configBytes: Uint8Array | string, layers: ReadonlyArray<{ mediaType: string; digest: string; size: number }>): string {
  const configSize = typeof configBytes === "string" ? Buffer.byteLength(configBytes) : configBytes.length;
  return sha256Digest(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: sha256Digest(configBytes), size: configSize },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
}
