import { displayName } from "../tree/names.ts";

/**
 * A malformed or unsupported tar. `entry` is the member's path as a byte string (null when
 * the problem is not tied to one member); the message shows it in readable form.
 */
export class TarError extends Error {
  readonly entry: string | null;
  readonly reason: string;

  constructor(entry: string | null, reason: string) {
    super(entry === null ? `tar: ${reason}` : `tar entry "${displayName(entry)}": ${reason}`);
    this.name = "TarError";
    this.entry = entry;
    this.reason = reason;
  }
}
