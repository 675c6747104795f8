// Two banger revisions on the same warm pull, interleaved: which one is faster, measured in one
// sitting on one machine. On a shared 2-vCPU machine single runs drift by 15-30% over an hour,
// so a change is judged by rounds that alternate A and B (order swapped each round) and by the
// per-round B/A ratio, never by numbers taken at different times.
//   bun bench/ab.ts --a REV --b REV [--source zstd|gzip|5-layers] [--rounds N] [--daemon] [--keep]
// REV is a git revision, or "." for this checkout as it is (uncommitted edits included). Each
// revision runs from a worktree under $BANGER_BENCH_WORK/ab/ sharing this checkout's
// node_modules. In-process pulls (BANGER_NO_DAEMON=1) by default; --daemon pulls through a daemon
// per side, each warmed by 4 pulls first. Every pull gets fresh XDG dirs (daemon: its store
// emptied after each) and a copy of a blob cache filled by one untimed pull of that side.
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { formatOptions, option, parseArgs, UsageError, type OptionSpec } from "../src/cli/args.ts";
import { REPO_ROOT } from "./inputs.ts";
import { fiveLayerFixture, oneLayerFixture } from "./oci-fixtures.ts";
import { BANGER_ENV, FRESH_RUN, runScript, templatePull } from "./pull.ts";

const USAGE = "usage: bun bench/ab.ts --a REV --b REV [--source zstd|gzip|5-layers] [--rounds N] [--daemon] [--keep]";
const WORK = join(process.env.BANGER_BENCH_WORK || "/var/tmp/banger-bench", "ab");

interface Options {
  a: string;
  b: string;
  source: "zstd" | "gzip" | "5-layers";
  rounds: number;
  daemon: boolean;
  keep: boolean;
}

const SPECS: OptionSpec[] = [
  { name: "a", value: true, required: true, description: "revision A (a git revision, or . for this checkout as it is)" },
  { name: "b", value: true, required: true, description: "revision B (the same)" },
  { name: "source", value: true, description: "zstd (default), gzip or 5-layers: the Debian rootfs as that OCI layout" },
  { name: "rounds", value: true, description: "rounds, each one pull of A and one of B (default 6)" },
  { name: "daemon", value: false, description: "pull through one warm daemon per side instead of in-process" },
  { name: "keep", value: false, description: "keep the worktrees and scratch dirs" },
];

function parseOptions(argv: string[]): Options {
  const args = parseArgs(argv, SPECS);
  if (args.help) {
    console.log(`${USAGE}\n${formatOptions(SPECS)}`);
    process.exit(0);
  }
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const source = option(args, "source") ?? "zstd";
  if (source !== "zstd" && source !== "gzip" && source !== "5-layers") throw new UsageError(`--source: zstd, gzip or 5-layers, not ${source}`);
  const rounds = Number(option(args, "rounds") ?? 6);
  if (!Number.isInteger(rounds) || rounds < 1) throw new UsageError("--rounds: a whole number from 1");
  return { a: option(args, "a")!, b: option(args, "b")!, source, rounds, daemon: args.flags.has("daemon"), keep: args.flags.has("keep") };
}

interface Side {
  label: "A" | "B";
  rev: string;
  /** The checkout that runs (a worktree, or this checkout for "."). */
  repo: string;
  /** Its scratch: XDG dirs for each pull, the template cache, the daemon's dirs. */
  work: string;
  env: Record<string, string>;
  worktree: boolean;
}

function git(args: string[]): string {
  const p = Bun.spawnSync(["git", ...args], { cwd: REPO_ROOT, stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${p.stderr.toString().trim()}`);
  return p.stdout.toString().trim();
}

/** A detached worktree at `rev` sharing this checkout's node_modules, or this checkout for ".". */
function checkout(label: "A" | "B", rev: string): Side {
  const work = join(WORK, label);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  if (rev === ".") return { label, rev: `${git(["rev-parse", "--short", "HEAD"])} + working tree`, repo: REPO_ROOT, work, env: {}, worktree: false };
  const sha = git(["rev-parse", "--verify", `${rev}^{commit}`]);
  const repo = join(WORK, `tree-${label}`);
  if (existsSync(repo)) git(["worktree", "remove", "--force", repo]);
  git(["worktree", "add", "--detach", repo, sha]);
  symlinkSync(join(REPO_ROOT, "node_modules"), join(repo, "node_modules"));
  return { label, rev: `${rev} (${sha.slice(0, 9)})`, repo, work, env: {}, worktree: true };
}

interface Sample {
  wall: number;
  cpu: number;
  rssMiB: number;
  faults: number;
  /** Through a daemon: what the daemon itself spent on the pull, and its memory just after. */
  daemon?: DaemonSample;
}

interface DaemonSample {
  cpu: number;
  faults: number;
  /** Resident 0.3 s after the pull (the image removed): what an idle daemon keeps. */
  rssMiB: number;
  /** Its peak since it started. */
  peakMiB: number;
}

/** The daemon's pid, from the lock file it holds (its JSON names the holder). */
function daemonPid(side: Side): number {
  const lock = readFileSync(join(side.env.RUN!, "runtime", "banger", "daemon.lock"), "utf8");
  const pid = Number(/"pid":(\d+)/.exec(lock)?.[1]);
  if (!pid) throw new Error(`no daemon pid in ${side.label}'s daemon.lock`);
  return pid;
}

/** Minor faults and user+sys CPU seconds of a process so far (/proc/PID/stat, after the command name). */
function procCounters(pid: number): { faults: number; cpu: number } {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const tick = 100; // USER_HZ on Linux
  return { faults: Number(f[7]), cpu: (Number(f[11]) + Number(f[12])) / tick };
}

/** VmRSS and VmHWM of a process, in MiB. */
function procMemory(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
  return { rssMiB: kib("VmRSS") / 1024, peakMiB: kib("VmHWM") / 1024 };
}

const TIME_FORMAT = "%e %U %S %M %R";

async function timed(script: string, env: Record<string, string>, cwd: string): Promise<Sample> {
  const out = join(env.RUN!, "..", "time.txt");
  await runScript(`/usr/bin/time -f '${TIME_FORMAT}' -o '${out}' bash -c '${script.replace(/'/g, "'\\''")}'`, env, cwd);
  const [wall, user, sys, rssKiB, faults] = readFileSync(out, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
  return { wall: wall!, cpu: user! + sys!, rssMiB: rssKiB! / 1024, faults: faults! };
}

const PULL = `"$BUN" run --silent banger image pull "$SOURCE" --name ab --quiet > /dev/null`;
const REMOVE = `"$BUN" run --silent banger image rm ab > /dev/null`;

/** One timed pull of `side`, on fresh dirs (in-process) or through its warm daemon. */
async function pullOnce(side: Side, daemon: boolean): Promise<Sample> {
  if (daemon) {
    const pid = daemonPid(side);
    const before = procCounters(pid);
    const s = await timed(["set -e", `cd "$REPO"`, BANGER_ENV, PULL].join("\n"), side.env, side.repo);
    const after = procCounters(pid);
    await runScript(["set -e", `cd "$REPO"`, BANGER_ENV, REMOVE].join("\n"), side.env, side.repo);
    await Bun.sleep(300);
    s.daemon = { cpu: after.cpu - before.cpu, faults: after.faults - before.faults, ...procMemory(pid) };
    return s;
  }
  await runScript(FRESH_RUN, side.env, side.repo);
  return timed(["set -e", `cd "$REPO"`, BANGER_ENV, "export BANGER_NO_DAEMON=1", PULL].join("\n"), side.env, side.repo);
}

/** The side's blob cache template (one untimed pull) and, with --daemon, its daemon warmed by 4 pulls. */
async function prepare(side: Side, source: string, daemon: boolean): Promise<void> {
  side.env = { REPO: side.repo, BUN: process.execPath, WORK: side.work, SOURCE: source, RUN: join(side.work, "run"), TEMPLATE_CACHE: "" };
  const template = await templatePull(side.env, join(side.work, "template"), side.repo);
  side.env.TEMPLATE_CACHE = template.cache ?? "";
  if (!daemon) return;
  await runScript(FRESH_RUN, side.env, side.repo);
  await runScript(["set -e", `cd "$REPO"`, BANGER_ENV, `"$BUN" run --silent banger daemon start > /dev/null`].join("\n"), side.env, side.repo);
  for (let i = 0; i < 4; i++) await pullOnce(side, true);
}

async function stopDaemon(side: Side): Promise<void> {
  await runScript([`cd "$REPO"`, BANGER_ENV, `"$BUN" run --silent banger daemon stop > /dev/null 2>&1 || true`].join("\n"), side.env, side.repo).catch(() => {});
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const range = (xs: number[], digits: number) => `${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}`;

function report(sides: Side[], samples: Map<string, Sample[]>, o: Options, source: string): void {
  const a = samples.get("A")!;
  const b = samples.get("B")!;
  console.log(`\n${o.daemon ? "warm daemon" : "in-process"} pull of ${source}, ${o.rounds} interleaved rounds`);
  // Through a daemon, GNU time sees the client only: its CPU, faults and RSS, not the pull's.
  const whose = o.daemon ? " (client)" : "";
  console.log(`| side | revision | wall median (range), s | CPU median${whose}, s | page faults median${whose} | peak RSS median${whose}, MiB |`);
  console.log("|---|---|---|---|---|---|");
  for (const side of sides) {
    const s = samples.get(side.label)!;
    const col = (f: (x: Sample) => number, d: number) => median(s.map(f)).toFixed(d);
    console.log(`| ${side.label} | ${side.rev} | ${col((x) => x.wall, 3)} (${range(s.map((x) => x.wall), 2)}) | ${col((x) => x.cpu, 2)} | ${col((x) => x.faults, 0)} | ${col((x) => x.rssMiB, 0)} |`);
  }
  if (o.daemon) {
    console.log("\nThe daemons themselves (/proc): per pull, and resident 0.3 s after each pull (image removed)");
    console.log("| side | CPU median, s | page faults median | resident after median (range), MiB | peak since start, MiB |");
    console.log("|---|---|---|---|---|");
    for (const side of sides) {
      const d = samples.get(side.label)!.map((x) => x.daemon!);
      const rss = d.map((x) => x.rssMiB);
      console.log(`| ${side.label} | ${median(d.map((x) => x.cpu)).toFixed(2)} | ${median(d.map((x) => x.faults)).toFixed(0)} | ${median(rss).toFixed(0)} (${range(rss, 0)}) | ${Math.max(...d.map((x) => x.peakMiB)).toFixed(0)} |`);
    }
  }
  const ratios = a.map((x, i) => b[i]!.wall / x.wall);
  console.log(`B/A wall per round: median ${median(ratios).toFixed(3)}, range ${range(ratios, 3)}; B faster in ${ratios.filter((r) => r < 1).length}/${ratios.length} rounds`);
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const fx = o.source === "5-layers" ? await fiveLayerFixture(false) : await oneLayerFixture(o.source, false);
  const source = `oci:${fx.layout}:${fx.tag}`;
  const sides = [checkout("A", o.a), checkout("B", o.b)];
  const samples = new Map<string, Sample[]>([
    ["A", []],
    ["B", []],
  ]);
  try {
    for (const side of sides) await prepare(side, source, o.daemon);
    for (let round = 0; round < o.rounds; round++) {
      const order = round % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        const s = await pullOnce(side, o.daemon);
        samples.get(side.label)!.push(s);
        const d = s.daemon ? `; daemon ${s.daemon.cpu.toFixed(2)} s CPU, ${s.daemon.faults} faults, ${s.daemon.rssMiB.toFixed(0)} MiB after` : "";
        console.error(`[ab] round ${round + 1}/${o.rounds} ${side.label}: ${s.wall.toFixed(2)} s wall, ${s.cpu.toFixed(2)} s CPU, ${s.faults} faults, ${s.rssMiB.toFixed(0)} MiB${d}`);
      }
    }
    report(sides, samples, o, source);
    return 0;
  } finally {
    if (o.daemon) for (const side of sides) await stopDaemon(side);
    if (!o.keep) {
      for (const side of sides) if (side.worktree) git(["worktree", "remove", "--force", side.repo]);
      rmSync(WORK, { recursive: true, force: true });
    }
  }
}

try {
  process.exitCode = await main();
} catch (err) {
  console.error(`bench/ab.ts: ${err instanceof Error ? err.message : String(err)}${err instanceof UsageError ? `\n${USAGE}` : ""}`);
  process.exitCode = 1;
}
