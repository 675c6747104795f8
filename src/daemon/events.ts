// Progress of an image pull, from resolve to publish, for the CLI (and later the daemon's
// RPC stream) to render. Download events come from the source (src/oci); the rest from the build.
import type { ProgressEvent } from "../oci/index.ts";

export type PullPhase = "resolve" | "download" | "unpack" | "merge" | "write" | "publish";

export type PullEvent =
  | ProgressEvent
  /** A phase starts; `detail` is a short human text ("5 layers", "1.2 GiB image"). */
  | { type: "phase"; phase: PullPhase; detail?: string }
  /** Uncompressed bytes of layer `index` read so far (`done` once the layer is fully parsed). */
  | { type: "unpack"; index: number; bytes: number; done: boolean }
  /** Something the user should know that does not fail the pull ("the image has no /root: ..."). */
  | { type: "warning"; message: string };

export type PullListener = (e: PullEvent) => void;
