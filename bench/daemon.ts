// The daemon cases: `image list` end to end through a running daemon (200 calls one after the
// other, and 100 at once) against the same in-process (BANGER_NO_DAEMON=1), and a cold pull
// through the daemon against the same pull in-process, through pull-cold's 50 MB/s proxy.
// A daemon tool starts its daemon in the untimed setup and stops it in the untimed after-script
// (its own CPU and peak RSS are read from /proc there, since GNU time sees only the client's
// process tree); the CPU its start-up took is subtracted.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Tool } from "./baselines.ts";
import { BANGER_ENV, FRESH_RUN, bangerPull } from "./pull.ts";

/** The XDG dirs of the listed store (made by prepareListStore), for the list tools. */
const LIST_ENV = `export XDG_STATE_HOME="$STORE/state" XDG_CACHE_HOME="$STORE/cache" XDG_CONFIG_HOME="$STORE/config" XDG_RUNTIME_DIR="$STORE/runtime" HOME="$STORE/home"`;

/** The daemon's pid from its lock file (bash, in the XDG environment). */
const DAEMON_PID = `sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p' "$XDG_RUNTIME_DIR/banger/daemon.lock"`;
/** Its user+sys CPU in ms (the command name is "bun": no spaces before the fields). */
const daemonCpu = (pid: string) => `awk '{ print ($14 + $15) * 10 }' /proc/${pid}/stat`;

const START_DAEMON = [`"$BUN" run --silent banger daemon start > /dev/null`, `pid=$(${DAEMON_PID})`, `${daemonCpu("$pid")} > "$WORK/daemon-cpu0"`].join("\n");

/** Records the daemon's CPU since start-up and its peak RSS into $STATS, then stops it. */
const STOP_DAEMON = [
  `pid=$(${DAEMON_PID})`,
  `if [ -n "$pid" ] && [ -r /proc/$pid/stat ]; then`,
  `  cpu=$(( $(${daemonCpu("$pid")}) - $(cat "$WORK/daemon-cpu0" 2>/dev/null || echo 0) ))`,
  `  rss=$(awk '/^VmHWM:/ { print $2 }' /proc/$pid/status)`,
  `  printf '{"daemonCpuMs":%s,"daemonPeakRssKiB":%s}' "$cpu" "$rss" > "$STATS.daemon"`,
  `fi`,
  `"$BUN" run --silent banger daemon stop > /dev/null`,
].join("\n");

function listTool(name: string, opts: { daemon: boolean; calls: number; parallel: boolean }): Tool {
  const par = opts.parallel ? opts.calls : 1;
  const env = opts.daemon ? LIST_ENV : `${LIST_ENV} BANGER_NO_DAEMON=1`;
  return {
    name,
    description: `${opts.parallel ? `${opts.calls} calls at once` : `${opts.calls} calls one after the other`} of \`bun run --silent banger image list --json\` (CLI start-up included; each output checked), ${opts.daemon ? "through a daemon started before (untimed) and stopped after" : "in-process (BANGER_NO_DAEMON=1: each call opens the store and reconciles)"}; per-call latency from spawn to exit (bench/list-calls.ts)`,
    setup: opts.daemon ? [`set -e`, `cd "$REPO"`, env, START_DAEMON].join("\n") : undefined,
    script: [`set -e`, env, `"$BUN" "$BENCH/list-calls.ts" --calls ${opts.calls} --parallel ${par} --expect "$STORE/expected.json" --out "$STATS"`].join("\n"),
    after: opts.daemon ? [`cd "$REPO"`, env, STOP_DAEMON].join("\n") : undefined,
    stats: true,
  };
}

/** The daemon-list tools: `seq` calls one after the other, `par` at once, through the daemon and in-process. */
export function listTools(seq: number, par: number): Tool[] {
  return [
    listTool("banger", { daemon: true, calls: seq, parallel: false }),
    listTool("banger ×N at once", { daemon: true, calls: par, parallel: true }),
    listTool("banger in-process", { daemon: false, calls: seq, parallel: false }),
    listTool("banger in-process ×N at once", { daemon: false, calls: par, parallel: true }),
  ];
}

/**
 * A store with three images (pulled in-process from small rootfs tars), and the records
 * `image list --json` must print.
 */
export async function prepareListStore(dir: string, env: Record<string, string>): Promise<void> {
  for (const d of ["state", "cache", "config", "home", "src"]) mkdirSync(join(dir, d), { recursive: true });
  mkdirSync(join(dir, "runtime"), { recursive: true, mode: 0o700 });
  const xdg = { XDG_STATE_HOME: join(dir, "state"), XDG_CACHE_HOME: join(dir, "cache"), XDG_CONFIG_HOME: join(dir, "config"), XDG_RUNTIME_DIR: join(dir, "runtime"), HOME: join(dir, "home"), BANGER_NO_DAEMON: "1" };
  for (const name of ["alpha", "beta", "gamma"]) {
    const root = join(dir, "src", name);
    mkdirSync(join(root, "etc"), { recursive: true });
    mkdirSync(join(root, "root"), { recursive: true });
    writeFileSync(join(root, "etc", "hostname"), `${name}\n`);
    const tar = join(dir, "src", `${name}.tar`);
    const t = Bun.spawnSync(["tar", "-C", root, "-cf", tar, "."]);
    if (t.exitCode !== 0) throw new Error(`tar for the list store failed: ${t.stderr.toString()}`);
    const p = Bun.spawnSync([env.BUN!, "run", "--silent", "banger", "image", "pull", `rootfs:${tar}`, "--name", name, "--quiet"], { cwd: env.REPO, env: { ...process.env, ...xdg } });
    if (p.exitCode !== 0) throw new Error(`pulling ${name} into the list store failed: ${p.stderr.toString()}`);
  }
  const l = Bun.spawnSync([env.BUN!, "run", "--silent", "banger", "image", "list", "--json"], { cwd: env.REPO, env: { ...process.env, ...xdg } });
  if (l.exitCode !== 0) throw new Error(`listing the list store failed: ${l.stderr.toString()}`);
  writeFileSync(join(dir, "expected.json"), l.stdout);
}

/** The cold pull through a daemon started (untimed) on the run's fresh dirs. */
export const bangerPullDaemon: Tool = {
  name: "banger",
  description: "`bun run banger image pull SOURCE --name bench --quiet` through a daemon started (untimed) on the run's fresh XDG_STATE/CACHE/CONFIG/RUNTIME dirs and HOME, stopped after (untimed); the daemon's CPU and peak RSS from /proc",
  setup: [FRESH_RUN, `cd "$REPO"`, BANGER_ENV, START_DAEMON].join("\n"),
  script: bangerPull.script.replace("export BANGER_NO_DAEMON=1\n", ""),
  after: [bangerPull.after!, `cd "$REPO"`, BANGER_ENV, STOP_DAEMON].join("\n"),
  stats: true,
};

/**
 * A warm pull through a daemon in its steady state: started (untimed) on the run's fresh dirs,
 * with the warm blob cache, and already past four pulls of the same image (untimed, then
 * removed), as the daemon `banger` starts on demand is after a while: its code compiled (a
 * Debian pull through a new daemon took 0.48, 0.37, 0.37, then 0.28-0.30 s), its store open,
 * a layer worker booted. Its CPU is counted from after those pulls.
 */
export const bangerPullDaemonWarm: Tool = {
  name: "banger via a warm daemon",
  description: "`bun run banger image pull SOURCE --name bench --quiet` through a daemon started (untimed) on the run's fresh dirs that has already pulled the same source four times (untimed, those images removed); CLI start-up included; the daemon's CPU (after the warm-up) and peak RSS from /proc",
  setup: [
    FRESH_RUN,
    `cd "$REPO"`,
    BANGER_ENV,
    START_DAEMON,
    `for w in 1 2 3 4; do "$BUN" run --silent banger image pull "$SOURCE" --name "warmup$w" --quiet > /dev/null; "$BUN" run --silent banger image rm "warmup$w" > /dev/null; done`,
    `${daemonCpu("$pid")} > "$WORK/daemon-cpu0"`,
  ].join("\n"),
  script: bangerPullDaemon.script,
  after: bangerPullDaemon.after,
  stats: true,
};

/** The same pull in-process, as the pull cases measure it. */
export const bangerPullInProcess: Tool = {
  ...bangerPull,
  name: "banger in-process",
  description: "the same pull with BANGER_NO_DAEMON=1: the services in the CLI's process, as before the daemon",
  after: undefined,
};
