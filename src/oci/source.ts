// The one interface every image source implements (registry, OCI layout directory,
// `docker save` archive, plain rootfs tar): resolve for a platform, then open layers as
// uncompressed, verified tar byte streams. Everything downstream is source-agnostic.
import type { DiffIdMemo } from "./diffid-memo.ts";
import type { ImageConfig, LayerRef } from "./manifest.ts";
import type { Platform } from "./platform.ts";

/** Progress of a resolve, for the CLI to render (bytes done/total per layer). */
export type ProgressEvent =
  | { type: "resolved"; source: string; manifestDigest: string; platform: Platform; layers: { digest: string; size: number }[] }
  | {
      type: "layer";
      index: number;
      digest: string;
      /** Compressed bytes present in the cache so far, and the blob's size. */
      bytesDone: number;
      bytesTotal: number;
      state: "cached" | "downloading" | "resuming" | "retrying" | "done";
      /** Why a retry happens (state "retrying"). */
      reason?: string;
    };

export type ProgressListener = (e: ProgressEvent) => void;

/** How sources read their layers (every source that has layer blobs takes these). */
export interface LayerReadOptions {
  /** Blob -> diff_id facts already proven (the blob cache's), consulted and added to. */
  diffIds?: DiffIdMemo;
}

export interface ResolveOptions {
  /** Platform to select; undefined means the host's, without refusing single-platform images of another. */
  platform?: Platform;
  progress?: ProgressListener;
  /**
   * Return as soon as the manifest and config are known, with the layers still downloading:
   * openLayer() then follows each download as it proceeds (its stream ends only once the blob
   * is verified), so conversion overlaps the download. Sources with local layers ignore it.
   */
  followDownloads?: boolean;
}

export interface ResolvedImage {
  /** The source as the user wrote it, normalized, for messages. */
  source: string;
  /** Digest of the platform manifest (synthesized for docker-archive and rootfs sources). */
  manifestDigest: string;
  platform: Platform;
  config: ImageConfig;
  /** Bottom-up. */
  layers: LayerRef[];
  /**
   * Uncompressed tar bytes of layer i. The blob digest and diff_id are checked while reading;
   * a mismatch errors the stream at its end. May be opened any number of times.
   */
  openLayer(i: number): ReadableStream<Uint8Array>;
  /** Removes temporary files (a spooled stdin); safe to call more than once. */
  dispose(): Promise<void>;
  /**
   * Set when the reference is a banger bundle artifact (src/oci/bundle-artifact.ts) instead of
   * an image: the verified bundle blob, for the bundle install path; `layers` is then empty.
   */
  bundle?: { digest: string; size: number; path: string };
}

export interface ImageSource {
  describe(): string;
  resolve(opts?: ResolveOptions): Promise<ResolvedImage>;
}
