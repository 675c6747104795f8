// A bundle stored in an OCI registry as an artifact: an image manifest whose artifactType and
// single layer say "banger bundle", with the empty config the OCI image spec (1.1) defines for
// artifacts. Any registry that keeps OCI manifests keeps it; `image pull` of its reference
// takes the bundle path (no layer merge, no ext4 write).
export const BUNDLE_ARTIFACT_TYPE = "application/vnd.banger.bundle.v1";
export const BUNDLE_LAYER_MEDIA_TYPE = "application/vnd.banger.bundle.v1.tar+zstd";
export const EMPTY_CONFIG_MEDIA_TYPE = "application/vnd.oci.empty.v1+json";
export const EMPTY_CONFIG = new TextEncoder().encode("{}");
export const OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json";

export interface ArtifactManifest {
  bytes: Uint8Array;
  mediaType: string;
}

/** The artifact manifest for a bundle blob; `name` etc. also ride along as annotations. */
export function bundleArtifactManifest(bundle: { digest: string; size: number }, configDigest: string, annotations: Record<string, string>): ArtifactManifest {
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    artifactType: BUNDLE_ARTIFACT_TYPE,
    config: { mediaType: EMPTY_CONFIG_MEDIA_TYPE, digest: configDigest, size: EMPTY_CONFIG.length },
    layers: [{ mediaType: BUNDLE_LAYER_MEDIA_TYPE, digest: bundle.digest, size: bundle.size }],
    annotations,
  };
  return { bytes: new TextEncoder().encode(JSON.stringify(manifest)), mediaType: OCI_MANIFEST_MEDIA_TYPE };
}

/** The bundle layer of a manifest, when the manifest is a banger bundle artifact. */
export function bundleLayerOf(manifest: unknown): { digest: string; size: number } | null {
  const m = manifest as { artifactType?: unknown; config?: { mediaType?: unknown }; layers?: { mediaType?: unknown; digest?: unknown; size?: unknown }[] } | null;
  const isBundle = m?.artifactType === BUNDLE_ARTIFACT_TYPE || m?.config?.mediaType === BUNDLE_ARTIFACT_TYPE;
  if (!isBundle || !Array.isArray(m?.layers) || m.layers.length !== 1) return null;
  const l = m.layers[0]!;
  if (l.mediaType !== BUNDLE_LAYER_MEDIA_TYPE || typeof l.digest !== "string" || typeof l.size !== "number") return null;
  return { digest: l.digest, size: l.size };
}
