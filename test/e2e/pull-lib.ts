// Shared by the `banger image pull` e2e tests: runs the real CLI (`bun src/cli/main.ts image ...`)
// as a child process with its own XDG dirs, HOME, TMPDIR and working directory (all fresh temp
// dirs), and looks at what it left in the store and the blob cache. The commands go the default
// way, through a daemon each environment's first command starts (on the environment's own
// runtime dir); stopDaemons() in afterAll stops them all.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { DaemonClient, bangerPaths } from "../../src/daemon/client/index.ts";
import { readLockInfo } from "../../src/daemon/runtime-dir.ts";
import { isLocked } from "../../src/io/flock.ts";
import { pidAlive } from "../../src/io/process.ts";
import { REPO_ROOT } from "./lib.ts";

const MAIN = join(REPO_ROOT, "src/cli/main.ts");

export interface PullEnv {
  root: string;
  state: string;
  cache: string;
  config: string;
  runtime: string;
  home: string;
  tmp: string;
  cwd: string;
  env: Record<string, string>;
  /** $XDG_STATE_HOME/banger/images */
  imagesDir: string;
  /** $XDG_CACHE_HOME/banger/oci */
  blobCache: string;
}

let n = 0;
const made: PullEnv[] = [];

/**
 * Stops the daemon of every environment made here (a daemon outliving the test run is a bug;
 * one forgotten would also stop itself once its temp dir, and so its socket, is removed).
 */
export async function stopDaemons(): Promise<void> {
  await Promise.all(made.splice(0).map((e) => stopDaemon(e)));
}

/** Asks the environment's daemon, if one runs, to stop, and waits until its process is gone. */
export async function stopDaemon(e: PullEnv): Promise<void> {
  const paths = bangerPaths(e.env);
  if (!isLocked(paths.lockPath)) return;
  const pid = readLockInfo(paths.lockPath)?.pid;
  await new DaemonClient({ socket: paths.socketPath }).shutdown().catch(() => {});
  const deadline = Date.now() + 20_000;
  while ((isLocked(paths.lockPath) || (pid !== undefined && pidAlive(pid))) && Date.now() < deadline) await Bun.sleep(25);
}

/** Fresh XDG dirs (and HOME, TMPDIR, cwd) under `base`. `state` may be given (a tmpfs mount). */
export function pullEnv(base: string, opts: { state?: string; cache?: string; config?: string } = {}): PullEnv {
  const root = join(base, `env-${n++}`);
  const d = (name: string) => {
    const p = join(root, name);
    mkdirSync(p, { recursive: true });
    return p;
  };
  const state = opts.state ?? d("state");
  const cache = opts.cache ?? d("cache");
  const config = opts.config ?? d("config");
  const runtime = d("runtime");
  const home = d("home");
  const tmp = d("tmp");
  const cwd = d("cwd");
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    XDG_STATE_HOME: state,
    XDG_CACHE_HOME: cache,
    XDG_CONFIG_HOME: config,
    XDG_RUNTIME_DIR: runtime,
    HOME: home,
    TMPDIR: tmp,
    LANG: "C.UTF-8",
  };
  const e: PullEnv = { root, state, cache, config, runtime, home, tmp, cwd, env, imagesDir: join(state, "banger", "images"), blobCache: join(cache, "banger", "oci") };
  made.push(e);
  return e;
}

export interface CliRun {
  exitCode: number;
  signalCode: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** Output of a run, for assertion messages. */
export function ctx(r: CliRun, what = "banger"): string {
  return `${what}: exit ${r.exitCode}${r.signalCode ? ` (${r.signalCode})` : ""}${r.timedOut ? " TIMED OUT (killed)" : ""}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Starts `banger <args>`; the caller may signal it. Killed (SIGKILL) after timeoutMs. */
export function startBanger(args: string[], e: PullEnv, timeoutMs = 60_000): { proc: ReturnType<typeof Bun.spawn>; done: Promise<CliRun> } {
  const t0 = performance.now();
  const proc = Bun.spawn([process.execPath, MAIN, ...args], { cwd: e.cwd, env: e.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  const done = (async () => {
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout as ReadableStream).text(), new Response(proc.stderr as ReadableStream).text(), proc.exited]);
    clearTimeout(timer);
    return { exitCode, signalCode: proc.signalCode === null ? null : String(proc.signalCode), stdout, stderr, timedOut, ms: performance.now() - t0 };
  })();
  return { proc, done };
}

export function banger(args: string[], e: PullEnv, timeoutMs?: number): Promise<CliRun> {
  return startBanger(args, e, timeoutMs).done;
}

export interface ImageRecord {
  id: string;
  name: string;
  source: string;
  digest: string;
  platform: string;
  rootfsPath: string;
  sizeBytes: number;
  createdAt: string;
  env: string[];
  cmd: string[] | null;
  entrypoint: string[] | null;
  workingDir: string;
  user: string;
  init: "systemd" | "banger-init" | null;
  kernelCmdline: string | null;
  injected: string[];
  workSeedPath: string | null;
  kernelRef: string | null;
}

/** `banger image pull <source> --json ...`, which must succeed; returns the record. */
export async function pullOk(source: string, e: PullEnv, extra: string[] = [], timeoutMs?: number): Promise<{ record: ImageRecord; run: CliRun }> {
  const r = await banger(["image", "pull", source, "--json", ...extra], e, timeoutMs);
  if (r.exitCode !== 0 || r.timedOut) throw new Error(`image pull ${source} failed (the pull pipeline and store must be in place for this test)\n${ctx(r)}`);
  let record: ImageRecord;
  try {
    record = JSON.parse(r.stdout) as ImageRecord;
  } catch {
    throw new Error(`image pull --json: stdout is not one JSON object\n${ctx(r)}`);
  }
  return { record, run: r };
}

/** `banger image list --json`, which must succeed and print an array. */
export async function listImages(e: PullEnv): Promise<ImageRecord[]> {
  const r = await banger(["image", "list", "--json"], e, 30_000);
  if (r.exitCode !== 0) throw new Error(`image list --json failed\n${ctx(r)}`);
  const v = JSON.parse(r.stdout) as unknown;
  if (!Array.isArray(v)) throw new Error(`image list --json: not an array\n${ctx(r)}`);
  return v as ImageRecord[];
}

/** Every path under dir (relative), with type and size; mtimes of files too. */
export function treeListing(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (p: string) => {
    for (const name of readdirSync(p).sort()) {
      const abs = join(p, name);
      const st = statSync(abs, { throwIfNoEntry: false });
      const rel = relative(dir, abs);
      if (!st) out.push(`${rel} (dangling)`);
      else if (st.isDirectory()) {
        out.push(`${rel}/`);
        walk(abs);
      } else out.push(`${rel} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

/** Paths (relative to root) of `*.staging` entries anywhere under root. */
export function stagingDirs(root: string): string[] {
  return treeListing(root)
    .map((l) => l.split(" ")[0]!.replace(/\/$/, ""))
    .filter((p) => p.endsWith(".staging"));
}

/** Blob files in the cache whose bytes do not hash to their name (must be none). */
export function unverifiedBlobs(blobCache: string): string[] {
  const dir = join(blobCache, "blobs", "sha256");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((name) => new Bun.CryptoHasher("sha256").update(readFileSync(join(dir, name))).digest("hex") !== name);
}

/** Blob files in the cache (names). */
export function cachedBlobs(blobCache: string): string[] {
  const dir = join(blobCache, "blobs", "sha256");
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}
