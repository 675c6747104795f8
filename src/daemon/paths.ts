// Where banger keeps its files, after the XDG base directory spec. Computed from an env object
// handed in (the CLI passes process.env; tests pass temp dirs), never read from the process here.
import path from "node:path";

// node:os and node:fs only where a fallback needs them: every command computes these paths,
// and node:fs alone costs a command ~6 ms of start-up.
const os = (): typeof import("node:os") => require("node:os");
const existsSync = (p: string): boolean => (require("node:fs") as typeof import("node:fs")).existsSync(p);

export type Env = Record<string, string | undefined>;

export interface BangerPaths {
  /** $XDG_STATE_HOME/banger: the store database, the images and the kernels. */
  stateDir: string;
  /** <state>/images: one directory per published image, `<id>.staging` while one is built. */
  imagesDir: string;
  /** <state>/kernels: one directory per registered or pulled kernel, `<id>.staging` while one is made. */
  kernelsDir: string;
  /** <state>/banger.db */
  dbPath: string;
  /** $XDG_CACHE_HOME/banger */
  cacheDir: string;
  /** <cache>/oci: the blob cache (an OCI image layout; see src/oci/cache.ts). */
  blobCacheDir: string;
  /** <cache>/kernels: kernel bundles while they download (`<sha256>.tar.zst.partial`, resumable). */
  kernelDownloadDir: string;
  /** $XDG_CONFIG_HOME/banger */
  configDir: string;
  /** $XDG_RUNTIME_DIR/banger (sockets, pid files); a private temp dir when there is no runtime dir. */
  runtimeDir: string;
  /** <runtime>/banger.sock: the daemon's RPC socket (0600). */
  socketPath: string;
  /** <runtime>/daemon.lock: flock'ed by the daemon for its whole life; says who holds it. */
  lockPath: string;
  /** <runtime>/start.lock: held by a command while it starts a daemon, so that one starts. */
  startLockPath: string;
  /** <runtime>/daemon.out: what a started daemon prints outside its log (crashes before the log opens). */
  daemonOutPath: string;
  /** <state>/daemon.log: the daemon's log, JSON lines, rotated by size (daemon.log.1, .2, ...). */
  logPath: string;
}

/** The spec says relative values are invalid and must be ignored. */
function xdg(env: Env, name: string): string | undefined {
  const v = env[name];
  return v && path.isAbsolute(v) ? v : undefined;
}

function uid(): number | undefined {
  return typeof process.getuid === "function" ? process.getuid() : undefined;
}

export function bangerPaths(env: Env): BangerPaths {
  const home = env.HOME && path.isAbsolute(env.HOME) ? env.HOME : os().homedir();
  const state = path.join(xdg(env, "XDG_STATE_HOME") ?? path.join(home, ".local", "state"), "banger");
  const cache = path.join(xdg(env, "XDG_CACHE_HOME") ?? path.join(home, ".cache"), "banger");
  const config = path.join(xdg(env, "XDG_CONFIG_HOME") ?? path.join(home, ".config"), "banger");
  // Without XDG_RUNTIME_DIR (cron, su, containers) fall back to a per-user dir under the temp
  // dir: the uid in the name keeps users apart, and the daemon creates it 0700.
  const id = uid();
  const systemdRuntime = id === undefined ? undefined : `/run/user/${id}`;
  const runtimeBase = xdg(env, "XDG_RUNTIME_DIR") ?? (systemdRuntime && existsSync(systemdRuntime) ? systemdRuntime : undefined);
  const runtime = runtimeBase ? path.join(runtimeBase, "banger") : path.join(os().tmpdir(), `banger-${id ?? "user"}`);
  return {
    stateDir: state,
    imagesDir: path.join(state, "images"),
    kernelsDir: path.join(state, "kernels"),
    dbPath: path.join(state, "banger.db"),
    cacheDir: cache,
    blobCacheDir: path.join(cache, "oci"),
    kernelDownloadDir: path.join(cache, "kernels"),
    configDir: config,
    runtimeDir: runtime,
    socketPath: path.join(runtime, "banger.sock"),
    lockPath: path.join(runtime, "daemon.lock"),
    startLockPath: path.join(runtime, "start.lock"),
    daemonOutPath: path.join(runtime, "daemon.out"),
    logPath: path.join(state, "daemon.log"),
  };
}
