import type { OptionSpec } from "./args.ts";

/** One leaf of the command tree, e.g. `internal make-ext4`. */
export interface Command {
  /** Words after `banger`, e.g. ["internal", "make-ext4"]. */
  path: string[];
  summary: string;
  usage: string;
  options: OptionSpec[];
  /** Returns the process exit code. */
  run(argv: string[]): Promise<number>;
}
