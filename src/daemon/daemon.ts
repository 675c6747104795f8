// The daemon's life, in order:
//   1. the runtime dir (0700, ours) and the lock in it: flock'ed for the daemon's whole life, so
//      a second daemon on the same socket refuses to start, and a daemon killed with SIGKILL
//      leaves a lock anyone can take (the kernel dropped it);
//   2. the log ($XDG_STATE_HOME/banger/daemon.log), then the services, composed once;
//   3. reconcile: staging dirs of dead pulls, rows without an image, images without a row go,
//      and the log says which; only then is the socket served, so no client sees a store
//      half-reconciled;
//   4. the socket: a socket file left by a dead daemon is stale (its owner would hold the lock)
//      and is replaced; then 0600;
//   5. serve, until stop(): asked over the socket, a signal (the CLI's `daemon run` installs
//      the handlers), idle for `idleExitMs`, or the socket file gone or replaced (its runtime
//      dir was removed: a test's temp dir, a logout);
//   6. stop: running pulls are aborted and given `stopGraceMs` to clean up, then the server,
//      the store, the socket (if still ours) and the lock go.
import fs from "node:fs";
import { FileLock } from "../io/flock.ts";
import type { BuildSettings } from "./build-image.ts";
import { createServices, type Services } from "./compose.ts";
import { JsonLinesLogger, type Logger } from "./log.ts";
import { bangerPaths, type BangerPaths, type Env } from "./paths.ts";
import { OWN_VERSION, describeVersion, type VersionInfo } from "./protocol.ts";
import { prepareRuntimeDir, readLockInfo, type LockInfo } from "./runtime-dir.ts";
import { DaemonServer } from "./server.ts";

export interface DaemonOptions {
  /** The environment the daemon runs in: XDG dirs, Docker credentials. */
  env: Env;
  /** I/O settings and timing for every build (resolved from the environment by the caller). */
  buildSettings?: BuildSettings;
  /** What the daemon says it is; tests pose as another release with it. */
  version?: VersionInfo;
  /** Stop after this long with no request and no running pull; null: never. */
  idleExitMs?: number | null;
  /** How often the socket file is checked (default 1 s). */
  watchMs?: number;
  /** The log rotates at this size (default 10 MiB). */
  logMaxBytes?: number;
  /** How long stopping waits for aborted pulls to clean up (default 10 s). */
  stopGraceMs?: number;
}

export class DaemonRunningError extends Error {
  override name = "DaemonRunningError";
}

export interface RunningDaemon {
  paths: BangerPaths;
  version: VersionInfo;
  /** The daemon's log (for what its host process sees: a stray error, a signal). */
  logger: Logger;
  /** Resolves with the reason once the daemon has stopped and let go of everything. */
  stopped: Promise<string>;
  stop(reason: string): Promise<string>;
}

function runningMessage(paths: BangerPaths, holder: LockInfo | null): string {
  const who = holder ? ` (pid ${holder.pid}, version ${describeVersion(holder)})` : "";
  return `a banger daemon is already running${who} on ${paths.socketPath}; \`banger daemon stop\` stops it`;
}

export async function startDaemon(o: DaemonOptions): Promise<RunningDaemon> {
  const paths = bangerPaths(o.env);
  const version = o.version ?? OWN_VERSION;
  prepareRuntimeDir(paths);
  const lock = FileLock.tryAcquire(paths.lockPath);
  if (!lock) throw new DaemonRunningError(runningMessage(paths, readLockInfo(paths.lockPath)));
  const startedAt = new Date();
  let logger: JsonLinesLogger | undefined;
  let services: Services | undefined;
  try {
    const info: LockInfo = { pid: process.pid, ...version, socket: paths.socketPath, startedAt: startedAt.toISOString() };
    lock.describe(JSON.stringify(info) + "\n");
    fs.mkdirSync(paths.stateDir, { recursive: true });
    logger = new JsonLinesLogger(paths.logPath, { maxBytes: o.logMaxBytes });
    logger.info("daemon starting", { pid: process.pid, version: version.version, protocol: version.protocol, socket: paths.socketPath, idleExitMs: o.idleExitMs ?? null });
    services = createServices(o.env, { buildSettings: o.buildSettings, logger, warmLayerWorker: true });
    const report = await services.images.reconcile();
    logger.info("reconciled the store", { stagingRemoved: report.staging, orphanDirsRemoved: report.orphanDirs, rowsForgotten: report.rowsWithoutDir });
    return new Daemon({ o, paths, version, lock, logger, services, startedAt });
  } catch (err) {
    logger?.error("daemon failed to start", { err });
    services?.close();
    logger?.close();
    lock.release();
    throw err;
  }
}

interface Parts {
  o: DaemonOptions;
  paths: BangerPaths;
  version: VersionInfo;
  lock: FileLock;
  logger: JsonLinesLogger;
  services: Services;
  startedAt: Date;
}

/** Listening on the socket until stopped; what stops it, and how. */
class Daemon implements RunningDaemon {
  readonly paths: BangerPaths;
  readonly version: VersionInfo;
  readonly logger: JsonLinesLogger;
  readonly stopped: Promise<string>;
  private resolveStopped!: (reason: string) => void;
  private stopping: Promise<string> | undefined;
  private readonly server: DaemonServer;
  private readonly http: ReturnType<typeof Bun.serve>;
  private readonly socketIno: number;
  private readonly timers: ReturnType<typeof setInterval>[] = [];

  constructor(private readonly p: Parts) {
    this.paths = p.paths;
    this.version = p.version;
    this.logger = p.logger;
    this.stopped = new Promise<string>((r) => (this.resolveStopped = r));
    const socket = p.paths.socketPath;
    if (fs.existsSync(socket)) {
      // We hold the lock, so the daemon that made this socket is gone.
      fs.rmSync(socket, { force: true });
      p.logger.warn("replaced a stale socket left by a daemon that is gone", { socket });
    }
    const idleExitMs = p.o.idleExitMs ?? null;
    this.server = new DaemonServer({ services: p.services, version: p.version, socket, startedAt: p.startedAt, idleExitMs, requestStop: (r) => void this.stop(r) });
    // idleTimeout 0: a pull's stream may be quiet for long (a slow registry, a big plan), and
    // Bun's default (10 s) closes such a connection mid-pull. Bun honours it on unix sockets too
    // (measured: a 12 s silence is cut at 10 s without it), but its types offer it for TCP
    // servers only, hence the cast.
    const options = { unix: socket, fetch: this.server.fetch, idleTimeout: 0 };
    this.http = Bun.serve(options as unknown as { unix: string; fetch: DaemonServer["fetch"] });
    fs.chmodSync(socket, 0o600);
    this.socketIno = fs.statSync(socket).ino;
    p.logger.info("daemon listening", { socket, pid: process.pid });
    this.watch(idleExitMs);
  }

  private socketIsOurs(): boolean {
    return fs.statSync(this.paths.socketPath, { throwIfNoEntry: false })?.ino === this.socketIno;
  }

  /** The socket file gone or replaced (its runtime dir removed), or nothing to do for too long: stop. */
  private watch(idleExitMs: number | null): void {
    this.timers.push(
      setInterval(() => {
        if (!this.socketIsOurs()) void this.stop("its socket was removed or replaced");
      }, this.p.o.watchMs ?? 1000),
    );
    if (idleExitMs === null) return;
    const every = Math.max(50, Math.min(idleExitMs / 4, 30_000));
    this.timers.push(
      setInterval(() => {
        if (this.server.idleMs() >= idleExitMs) void this.stop(`idle for ${Math.round(idleExitMs / 1000)} s`);
      }, every),
    );
  }

  stop(reason: string): Promise<string> {
    this.stopping ??= this.shutdown(reason);
    return this.stopping;
  }

  /** Pulls aborted and given time to clean up, then the server, socket, store, log and lock, in that order. */
  private async shutdown(reason: string): Promise<string> {
    const { logger, server } = this;
    for (const t of this.timers) clearInterval(t);
    logger.info("daemon stopping", { reason, operations: server.operations.count });
    server.beginStop(reason);
    if (!(await server.operations.settled(this.p.o.stopGraceMs ?? 10_000))) logger.warn("pulls were still cleaning up when the daemon stopped", { operations: server.operations.count });
    // A moment for the last lines of the aborted pulls' streams to reach their clients.
    await Promise.race([this.http.stop(false), Bun.sleep(1000)]);
    await this.http.stop(true);
    if (this.socketIsOurs()) fs.rmSync(this.paths.socketPath, { force: true });
    this.p.services.close();
    logger.info("daemon stopped", { reason });
    logger.close();
    this.p.lock.release();
    this.resolveStopped(reason);
    return reason;
  }
}
