#!/usr/bin/env bun
// Benchmark runner: `bun run bench [--case NAME]... [--runs N] [--quick] [--out FILE] [--only-banger] [--no-sync]`
// Every tool gets the same input in the same run; medians of N runs (tools interleaved, order
// rotated each run); inputs are read once beforehand so every tool starts with a warm page cache.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { CASES, type CaseDef, type Input } from "./cases.ts";
import { extractTree, removeTree, type Tool } from "./baselines.ts";
import { FIXTURE_CACHE, REPO_ROOT, freeBytes } from "./inputs.ts";
import { machineInfo } from "./machine.ts";
import { measure, requireGnuTime } from "./measure.ts";
import { renderResults, type CaseResult, type ToolStats } from "./report.ts";
import { imageSizeFor, mkfsInodeCount, scanTar, type TarStats } from "./tar-scan.ts";
import { checkExpectations, checkZeroImage, fsck } from "./verify.ts";

interface Options {
  cases: string[];
  runs: number;
  quick: boolean;
  out: string;
  /** Only these tools are measured (the others' last results on the same input are carried over); null: all. */
  tools: string[] | null;
  sync: boolean;
  timeoutS: number | null;
}

const USAGE = `usage: bun bench/run.ts [--case NAME]... [--runs N] [--quick] [--out FILE] [--only-banger | --tool NAME...] [--no-sync]
cases: ${CASES.map((c) => c.name).join(", ")} (default: all)
  --runs N        runs per tool, median reported (default 3; 1 with --quick)
  --quick         small variant of every case, a smoke run in under 2 minutes
  --out FILE      results markdown (default bench/RESULTS.md; bench/out/RESULTS-quick.md with --quick)
  --only-banger   skip the baselines (for iterating on the writer); same as --tool banger
  --tool NAME     measure only this tool (repeatable); the others' previous results on the same input are carried over
  --no-sync       do not fsync outputs at the end of each timed command
  --timeout S     per-measurement time limit in seconds (default: per case, 300 to 2400)
env: BANGER_FIXTURE_CACHE (inputs, default /var/tmp/banger-fixtures), BANGER_BENCH_WORK (scratch, default /var/tmp/banger-bench),
     BANGER_BENCH_REPO (the checkout whose \`bun run banger\` is measured, default this one)`;

function parseOptions(argv: string[]): Options {
  const o: Options = { cases: [], runs: NaN, quick: false, out: "", tools: null, sync: true, timeoutS: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === "--case") o.cases.push(value());
    else if (a === "--runs") o.runs = Number(value());
    else if (a === "--quick") o.quick = true;
    else if (a === "--out") o.out = value();
    else if (a === "--only-banger") o.tools = [...(o.tools ?? []), "banger"];
    else if (a === "--tool") o.tools = [...(o.tools ?? []), value()];
    else if (a === "--no-sync") o.sync = false;
    else if (a === "--timeout") o.timeoutS = Number(value());
    else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  if (Number.isNaN(o.runs)) o.runs = o.quick ? 1 : 3;
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error(`--runs must be a positive integer`);
  for (const c of o.cases) if (!CASES.some((k) => k.name === c)) throw new Error(`unknown case "${c}"\n${USAGE}`);
  if (!o.out) o.out = o.quick ? "bench/out/RESULTS-quick.md" : "bench/RESULTS.md";
  return o;
}

function log(msg: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
}

const WORK_ROOT = process.env.BANGER_BENCH_WORK || "/var/tmp/banger-bench";
/** The checkout whose `bun run banger` is measured (default: this one). */
const BANGER_REPO = resolve(process.env.BANGER_BENCH_REPO || REPO_ROOT);

function statsFor(tar: string): TarStats {
  const side = `${tar}.stats.json`;
  const st = statSync(tar);
  if (existsSync(side)) {
    const cached = JSON.parse(readFileSync(side, "utf8")) as { mtimeMs: number; stats: TarStats };
    if (cached.mtimeMs === st.mtimeMs && cached.stats.tarBytes === st.size) return cached.stats;
  }
  const stats = scanTar(tar);
  writeFileSync(side, JSON.stringify({ mtimeMs: st.mtimeMs, stats }));
  return stats;
}

/** The commit banger was measured at (and whether src/ had uncommitted changes). */
function bangerCommit(): string {
  const head = Bun.spawnSync(["git", "rev-parse", "--short", "HEAD"], { cwd: BANGER_REPO }).stdout.toString().trim();
  const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--", "src"], { cwd: BANGER_REPO }).stdout.toString().trim();
  const where = BANGER_REPO === REPO_ROOT ? "" : ` (${BANGER_REPO})`;
  return head ? `${head}${dirty ? " + uncommitted changes in src/" : ""}${where}` : `unknown${where}`;
}

/** What a tool left in $STATS and $STATS.daemon (see Tool.stats); {} when nothing. */
function readStats(file: string): ToolStats {
  const read = (f: string) => (existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")) as ToolStats) : {});
  return { ...read(file), ...read(`${file}.daemon`) };
}

async function warmCache(...files: string[]): Promise<void> {
  await Bun.spawn(["bash", "-c", 'cat "$@" > /dev/null', "w", ...files]).exited;
}

/** Runs a tool's untimed setup or after script; returns an error text or null. */
async function untimed(script: string, env: Record<string, string>): Promise<string | null> {
  const p = Bun.spawn(["bash", "-c", script], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const code = await p.exited;
  if (code === 0) return null;
  const out = (await new Response(p.stdout).text()) + (await new Response(p.stderr).text());
  return `exit ${code}: ${out.trim().split("\n").slice(-4).join(" / ").slice(0, 400)}`;
}

/**
 * RSS of banger doing nothing (loading its CLI and printing help): the fixed part of its
 * memory. Run through `bun run banger`, like every measurement, so this first run also
 * (re)builds the CLI's bytecode bundle (src/cli/launch.ts) and no timed run pays for that.
 */
async function bangerIdleRss(work: string): Promise<number> {
  const m = await measure("banger --help", {
    script: `cd "$REPO"; "$BUN" run --silent banger internal make-ext4 --help > /dev/null`,
    env: { REPO: BANGER_REPO, BUN: process.execPath },
    cwd: REPO_ROOT,
    timeoutS: 60,
    workDir: work,
  });
  return m.rssKiB;
}

async function runCase(def: CaseDef, opt: Options): Promise<CaseResult> {
  const v = opt.quick ? def.quick : def.full;
  const work = join(WORK_ROOT, def.name);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const result: CaseResult = {
    name: def.name,
    title: def.title,
    mode: opt.quick ? "quick" : "full",
    date: new Date().toISOString(),
    describe: v.describe,
    runs: opt.runs,
    sync: opt.sync,
    input: {},
    imageSize: null,
    mkfsInodes: null,
    tools: [],
    measurements: {},
    skipped: opt.tools ? [...v.skipped, ...v.tools.filter((t) => !opt.tools!.includes(t.name)).map((t) => ({ tool: t.name, why: `not selected (--tool ${opt.tools!.join(", ")})` }))] : [...v.skipped],
    fsck: null,
    zero: null,
    notes: [],
    bangerCommit: bangerCommit(),
  };
  let input: Input | null = null;
  try {
    log(`${def.name}: preparing input (${v.describe})`);
    const env: Record<string, string> = { REPO: BANGER_REPO, BENCH: join(REPO_ROOT, "bench"), BUN: process.execPath, WORK: work, SYNC: opt.sync ? "1" : "0" };
    const selected = (opt.tools ? v.tools.filter((t) => opt.tools!.includes(t.name)) : v.tools).map((t) => t.name);
    input = await v.prepare({ work, env: { ...env }, tools: selected });
    if (input.kind === "tar") {
      const stats = statsFor(input.tar);
      result.input = { tar: input.tar, tarBytes: stats.tarBytes, entries: stats.entries, fileBytes: stats.fileBytes, files: stats.files, dirs: stats.dirs, symlinks: stats.symlinks, hardlinks: stats.hardlinks };
      result.imageSize = imageSizeFor(stats);
      result.mkfsInodes = mkfsInodeCount(stats, result.imageSize);
      env.TAR = input.tar;
      env.SIZE = String(result.imageSize);
      if (result.mkfsInodes) env.MKFS_N = String(result.mkfsInodes);
    } else if (input.kind === "oci") {
      const fx = input.fixture;
      const st = fx.stats;
      result.input = {
        layers: fx.layers.map((l) => ({ compression: l.compression, bytes: l.bytes, uncompressedBytes: l.uncompressedBytes, entries: l.entries })),
        blobBytes: fx.blobBytes,
        uncompressedBytes: fx.uncompressedBytes,
        entries: st.entries,
        fileBytes: st.fileBytes,
        files: st.files,
        dirs: st.dirs,
        symlinks: st.symlinks,
        hardlinks: st.hardlinks,
      };
      result.imageSize = input.imageSize;
      result.mkfsInodes = input.mkfsInodes;
      Object.assign(env, input.env);
      env.SIZE = String(input.imageSize);
      if (input.mkfsInodes) env.MKFS_N = String(input.mkfsInodes);
      result.notes.push(...input.notes);
      result.skipped.push(...input.skip);
      if (input.linkRate) result.linkRate = input.linkRate;
    } else if (input.kind === "store") {
      Object.assign(env, input.env);
      result.notes.push(...input.notes);
    } else {
      result.input = { streamBytes: input.size, nonZeroBlocks: input.nonZeroBlocks, entries: 1 };
    }
    if (!v.passSize) delete env.SIZE;
    const skip = new Set(input.kind === "oci" ? input.skip.map((s) => s.tool) : []);
    const tools: Tool[] = (opt.tools ? v.tools.filter((t) => opt.tools!.includes(t.name)) : v.tools).filter((t) => !skip.has(t.name));
    result.tools = tools.map((t) => ({ name: t.name, description: t.description }));
    const tree = join(work, "tree");
    if (tools.some((t) => t.needsTree) && input.kind === "tar") {
      log(`${def.name}: extracting the tree for the mkfs-only baseline (not timed)`);
      await extractTree(input.tar, tree);
      env.TREE = tree;
    }
    if (input.kind === "tar") await warmCache(input.tar);
    if (input.kind === "oci") await warmCache(...input.fixture.layers.map((l) => l.path));
    result.notes.push(`load average at start: ${loadavg().map((x) => x.toFixed(1)).join(" ")} (${cpus().length} CPUs; other work on the machine adds noise)`);
    log(`${def.name}: ${tools.length} tools x ${opt.runs} runs; image size ${result.imageSize ?? "banger default"}; ${(freeBytes(work) / 2 ** 30).toFixed(1)} GiB free`);
    const gaveUp = new Set<string>();
    for (let run = 0; run < opt.runs; run++) {
      const order = tools.map((_, i) => tools[(i + run) % tools.length]!);
      for (const tool of order) {
        if (gaveUp.has(tool.name)) continue;
        const out = join(work, "out.img");
        rmSync(out, { force: true });
        const stats = join(work, `stats-${tool.name.replace(/[^a-z0-9]+/gi, "_")}.json`);
        for (const f of [stats, `${stats}.daemon`]) rmSync(f, { force: true });
        const setupError = tool.setup ? await untimed(tool.setup, { ...env, OUT: out, STATS: stats }) : null;
        if (setupError) throw new Error(`${tool.name}: untimed setup failed: ${setupError}`);
        const m = await measure(tool.name, {
          script: tool.script,
          env: { ...env, OUT: out, STATS: stats },
          cwd: REPO_ROOT,
          stdinFrom: tool.stdin && input.kind === "stream" ? input.gen : undefined,
          timeoutS: opt.timeoutS ?? v.timeoutS,
          workDir: work,
        });
        (result.measurements[tool.name] ??= []).push(m);
        log(`${def.name} run ${run + 1}/${opt.runs} ${tool.name}: ${m.ok ? `${m.wallS.toFixed(3)}s wall, ${m.cpuS.toFixed(2)}s CPU, ${(m.rssKiB / 1024).toFixed(0)} MiB RSS` : `FAILED ${m.error}`}`);
        if (m.timedOut) gaveUp.add(tool.name);
        const afterError = tool.after && m.ok ? await untimed(tool.after, { ...env, OUT: out, STATS: stats }) : null;
        if (afterError) result.notes.push(`${tool.name} run ${run + 1}: untimed after-script failed: ${afterError}`);
        if (tool.stats) (result.stats ??= {})[tool.name] = [...(result.stats?.[tool.name] ?? []), readStats(stats)];
        if (tool.name === "banger" && m.ok && !afterError && result.fsck === null && input.kind !== "store") {
          log(`${def.name}: e2fsck -fn on banger's image (not timed)`);
          result.fsck = fsck(out);
          if (input.kind === "stream") result.zero = checkZeroImage(out, input.size, input.nonZeroBlocks);
          if (input.kind === "oci") {
            result.bangerImageBytes = statSync(out).size;
            const x = input.fixture.expect;
            if (x.absent.length + x.content.length + x.symlinks.length > 0) result.expectCheck = checkExpectations(out, x);
          }
        }
        rmSync(out, { force: true });
        removeTree(join(work, "extract"));
        removeTree(join(work, "run"));
        // Every measurement starts with nothing of the previous one still being written back
        // (the pipeline's extracted tree and its removal otherwise land on whoever runs next).
        Bun.spawnSync(["sync"]);
      }
    }
    result.notes.push(`load average at end: ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
    if (def.name === "files-1m" || def.name === "files-100k-one-dir" || def.name === "debian") {
      result.bangerIdleRssKiB = await bangerIdleRss(work);
    }
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
    log(`${def.name}: case failed: ${result.error}`);
  } finally {
    if (input?.kind === "oci" && input.close) await input.close();
    removeTree(work);
  }
  return result;
}

/**
 * With a tool selection (--only-banger, --tool), the tools not measured keep their previous result
 * of the same case when its input was the same (a tool's time does not change with banger's
 * code), and the notes say so.
 */
function carryBaselines(r: CaseResult, prev: CaseResult): void {
  const same = JSON.stringify(prev.input) === JSON.stringify(r.input) && prev.imageSize === r.imageSize && prev.sync === r.sync;
  if (!same) {
    r.notes.push("some tools not measured (--tool) and the previous result had a different input");
    return;
  }
  const carried: string[] = [];
  for (const t of prev.tools) {
    if (r.measurements[t.name] || !prev.measurements[t.name]) continue;
    r.tools.push(t);
    r.measurements[t.name] = prev.measurements[t.name]!;
    carried.push(t.name);
  }
  r.skipped = r.skipped.filter((s) => !carried.includes(s.tool));
  if (carried.length) {
    const from = prev.baselinesFrom ?? prev.date;
    r.baselinesFrom = from;
    r.notes.push(`${carried.join(", ")} carried over from the run of ${from.replace("T", " ").slice(0, 16)} UTC on the same input; ${Object.keys(r.measurements).filter((n) => !carried.includes(n)).join(", ")} re-measured in this run`);
  }
}

async function main(): Promise<number> {
  const opt = parseOptions(process.argv.slice(2));
  requireGnuTime();
  mkdirSync(WORK_ROOT, { recursive: true });
  const resultsDir = join(REPO_ROOT, "bench/out", opt.quick ? "results-quick" : "results-full");
  mkdirSync(resultsDir, { recursive: true });
  const selected = opt.cases.length ? CASES.filter((c) => opt.cases.includes(c.name)) : CASES;
  for (const def of selected) {
    const file = join(resultsDir, `${def.name}.json`);
    const r = await runCase(def, opt);
    if (opt.tools && existsSync(file)) carryBaselines(r, JSON.parse(readFileSync(file, "utf8")) as CaseResult);
    writeFileSync(file, JSON.stringify(r, null, 2));
  }
  // RESULTS.md holds the latest result of every case measured so far in this mode.
  const all: CaseResult[] = [];
  for (const def of CASES) {
    const f = join(resultsDir, `${def.name}.json`);
    if (existsSync(f)) all.push(JSON.parse(readFileSync(f, "utf8")) as CaseResult);
  }
  const outPath = resolve(REPO_ROOT, opt.out);
  mkdirSync(resolve(outPath, ".."), { recursive: true });
  writeFileSync(outPath, renderResults(all, machineInfo(WORK_ROOT), { quick: opt.quick, fixtureCache: FIXTURE_CACHE, workRoot: WORK_ROOT }));
  log(`wrote ${outPath}`);
  return 0;
}

if (import.meta.main) {
  try {
    process.exitCode = await main();
  } catch (err) {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
