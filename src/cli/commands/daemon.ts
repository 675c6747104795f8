// banger daemon run | start | stop | status | logs. `run` is the daemon itself, in the
// foreground (a systemd user unit, a container); `start` runs it detached and waits until it
// answers; every other command starts one the same way when none answers (daemon-spawn.ts).
import { parseArgs, option, parseDuration, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import { readEnvSettings } from "../env.ts";

const idleExit = { name: "idle-exit", value: true, description: "stop after this long with no client and no pull (30s, 15m, 2h); default never" };
const json = { name: "json", value: false, description: "print JSON on stdout instead of text" };

function noPositionals(argv: string[], specs: Parameters<typeof parseArgs>[1]): ReturnType<typeof parseArgs> {
  const args = parseArgs(argv, specs);
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  return args;
}

const runOptions = [idleExit];

export const daemonRunCommand: Command = {
  path: ["daemon", "run"],
  summary: "run the daemon in the foreground (for a systemd user unit or a container)",
  usage: "banger daemon run [--idle-exit DURATION]",
  options: runOptions,
  async run(argv) {
    const args = noPositionals(argv, runOptions);
    const idleText = option(args, "idle-exit");
    const idleExitMs = idleText === undefined ? null : parseDuration(idleText);
    const settings = readEnvSettings(process.env);
    const { startDaemon, DaemonRunningError, OWN_VERSION } = await import("../../daemon/index.ts");
    const { describeVersion } = await import("../../daemon/protocol.ts");
    const version = settings.daemonVersion ? { ...OWN_VERSION, version: settings.daemonVersion } : undefined;
    let daemon;
    try {
      daemon = await startDaemon({ env: process.env, buildSettings: { io: settings.io, timing: settings.timing }, version, idleExitMs });
    } catch (err) {
      if (err instanceof DaemonRunningError) {
        console.error(`banger daemon run: ${err.message}`);
        return 1;
      }
      throw err;
    }
    const d = daemon;
    console.error(`banger daemon ${describeVersion(d.version)} listening on ${d.paths.socketPath} (pid ${process.pid}); log: ${d.paths.logPath}`);
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      // The second one does not wait for running pulls to clean up (the next start reconciles).
      if (++signals > 1) process.exit(signal === "SIGTERM" ? 143 : 130);
      void d.stop(`${signal} received`);
    };
    for (const s of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(s, onSignal);
    // A fault in one request or pull must not take the others down: every route and every pull
    // catches its own errors; what still escapes (a stray promise) is logged, and the daemon
    // goes on. The store stays consistent whatever stops half-way (transactions, staging dirs).
    process.on("unhandledRejection", (err) => d.logger.error("unhandled rejection", { err }));
    process.on("uncaughtException", (err) => d.logger.error("uncaught exception", { err }));
    const reason = await d.stopped;
    // Everything is closed and the lock released: leave now. Idle worker threads of past pulls
    // (decompression, direct writes) would otherwise keep the process around for a while, and
    // whoever waits for it to be gone (`daemon stop`, a test's cleanup) with it.
    process.stderr.write(`banger daemon stopped: ${reason}\n`, () => process.exit(0));
    return 0;
  },
};

const startOptions = [idleExit];

export const daemonStartCommand: Command = {
  path: ["daemon", "start"],
  summary: "start the daemon in the background and wait until it answers",
  usage: "banger daemon start [--idle-exit DURATION]",
  options: startOptions,
  async run(argv) {
    const args = noPositionals(argv, startOptions);
    const idleText = option(args, "idle-exit");
    if (idleText !== undefined) parseDuration(idleText); // refused here, not by the daemon
    const [{ ensureDaemon }, { bangerPaths, describeVersion }] = await Promise.all([import("../daemon-spawn.ts"), import("../../daemon/client/index.ts")]);
    const paths = bangerPaths(process.env);
    const { health: h, started } = await ensureDaemon(paths, { idleExit: idleText ?? null });
    console.log(`banger daemon ${started ? "started" : "already running"}: pid ${h.pid}, version ${describeVersion(h)}, socket ${h.socket}, log ${h.log}`);
    return 0;
  },
};

export const daemonStopCommand: Command = {
  path: ["daemon", "stop"],
  summary: "stop the daemon (running pulls are interrupted and cleaned up)",
  usage: "banger daemon stop",
  options: [],
  async run(argv) {
    noPositionals(argv, []);
    const [{ DaemonClient, DaemonUnavailableError, bangerPaths, pidAlive }, { isLocked }, { readLockInfo }] = await Promise.all([
      import("../../daemon/client/index.ts"),
      import("../../io/flock.ts"),
      import("../../daemon/runtime-dir.ts"),
    ]);
    const paths = bangerPaths(process.env);
    let pid: number | null = null;
    try {
      pid = (await new DaemonClient({ socket: paths.socketPath }).shutdown()).pid;
    } catch (err) {
      if (!(err instanceof DaemonUnavailableError) && !(err instanceof Error && err.name === "TimeoutError")) throw err;
      // Nothing answers. A daemon that hangs still holds its lock, and says its pid there.
      const holder = isLocked(paths.lockPath) ? readLockInfo(paths.lockPath) : null;
      if (!holder) {
        console.log(`no banger daemon is running (socket ${paths.socketPath})`);
        return 0;
      }
      pid = holder.pid;
      process.kill(pid, "SIGTERM");
    }
    // It lets go of its lock last, once everything is cleaned up and closed, and exits then.
    const deadline = Date.now() + 20_000;
    while (isLocked(paths.lockPath) || pidAlive(pid)) {
      if (Date.now() > deadline) {
        console.error(`banger daemon stop: the daemon (pid ${pid}) is still running after 20 s; \`kill -9 ${pid}\` ends it (the next start cleans up)`);
        return 1;
      }
      await Bun.sleep(25);
    }
    console.log(`stopped banger daemon (pid ${pid})`);
    return 0;
  },
};

const statusOptions = [json];

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
}

export const daemonStatusCommand: Command = {
  path: ["daemon", "status"],
  summary: "say whether the daemon runs, and its pid, version, socket and log (exit 3 when it does not run)",
  usage: "banger daemon status [--json]",
  options: statusOptions,
  async run(argv) {
    const args = noPositionals(argv, statusOptions);
    const { DaemonClient, bangerPaths, describeVersion, OWN_VERSION } = await import("../../daemon/client/index.ts");
    const paths = bangerPaths(process.env);
    const h = await new DaemonClient({ socket: paths.socketPath }).health(2000).catch(() => null);
    if (args.flags.has("json")) {
      console.log(JSON.stringify(h ? { running: true, ...h } : { running: false, socket: paths.socketPath, log: paths.logPath }));
      return h ? 0 : 3;
    }
    if (!h) {
      console.log(`banger daemon: not running (socket ${paths.socketPath}); any image command starts it`);
      return 3;
    }
    const lines = [
      `banger daemon: running, pid ${h.pid}, version ${describeVersion(h)}${h.version === OWN_VERSION.version && h.protocol === OWN_VERSION.protocol ? "" : ` (this CLI is ${describeVersion(OWN_VERSION)})`}`,
      `socket:     ${h.socket}`,
      `started:    ${h.startedAt} (${duration(Date.now() - Date.parse(h.startedAt))} ago)`,
      `pulls:      ${h.operations} running`,
      `idle exit:  ${h.idleExitMs === null ? "never" : `after ${duration(h.idleExitMs)} without a client`}`,
      `log:        ${h.log}`,
    ];
    console.log(lines.join("\n"));
    return 0;
  },
};

const logsOptions = [
  { name: "follow", value: false, description: "keep printing what is logged from now on (also -f); Ctrl-C ends" },
  { name: "lines", value: true, description: "only the last N lines of what is there" },
  { ...json, description: "print the log's JSON lines as they are" },
];

export const daemonLogsCommand: Command = {
  path: ["daemon", "logs"],
  summary: "print the daemon's log ($XDG_STATE_HOME/banger/daemon.log)",
  usage: "banger daemon logs [-f|--follow] [--lines N] [--json]",
  options: logsOptions,
  async run(argv) {
    const args = noPositionals(
      argv.map((a) => (a === "-f" ? "--follow" : a)),
      logsOptions,
    );
    const linesText = option(args, "lines");
    const lines = linesText === undefined ? undefined : Number(linesText);
    if (lines !== undefined && (!Number.isSafeInteger(lines) || lines < 0)) throw new UsageError(`--lines needs a whole number, not "${linesText}"`);
    const [{ bangerPaths }, { formatLogLine, readLog }] = await Promise.all([import("../../daemon/client/index.ts"), import("../../daemon/log.ts")]);
    const paths = bangerPaths(process.env);
    const follow = args.flags.has("follow");
    const raw = args.flags.has("json");
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.on("SIGINT", onSignal);
    try {
      let any = false;
      await readLog(paths.logPath, { follow, lines, signal: ac.signal }, (line) => {
        any = true;
        console.log(raw ? line : formatLogLine(line));
      });
      if (!any && !follow) console.error(`nothing logged yet at ${paths.logPath}`);
      return 0;
    } finally {
      process.off("SIGINT", onSignal);
    }
  },
};

export const daemonCommands: Command[] = [daemonRunCommand, daemonStartCommand, daemonStopCommand, daemonStatusCommand, daemonLogsCommand];
