// Starting a daemon for a command that found none (daemon-start.ts), or for `banger daemon
// start`. Its own module, imported only then: a command that finds its daemon running loads
// none of this (node:child_process, node:fs and the flock binding cost ~10 ms of start-up).
//
// Starting a daemon: a command that finds no daemon takes <runtime>/start.lock (flock), asks
// once more (another command may have started one meanwhile), and if still nothing answers
// spawns `banger daemon run` detached (its own session: a Ctrl-C in this terminal does not
// reach it) with its output in <runtime>/daemon.out, then waits until it answers. So a hundred
// commands started at once start one daemon; the others wait for the lock and find it running.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { FileLock } from "../io/flock.ts";
import { DaemonClient, type BangerPaths, type HealthInfo } from "../daemon/client/index.ts";
import { prepareRuntimeDir } from "../daemon/runtime-dir.ts";

/** How long a command waits for a daemon it started (or another command is starting) to answer. */
const START_TIMEOUT_MS = 20_000;

export class DaemonStartError extends Error {
  override name = "DaemonStartError";
}

/** The script this command was started from: the daemon is started the same way (bundle or sources). */
function cliEntry(): string {
  if (/[\\/]cli[\\/](launch|main)\.ts$/.test(Bun.main)) return Bun.main;
  return path.join(import.meta.dir, "main.ts");
}

function tail(file: string, lines = 5): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join(" / ");
  } catch {
    return "";
  }
}

/**
 * Makes sure a daemon answers on `paths.socketPath`, starting one if needed. `started` says
 * whether this call started it.
 */
export async function ensureDaemon(paths: BangerPaths, opts: { idleExit: string | null; env?: Record<string, string | undefined> }): Promise<{ health: HealthInfo; started: boolean }> {
  const client = new DaemonClient({ socket: paths.socketPath });
  prepareRuntimeDir(paths);
  const lock = await FileLock.acquire(paths.startLockPath, { timeoutMs: START_TIMEOUT_MS });
  if (!lock) throw new DaemonStartError(`another banger command has been starting the daemon for ${START_TIMEOUT_MS / 1000} s (${paths.startLockPath} is held); \`banger daemon status\` says more`);
  try {
    const up = await client.health(2000).catch(() => null);
    if (up) return { health: up, started: false };
    const child = spawnDaemon(paths, opts);
    return { health: await answered(client, child, paths), started: true };
  } finally {
    lock.release();
  }
}

interface Child {
  pid: number | undefined;
  exit: { code: number | null; signal: string | null } | null;
}

function spawnDaemon(paths: BangerPaths, opts: { idleExit: string | null; env?: Record<string, string | undefined> }): Child {
  const out = fs.openSync(paths.daemonOutPath, "a", 0o600);
  try {
    const args = [cliEntry(), "daemon", "run", ...(opts.idleExit ? ["--idle-exit", opts.idleExit] : [])];
    const proc = spawn(process.execPath, args, { detached: true, stdio: ["ignore", out, out], env: opts.env ?? process.env, cwd: "/" });
    const child: Child = { pid: proc.pid, exit: null };
    proc.on("exit", (code, signal) => (child.exit = { code, signal }));
    proc.unref();
    return child;
  } finally {
    fs.closeSync(out);
  }
}

/** Polls until the daemon answers; fails early with its output when it exits first. */
async function answered(client: DaemonClient, child: Child, paths: BangerPaths): Promise<HealthInfo> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let exitedAt: number | null = null;
  for (;;) {
    const h = await client.health(1000).catch(() => null);
    if (h) return h;
    const now = Date.now();
    // It may have exited because another daemon holds the lock and is about to answer: a moment more.
    if (child.exit && (exitedAt ??= now) < now - 1000) {
      const how = child.exit.signal ? `was killed by ${child.exit.signal}` : `exited with code ${child.exit.code}`;
      const said = tail(paths.daemonOutPath);
      throw new DaemonStartError(`the banger daemon (pid ${child.pid}) ${how} before it answered${said ? `: ${said}` : ""}; see ${paths.daemonOutPath} and ${paths.logPath}`);
    }
    if (now > deadline) throw new DaemonStartError(`the banger daemon (pid ${child.pid}) did not answer on ${paths.socketPath} within ${START_TIMEOUT_MS / 1000} s; see ${paths.logPath}`);
    await Bun.sleep(25);
  }
}
