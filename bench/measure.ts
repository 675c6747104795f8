// One measurement = one bash script run under GNU time: wall time (to the microsecond, from
// bash's $EPOCHREALTIME around the script), user+sys CPU time and peak
// RSS of the whole process tree (GNU time reports the rusage of every waited-for descendant;
// peak RSS is that of the largest single process in the tree). An optional generator feeds the
// script's stdin from OUTSIDE the timed tree, so its cost is not counted.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

export const GNU_TIME = "/usr/bin/time";
const FORMAT = "%e %U %S %M";

export interface Measurement {
  tool: string;
  ok: boolean;
  wallS: number;
  cpuS: number;
  userS: number;
  sysS: number;
  rssKiB: number;
  exitCode: number;
  timedOut?: boolean;
  /** The time limit, when timedOut. */
  limitS?: number;
  error?: string;
}

/** Throws with the fix when /usr/bin/time is missing or is not GNU time. */
export function requireGnuTime(): void {
  const fix = "install it with `apt-get install -y time` (Debian package \"time\"; .ci/run must install it for benchmarks)";
  if (!existsSync(GNU_TIME)) throw new Error(`GNU time not found at ${GNU_TIME}: ${fix}`);
  const r = Bun.spawnSync([GNU_TIME, "--version"], { stdout: "pipe", stderr: "pipe" });
  const text = r.stdout.toString() + r.stderr.toString();
  if (!/GNU/.test(text)) throw new Error(`${GNU_TIME} is not GNU time (it printed: ${text.trim().slice(0, 80)}): ${fix}`);
}

export interface MeasureOptions {
  /** Bash script to time; reads its parameters from env. */
  script: string;
  env: Record<string, string>;
  cwd: string;
  /** argv of a generator whose stdout becomes the script's stdin (not timed). */
  stdinFrom?: string[];
  timeoutS: number;
  /** Directory for the time output and the log. */
  workDir: string;
}

function tail(path: string, lines = 8): string {
  if (!existsSync(path)) return "";
  return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

export async function measure(tool: string, o: MeasureOptions): Promise<Measurement> {
  const tf = join(o.workDir, `time-${process.pid}.txt`);
  const logFile = join(o.workDir, `log-${tool.replace(/[^a-z0-9]+/gi, "_")}.txt`);
  const wallFile = join(o.workDir, `wall-${process.pid}.txt`);
  rmSync(tf, { force: true });
  rmSync(wallFile, { force: true });
  const env = {
    ...process.env,
    ...o.env,
    BENCH_SCRIPT: o.script,
    BENCH_TF: tf,
    BENCH_FMT: FORMAT,
    BENCH_TIMEOUT: String(o.timeoutS),
    BENCH_LOG: logFile,
    BENCH_WALL: wallFile,
  };
  // `timeout` (not --foreground) kills its whole process group on expiry. GNU time's wall
  // clock has 10 ms steps (5% of a 0.2 s run), so the wall time is taken in microseconds
  // ($EPOCHREALTIME) by a bash around the script, inside the timed tree.
  const clocked = `S=$EPOCHREALTIME; bash -c "$BENCH_SCRIPT"; rc=$?; echo "$S $EPOCHREALTIME" > "$BENCH_WALL"; exit $rc`;
  const timed = `timeout -s KILL "$BENCH_TIMEOUT" ${GNU_TIME} -f "$BENCH_FMT" -o "$BENCH_TF" bash -c '${clocked}'`;
  const argv = o.stdinFrom
    ? ["bash", "-c", `exec >"$BENCH_LOG" 2>&1; "$@" | ${timed}; exit \${PIPESTATUS[1]}`, "bench", ...o.stdinFrom]
    : ["bash", "-c", `exec >"$BENCH_LOG" 2>&1; ${timed}`];
  const proc = Bun.spawn(argv, { cwd: o.cwd, env, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  const exitCode = await proc.exited;
  const out = existsSync(tf) ? readFileSync(tf, "utf8").trim().split("\n") : [];
  rmSync(tf, { force: true });
  const clock = existsSync(wallFile) ? /^(\d+\.\d+) (\d+\.\d+)$/.exec(readFileSync(wallFile, "utf8").trim()) : null;
  rmSync(wallFile, { force: true });
  const last = out.at(-1) ?? "";
  const m = /^([\d.]+) ([\d.]+) ([\d.]+) (\d+)$/.exec(last);
  const base: Measurement = { tool, ok: false, wallS: NaN, cpuS: NaN, userS: NaN, sysS: NaN, rssKiB: NaN, exitCode };
  if (m) {
    base.wallS = clock ? Number(clock[2]) - Number(clock[1]) : Number(m[1]);
    base.userS = Number(m[2]);
    base.sysS = Number(m[3]);
    base.cpuS = base.userS + base.sysS;
    base.rssKiB = Number(m[4]);
  }
  if (exitCode === 137 || (exitCode !== 0 && !m)) {
    base.timedOut = exitCode === 137;
    if (base.timedOut) base.limitS = o.timeoutS;
    base.error = base.timedOut ? `killed after the ${o.timeoutS}s time limit` : `exit ${exitCode}: ${tail(logFile)}`;
    return base;
  }
  if (exitCode !== 0) {
    base.error = `exit ${exitCode}: ${tail(logFile)}`;
    return base;
  }
  base.ok = m !== null;
  if (!m) base.error = `could not parse GNU time output: ${out.join(" | ")}`;
  return base;
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}
