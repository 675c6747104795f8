// Resolved image → ext4 root filesystem file: layers unpacked (decompressed, parsed), merged
// bottom-up, planned and written. Placeholder signature; the implementation lands next.
import type { ResolvedImage } from "../oci/index.ts";
import type { PullListener } from "./events.ts";

export interface BuildRequest {
  image: ResolvedImage;
  /** The ext4 file to create (inside the image's staging directory); nothing is left there on failure. */
  out: string;
  /** Image size in bytes; default max(1 GiB, used x 1.25). */
  sizeBytes?: number;
  /** Superblock times (seconds); the CLI resolves SOURCE_DATE_EPOCH into this. */
  timestamp?: number;
  signal?: AbortSignal;
  progress?: PullListener;
}

export interface BuildResult {
  sizeBytes: number;
  blocksUsed: number;
  inodesUsed: number;
  uuid: string;
}

export type RootfsBuilderFn = (req: BuildRequest) => Promise<BuildResult>;

export async function buildRootfs(req: BuildRequest): Promise<BuildResult> {
  throw new Error(`building ${req.out}: not implemented yet`);
}
