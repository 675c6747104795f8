// src/oci: image references and sources -> digest-verified layers for one platform.
// Everything that turns "debian", "oci:DIR", "docker-archive:FILE" or "rootfs:FILE" into a
// ResolvedImage whose layers open as uncompressed tar streams. No ext4, no tar parsing here.
export type { ImageSource, ResolvedImage, ResolveOptions, ProgressEvent, ProgressListener } from "./source.ts";
export { parseSource, type SourceOptions } from "./parse-source.ts";
export { RegistrySource, type RegistrySourceOptions } from "./sources/registry.ts";
export { OciLayoutSource } from "./sources/layout.ts";
export { DockerArchiveSource } from "./sources/docker-archive.ts";
export { RootfsTarSource, type RootfsSourceOptions } from "./sources/rootfs.ts";
export type { ImageConfig, LayerRef, Descriptor } from "./manifest.ts";
export { parsePlatform, formatPlatform, hostPlatform, platformMatches, type Platform } from "./platform.ts";
export { parseReference, formatReference, isLoopbackHost, type Reference } from "./reference.ts";
export { BlobCache, defaultCacheDir, type PruneResult } from "./cache.ts";
export { dockerConfigCredentials, staticCredentials, type Credential, type CredentialLookup } from "./credentials.ts";
export { OciError, OciAuthError, OciNotFoundError, OciDigestMismatchError } from "./errors.ts";
export type { RetryPolicy } from "./http.ts";
export type { Compression } from "./media-types.ts";
export { prestartLayerWorker } from "./layer-stream.ts";
