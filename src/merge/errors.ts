import { displayName } from "../tree/names.ts";

/**
 * A layer that cannot be merged. `layer` is the label given to beginLayer (e.g.
 * "layer 2/5 (sha256:1234abcd…)"); `entry` is the member's path as written in the tar, a byte
 * string (null when the problem is not tied to one member). The message names both, readably.
 */
export class MergeError extends Error {
  readonly layer: string;
  readonly entry: string | null;
  readonly reason: string;

  constructor(layer: string, entry: string | null, reason: string) {
    super(entry === null ? `${layer}: ${reason}` : `${layer}: "${displayName(entry)}": ${reason}`);
    this.name = "MergeError";
    this.layer = layer;
    this.entry = entry;
    this.reason = reason;
  }
}
