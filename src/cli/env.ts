// The settings banger takes from the environment, read in one place. Library code never reads
// the environment: each command calls readEnvSettings(process.env) once and passes the result
// down as options (IoOptions, the writer's timing, a timestamp). The XDG directories are the
// other environment input; createServices takes those from the environment object it is given.
// The daemon reads its settings once, at its start-up (`banger daemon run`): a daemon started
// on demand has those of the command that started it. Per-request values (SOURCE_DATE_EPOCH,
// the working directory) travel with each request instead.
import type { IoOptions } from "../io/options.ts";
import { UsageError } from "./args.ts";

export type Environment = Record<string, string | undefined>;

export interface EnvSettings {
  /** BANGER_NO_MMAP, BANGER_NO_DIRECT_IO, BANGER_NO_COPY_FILE_RANGE, BANGER_NO_TMPFILE: any non-empty value turns that way off. */
  io: IoOptions;
  /** BANGER_TIMING: print each phase's wall and CPU milliseconds on stderr (see bench/). */
  timing: ((line: string) => void) | undefined;
  /**
   * SOURCE_DATE_EPOCH (reproducible builds) as given, for the superblock times. Commands differ
   * in what they accept: strictSourceDateEpoch, lenientSourceDateEpoch.
   */
  sourceDateEpoch: string | undefined;
  /** NO_COLOR (https://no-color.org): any non-empty value keeps escape codes out even on a terminal. */
  noColor: boolean;
  /** BANGER_KERNEL_CATALOG: a kernel catalog file in place of the embedded one (`kernel pull`). */
  kernelCatalogFile: string | undefined;
  /**
   * BANGER_NO_DAEMON: run the image services in this process instead of asking the daemon
   * (tests, one-shot CI jobs, a machine where no daemon should linger).
   */
  noDaemon: boolean;
  /**
   * BANGER_DAEMON_VERSION: the version a daemon started from this environment says it is. For
   * tests of a CLI meeting a daemon of another release; never needed otherwise.
   */
  daemonVersion: string | undefined;
}

/** Reads every setting once; `env` is process.env in the CLI (an object in tests). */
export function readEnvSettings(env: Environment): EnvSettings {
  // Only the ways turned off are set: the libraries' defaults are the fast ways.
  const io: IoOptions = {};
  if (env.BANGER_NO_MMAP) io.mmap = false;
  if (env.BANGER_NO_DIRECT_IO) io.directIo = false;
  if (env.BANGER_NO_COPY_FILE_RANGE) io.copyFileRange = false;
  if (env.BANGER_NO_TMPFILE) io.tmpfile = false;
  return {
    io,
    timing: env.BANGER_TIMING ? (line) => console.error(line) : undefined,
    sourceDateEpoch: env.SOURCE_DATE_EPOCH,
    noColor: Boolean(env.NO_COLOR),
    kernelCatalogFile: env.BANGER_KERNEL_CATALOG || undefined,
    noDaemon: !!env.BANGER_NO_DAEMON,
    daemonVersion: env.BANGER_DAEMON_VERSION || undefined,
  };
}

/** SOURCE_DATE_EPOCH as `image pull` takes it: a whole number of seconds; anything else is refused. */
export function strictSourceDateEpoch(text: string | undefined): number | undefined {
  if (text === undefined || text === "") return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`SOURCE_DATE_EPOCH "${text}" is not a whole number of seconds`);
  return Number(text);
}

/**
 * SOURCE_DATE_EPOCH as `internal make-ext4` has always taken it: any value that reads as a
 * positive whole number, other values ignored (the times are then 0, as without it).
 */
export function lenientSourceDateEpoch(text: string | undefined): number | undefined {
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}
