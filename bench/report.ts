// Renders bench/RESULTS.md from the per-case results: machine, method, targets, one table per case.
import type { MachineInfo } from "./machine.ts";
import { median, type Measurement } from "./measure.ts";
import type { FsckResult, ZeroCheck } from "./verify.ts";

export interface CaseResult {
  name: string;
  title: string;
  mode: "full" | "quick";
  date: string;
  describe: string;
  runs: number;
  sync: boolean;
  input: {
    tar?: string;
    tarBytes?: number;
    entries?: number;
    fileBytes?: number;
    files?: number;
    dirs?: number;
    symlinks?: number;
    hardlinks?: number;
    streamBytes?: number;
    nonZeroBlocks?: number;
    /** Pull cases: the image's layer blobs (entries of the merged tree above). */
    layers?: { compression: string; bytes: number; uncompressedBytes: number; entries: number }[];
    blobBytes?: number;
    uncompressedBytes?: number;
  };
  imageSize: number | null;
  mkfsInodes: number | null;
  tools: { name: string; description: string }[];
  measurements: Record<string, Measurement[]>;
  skipped: { tool: string; why: string }[];
  fsck: FsckResult | null;
  zero: ZeroCheck | null;
  bangerIdleRssKiB?: number;
  /** Pull cases: the size of the image banger published. */
  bangerImageBytes?: number;
  /** Pull cases: the fixture's expected paths and contents looked up in banger's image. */
  expectCheck?: { ok: boolean; detail: string };
  /** pull-cold: bytes per second the proxy gave one download before the runs. */
  linkRate?: number;
  /** Per tool, per run: what the tool reported beyond GNU time (Tool.stats). */
  stats?: Record<string, ToolStats[]>;
  notes: string[];
  bangerCommit?: string;
  /** Date of the run the baselines come from, when carried over by --only-banger. */
  baselinesFrom?: string;
  error?: string;
}

/** What a tool reports beyond GNU time: per-call latencies (list-calls.ts), a daemon's CPU and memory. */
export interface ToolStats {
  calls?: number;
  parallel?: number;
  latenciesMs?: number[];
  correct?: number;
  failure?: string;
  daemonCpuMs?: number | null;
  daemonPeakRssKiB?: number;
}

interface Summary {
  okRuns: number;
  totalRuns: number;
  wall: number;
  cpu: number;
  rssKiB: number;
  errors: string[];
}

export function summarize(ms: Measurement[] | undefined): Summary | null {
  if (!ms || !ms.length) return null;
  const ok = ms.filter((m) => m.ok);
  return {
    okRuns: ok.length,
    totalRuns: ms.length,
    wall: median(ok.map((m) => m.wallS)),
    cpu: median(ok.map((m) => m.cpuS)),
    rssKiB: median(ok.map((m) => m.rssKiB)),
    errors: [...new Set(ms.filter((m) => !m.ok).map((m) => m.error ?? "failed"))],
  };
}

/** Seconds: milliseconds shown below 10 s (the wall clock is read to the microsecond). */
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 3 : 2) : "—");
const mib = (kib: number) => (Number.isFinite(kib) ? (kib / 1024).toFixed(0) : "—");
const gib = (b: number) => (b / 2 ** 30).toFixed(2);
const mark = (ok: boolean | null) => (ok === null ? "?" : ok ? "✓" : "✗");
const RSS_LIMIT_KIB = (300e6 / 1024);

function caseTable(r: CaseResult): string[] {
  const lines: string[] = [];
  const b = summarize(r.measurements["banger"]);
  lines.push("| tool | ok runs | wall median (s) | CPU user+sys median (s) | peak RSS median (MiB) | wall ÷ banger's | CPU ÷ banger's |");
  lines.push("|---|---|---|---|---|---|---|");
  for (const t of r.tools) {
    const s = summarize(r.measurements[t.name]);
    if (!s) {
      lines.push(`| ${t.name} | 0/0 | — | — | — | — | — |`);
      continue;
    }
    const killed = r.measurements[t.name]!.find((m) => m.timedOut);
    if (s.okRuns === 0 && killed?.limitS) {
      const lower = b && Number.isFinite(b.wall) ? `> ${(killed.limitS / b.wall).toFixed(0)}×` : "—";
      lines.push(`| ${t.name} | 0/${s.totalRuns} | > ${killed.limitS} (killed at the limit) | — | — | ${lower} | — |`);
      continue;
    }
    const ratio = (x: number, y: number | undefined) => (y !== undefined && Number.isFinite(x) && Number.isFinite(y) && y > 0 ? `${(x / y).toFixed(2)}×` : "—");
    lines.push(`| ${t.name} | ${s.okRuns}/${s.totalRuns} | ${f2(s.wall)} | ${f2(s.cpu)} | ${mib(s.rssKiB)} | ${ratio(s.wall, b?.wall)} | ${ratio(s.cpu, b?.cpu)} |`);
  }
  return lines;
}

function inputLine(r: CaseResult): string {
  const i = r.input;
  if (i.layers) {
    const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
    const parts = [`Input: ${r.describe}`];
    parts.push(`${i.layers.length} layer${i.layers.length > 1 ? "s" : ""}: ${i.layers.map((l) => `${l.compression} ${mb(l.bytes)} (tar ${mb(l.uncompressedBytes)}, ${l.entries.toLocaleString("en-US")} entries)`).join(", ")}`);
    if (i.entries !== undefined) parts.push(`merged tree ${i.entries.toLocaleString("en-US")} entries (${i.files} files, ${i.dirs} dirs, ${i.symlinks} symlinks, ${i.hardlinks} hardlinks), ${mb(i.fileBytes ?? 0)} of file data`);
    if (r.imageSize && r.tools.some((t) => t.name.endsWith("pipeline"))) parts.push(`image size given to the pipeline's mkfs.ext4 ${(r.imageSize / 2 ** 20).toFixed(0)} MiB`);
    if (r.bangerImageBytes) parts.push(`banger's image ${(r.bangerImageBytes / 2 ** 20).toFixed(0)} MiB`);
    if (r.mkfsInodes) parts.push(`mkfs.ext4 -N ${r.mkfsInodes}`);
    return parts.join("; ") + ".";
  }
  if (i.streamBytes !== undefined) return `Input: ${r.describe}; ${gib(i.streamBytes)} GiB streamed through a pipe.`;
  const parts = [`Input: ${r.describe}`];
  if (i.tarBytes !== undefined) parts.push(`tar ${(i.tarBytes / 2 ** 20).toFixed(1)} MiB`);
  if (i.entries !== undefined) parts.push(`${i.entries.toLocaleString("en-US")} entries (${i.files} files, ${i.dirs} dirs, ${i.symlinks} symlinks, ${i.hardlinks} hardlinks)`);
  if (r.imageSize) parts.push(`image size for every tool ${(r.imageSize / 2 ** 20).toFixed(0)} MiB`);
  if (r.mkfsInodes) parts.push(`mkfs.ext4 -N ${r.mkfsInodes}`);
  return parts.join("; ") + ".";
}

interface Target {
  text: string;
  ok: boolean | null;
  detail: string;
}

/**
 * The ratio within each round (both tools ran in it, seconds apart), which a load that drifts
 * over the run shifts less than it shifts the medians: its median and middle half, as context
 * for a ratio of medians near a limit. Empty when fewer than 3 rounds have both, or when a tool
 * missed rounds (its measurements no longer line up by round).
 */
export function pairedDetail(r: CaseResult | undefined, tool: string, base: string, limit = 1.5): string {
  const a = r?.measurements[tool];
  const b = r?.measurements[base];
  if (!a || !b || a.length !== b.length) return "";
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i]!.ok && b[i]!.ok && b[i]!.wallS > 0) ratios.push(a[i]!.wallS / b[i]!.wallS);
  }
  if (ratios.length < 3) return "";
  ratios.sort((x, y) => x - y);
  const q = (f: number) => ratios[Math.min(ratios.length - 1, Math.floor(f * ratios.length))]!;
  return `; per round: median ${median(ratios).toFixed(2)}×, middle half ${q(0.25).toFixed(2)}–${q(0.75).toFixed(2)}×, ${ratios.filter((x) => x <= limit).length}/${ratios.length} rounds ≤ ${limit}×`;
}

function targets(byName: Map<string, CaseResult>): Target[] {
  const out: Target[] = [];
  const deb = byName.get("debian");
  const s = (r: CaseResult | undefined, tool: string) => (r ? summarize(r.measurements[tool]) : null);
  const b = s(deb, "banger");
  const cmp = (tool: string, text: string, test: (ratio: number) => boolean, show: (ratio: number) => string, invert = false) => {
    const o = s(deb, tool);
    if (!b || !o || !Number.isFinite(b.wall) || !Number.isFinite(o.wall)) {
      out.push({ text, ok: null, detail: !deb ? "Debian case not run" : !b || !Number.isFinite(b.wall) ? "banger did not complete" : `${tool} not measured` });
      return;
    }
    const ratio = o.wall / b.wall;
    const cpu = invert ? b.cpu / o.cpu : o.cpu / b.cpu;
    out.push({ text, ok: test(ratio), detail: `${show(ratio)} (CPU time: ${cpu.toFixed(2)}×)` });
  };
  cmp("go-pipeline", "Debian: ≥ 5× faster than the banger-style pipeline (tar + mkfs.ext4 -d + debugfs)", (x) => x >= 5, (x) => `pipeline takes ${x.toFixed(2)}× banger's wall time`);
  cmp("mkfs.ext4 -d", "Debian: faster than `mkfs.ext4 -d` alone", (x) => x > 1, (x) => `mkfs.ext4 -d takes ${x.toFixed(2)}× banger's wall time`);
  cmp("cat (floor)", "Debian: within 1.5× of the plain copy", (x) => 1 / x <= 1.5, (x) => `banger takes ${(1 / x).toFixed(2)}× the copy's wall time${pairedDetail(deb, "banger", "cat (floor)")}`, true);
  for (const [name, label] of [["debian", "Debian"], ["file-8g", "8 GiB file"]] as const) {
    const bb = s(byName.get(name), "banger");
    const text = `${label}: banger peak RSS ≤ 300 MB`;
    if (!bb || !Number.isFinite(bb.rssKiB)) out.push({ text, ok: null, detail: byName.has(name) ? "banger did not complete" : "case not run" });
    else out.push({ text, ok: bb.rssKiB <= RSS_LIMIT_KIB, detail: `${(bb.rssKiB * 1024 / 1e6).toFixed(0)} MB (${mib(bb.rssKiB)} MiB)` });
  }
  const m1 = byName.get("files-1m");
  const b1 = s(m1, "banger");
  const text1 = `1,000,000 files: finishes, fsck-clean; memory per entry stated`;
  if (!m1 || !b1 || !Number.isFinite(b1.wall)) out.push({ text: text1, ok: m1 ? false : null, detail: m1 ? `banger failed: ${b1?.errors[0] ?? m1.error ?? "?"}` : "case not run" });
  else out.push({ text: text1, ok: m1.fsck?.ok ?? null, detail: `${f2(b1.wall)} s; e2fsck -fn ${m1.fsck?.ok ? "clean" : `NOT clean: ${m1.fsck?.detail}`}; ${perEntry(m1, b1.rssKiB)}` });
  const z = byName.get("zero-100g");
  const bz = s(z, "banger");
  const textZ = "100 GiB mostly-zero stream: image holds only its non-zero blocks; time bounded by reading the pipe";
  if (!z || !bz || !Number.isFinite(bz.wall)) out.push({ text: textZ, ok: z ? false : null, detail: z ? `banger failed: ${bz?.errors[0] ?? z.error ?? "?"}` : "case not run" });
  else {
    const floor = s(z, "pipe read (floor)");
    const bytes = z.input.streamBytes ?? 0;
    const ratio = floor && Number.isFinite(floor.wall) ? bz.wall / floor.wall : NaN;
    out.push({
      text: textZ,
      ok: (z.zero?.ok ?? false) && (!Number.isFinite(ratio) || ratio <= 1.5),
      detail: `zero detection ${(bytes / bz.wall / 1e9).toFixed(2)} GB/s vs pipe read ${floor ? (bytes / floor.wall / 1e9).toFixed(2) : "?"} GB/s (${Number.isFinite(ratio) ? ratio.toFixed(2) : "?"}× the pipe-read time; ✓ needs ≤ 1.5×); blocks: ${z.zero?.detail ?? "not checked"}`,
    });
  }
  return out;
}

/** The pull cases' targets: within 1.5× of decompressing alone, ≥ 5× faster than the pipeline, ≤ 1.15× skopeo cold, RSS. */
function pullTargets(byName: Map<string, CaseResult>): Target[] {
  const out: Target[] = [];
  const s = (r: CaseResult | undefined, tool: string) => (r ? summarize(r.measurements[tool]) : null);
  const ok = (x: Summary | null): x is Summary => !!x && Number.isFinite(x.wall);
  const missing = (r: CaseResult | undefined, b: Summary | null, tool: string) => (!r ? "case not run" : !r.measurements["banger"] ? "banger not measured" : !ok(b) ? "banger did not complete" : `${tool} not measured`);
  const warm: [string, string, string, string][] = [
    ["pull-gzip", "Pull, 1 gzip layer (warm)", "gzip -dc (floor)", "umoci-pipeline"],
    ["pull-zstd", "Pull, 1 zstd layer (warm)", "zstd -dc (floor)", "tar-zstd-pipeline"],
    ["pull-5-layers", "Pull, 5 layers (warm)", "gzip -dc ×5 (floor)", "umoci-pipeline"],
  ];
  for (const [name, label, floor, pipeline] of warm) {
    const r = byName.get(name);
    const b = s(r, "banger");
    const f = s(r, floor);
    const p = s(r, pipeline);
    const t1 = `${label}: banger ≤ 1.5× \`${floor.replace(" (floor)", "")}\` of the blob${name === "pull-5-layers" ? "s" : ""}`;
    if (!ok(b) || !ok(f)) out.push({ text: t1, ok: null, detail: missing(r, b, floor) });
    else out.push({ text: t1, ok: b.wall / f.wall <= 1.5, detail: `banger takes ${(b.wall / f.wall).toFixed(2)}× its wall time (${f2(b.wall)} vs ${f2(f.wall)} s; CPU ${f2(b.cpu)} vs ${f2(f.cpu)} s)${pairedDetail(r, "banger", floor)}` });
    const d = s(r, "banger via a warm daemon");
    const t1d = `${label}, through a warm daemon (the default path, steady state): ≤ 1.5× \`${floor.replace(" (floor)", "")}\``;
    if (!ok(d) || !ok(f)) out.push({ text: t1d, ok: null, detail: !r ? "case not run" : !ok(d) ? "not measured" : `${floor} not measured` });
    else out.push({ text: t1d, ok: d.wall / f.wall <= 1.5, detail: `banger takes ${(d.wall / f.wall).toFixed(2)}× its wall time (${f2(d.wall)} vs ${f2(f.wall)} s; client CPU ${f2(d.cpu)} s)${pairedDetail(r, "banger via a warm daemon", floor)}` });
    const t2 = `${label}: ≥ 5× faster than ${pipeline === "umoci-pipeline" ? "umoci unpack" : "tar --zstd -x"} + mkfs.ext4 -d + debugfs`;
    if (!ok(b) || !ok(p)) out.push({ text: t2, ok: null, detail: missing(r, b, pipeline) });
    else out.push({ text: t2, ok: p.wall / b.wall >= 5, detail: `the pipeline takes ${(p.wall / b.wall).toFixed(2)}× banger's wall time (${f2(p.wall)} s; CPU time ${(p.cpu / b.cpu).toFixed(2)}×)` });
  }
  const cold = byName.get("pull-cold");
  const b = s(cold, "banger");
  const k = s(cold, "skopeo copy");
  const c = s(cold, "curl layer (link floor)");
  const t3 = "Pull, cold from a registry at 50 MB/s: banger (download + ext4) ≤ 1.15× `skopeo copy` (download only)";
  const blob = cold?.input.layers?.[0]?.bytes;
  const alone = blob ? ` The layer alone at 50 MB/s: ${f2(blob / 50e6)} s` : "";
  if (!ok(b) || !ok(k)) out.push({ text: t3, ok: null, detail: missing(cold, b, "skopeo copy") });
  else out.push({ text: t3, ok: b.wall / k.wall <= 1.15, detail: `banger takes ${(b.wall / k.wall).toFixed(2)}× skopeo's wall time (${f2(b.wall)} vs ${f2(k.wall)} s)${pairedDetail(cold, "banger", "skopeo copy", 1.15)}.${alone}${ok(c) ? `; curl measured ${f2(c.wall)} s` : ""}${cold?.linkRate ? `; proxy checked at ${(cold.linkRate / 1e6).toFixed(1)} MB/s` : ""}` });
  // Not one of the issue's targets: the same question asked of an image with five layers, whose
  // tail after the last byte is longer (copies out of the layers' spools, then their flush).
  const cold5 = byName.get("pull-cold-5-layers");
  const b5 = s(cold5, "banger");
  const k5 = s(cold5, "skopeo copy");
  const t5 = "Pull, cold, 5 layers at 50 MB/s (no issue target; the one-layer rule applied): banger ≤ 1.15× `skopeo copy`";
  const blobs5 = cold5?.input.layers?.reduce((n, l) => n + l.bytes, 0);
  if (!ok(b5) || !ok(k5)) out.push({ text: t5, ok: null, detail: missing(cold5, b5, "skopeo copy") });
  else out.push({ text: t5, ok: b5.wall / k5.wall <= 1.15, detail: `banger takes ${(b5.wall / k5.wall).toFixed(2)}× skopeo's wall time (${f2(b5.wall)} vs ${f2(k5.wall)} s)${pairedDetail(cold5, "banger", "skopeo copy", 1.15)}.${blobs5 ? ` The layers alone at 50 MB/s: ${f2(blobs5 / 50e6)} s` : ""}` });
  for (const name of ["pull-gzip", "pull-zstd", "pull-5-layers", "pull-cold", "pull-cold-5-layers"]) {
    const r = byName.get(name);
    const bb = s(r, "banger");
    const text = `${name}: banger peak RSS ≤ 300 MB`;
    if (!bb || !Number.isFinite(bb.rssKiB)) out.push({ text, ok: null, detail: !r ? "case not run" : !bb ? "banger not measured" : "banger did not complete" });
    else out.push({ text, ok: bb.rssKiB <= RSS_LIMIT_KIB, detail: `${((bb.rssKiB * 1024) / 1e6).toFixed(0)} MB (${mib(bb.rssKiB)} MiB)` });
    // The warm daemon's own peak: over its four warm-up pulls and the timed one (read from /proc).
    const peaks = (r?.stats?.["banger via a warm daemon"] ?? []).map((x) => x.daemonPeakRssKiB).filter((x): x is number => typeof x === "number");
    if (peaks.length) {
      const worst = Math.max(...peaks);
      out.push({ text: `${name}, through a warm daemon: the daemon's peak RSS ≤ 300 MB`, ok: worst <= RSS_LIMIT_KIB, detail: `${((worst * 1024) / 1e6).toFixed(0)} MB (${mib(worst)} MiB), the highest over ${peaks.length} run(s) of 5 pulls each` });
    }
  }
  return out;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

interface CallSummary {
  calls: number;
  atOnce: number;
  correct: number;
  median: number;
  p90: number;
  p99: number;
  max: number;
  /** The daemon's CPU per call (ms), when a daemon served them. */
  daemonCpuPerCall: number | null;
  failure?: string;
}

/** Every run's calls of one tool together. */
export function callSummary(stats: ToolStats[] | undefined): CallSummary | null {
  const runs = (stats ?? []).filter((s) => s.latenciesMs?.length);
  if (!runs.length) return null;
  const all = runs.flatMap((s) => s.latenciesMs!).sort((a, b) => a - b);
  const cpu = runs.map((s) => s.daemonCpuMs).filter((x): x is number => typeof x === "number");
  return {
    calls: all.length,
    atOnce: runs[0]!.parallel ?? 1,
    correct: runs.reduce((n, s) => n + (s.correct ?? 0), 0),
    median: median(all),
    p90: percentile(all, 0.9),
    p99: percentile(all, 0.99),
    max: all.at(-1)!,
    daemonCpuPerCall: cpu.length === runs.length ? cpu.reduce((a, b) => a + b, 0) / all.length : null,
    failure: runs.find((s) => s.failure)?.failure,
  };
}

function callTable(r: CaseResult): string[] {
  const rows = r.tools.map((t) => [t.name, callSummary(r.stats?.[t.name])] as const).filter((x): x is readonly [string, CallSummary] => x[1] !== null);
  if (!rows.length) return [];
  const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "—");
  const lines = ["| tool | calls (all runs) | at once | correct | median (ms) | p90 (ms) | p99 (ms) | max (ms) | daemon CPU per call (ms) |", "|---|---|---|---|---|---|---|---|---|"];
  for (const [name, c] of rows) {
    lines.push(`| ${name} | ${c.calls} | ${c.atOnce} | ${c.correct}/${c.calls} | ${ms(c.median)} | ${ms(c.p90)} | ${ms(c.p99)} | ${ms(c.max)} | ${c.daemonCpuPerCall === null ? "—" : c.daemonCpuPerCall.toFixed(2)} |`);
  }
  return ["Per call, from spawn to exit (`bun run --silent banger image list --json`, CLI start-up included):", "", ...lines, ""];
}

/** The daemon-pull-cold targets and the daemon-list figures. */
function daemonTargets(byName: Map<string, CaseResult>): Target[] {
  const out: Target[] = [];
  const list = byName.get("daemon-list");
  const seq = callSummary(list?.stats?.["banger"]);
  const par = callSummary(list?.stats?.["banger ×N at once"]);
  const local = callSummary(list?.stats?.["banger in-process"]);
  const t1 = "`image list` end to end through the daemon: median and p99 of the sequential calls; the calls at once all correct";
  if (!seq || !par) out.push({ text: t1, ok: null, detail: list ? "daemon calls not measured" : "case not run" });
  else {
    const parWall = summarize(list!.measurements["banger ×N at once"]);
    out.push({
      text: t1,
      ok: seq.correct === seq.calls && par.correct === par.calls,
      detail: `${seq.calls} calls one after the other: median ${seq.median.toFixed(1)} ms, p99 ${seq.p99.toFixed(1)} ms${local ? ` (in-process: median ${local.median.toFixed(1)} ms, p99 ${local.p99.toFixed(1)} ms)` : ""}; ${par.atOnce} at once: ${par.correct}/${par.calls} correct over the runs, all done in ${parWall ? f2(parWall.wall) : "—"} s (median run), per call median ${par.median.toFixed(1)} ms, p99 ${par.p99.toFixed(1)} ms`,
    });
  }
  const cold = byName.get("daemon-pull-cold");
  const s = (tool: string) => (cold ? summarize(cold.measurements[tool]) : null);
  const d = s("banger");
  const l = s("banger in-process");
  const t2 = "Cold pull through the daemon within 5% of the same pull in-process (50 MB/s registry)";
  if (!d || !l || !Number.isFinite(d.wall) || !Number.isFinite(l.wall)) out.push({ text: t2, ok: null, detail: cold ? "not both measured" : "case not run" });
  else out.push({ text: t2, ok: d.wall / l.wall <= 1.05, detail: `through the daemon ${f2(d.wall)} s, in-process ${f2(l.wall)} s: ${(d.wall / l.wall).toFixed(3)}×${pairedDetail(cold, "banger", "banger in-process", 1.05)}` });
  return out;
}

/** The daemon's own CPU and peak RSS (read from /proc by the after-script), medians over the runs. */
function daemonLine(r: CaseResult): string | null {
  const runs = (r.stats?.["banger"] ?? []).filter((s) => typeof s.daemonPeakRssKiB === "number");
  if (!runs.length) return null;
  const cpu = median(runs.map((s) => s.daemonCpuMs ?? NaN));
  const rss = median(runs.map((s) => s.daemonPeakRssKiB!));
  return `the daemon itself (not in GNU time's tree, read from /proc after each run): CPU ${Number.isFinite(cpu) ? (cpu / 1000).toFixed(2) : "—"} s after its start-up, peak RSS ${mib(rss)} MiB (medians over ${runs.length} run(s))`;
}

function perEntry(r: CaseResult, rssKiB: number): string {
  const n = r.input.entries ?? 0;
  if (!n || !Number.isFinite(rssKiB)) return "memory per entry: —";
  const idle = r.bangerIdleRssKiB ?? 0;
  const raw = (rssKiB * 1024) / n;
  const net = ((rssKiB - idle) * 1024) / n;
  return `memory per entry: ${net.toFixed(0)} bytes above banger's idle RSS (${mib(idle)} MiB), ${raw.toFixed(0)} bytes counting all of peak RSS ${mib(rssKiB)} MiB over ${n.toLocaleString("en-US")} entries`;
}

export function renderResults(results: CaseResult[], machine: MachineInfo, ctx: { quick: boolean; fixtureCache: string; workRoot: string }): string {
  const byName = new Map(results.map((r) => [r.name, r]));
  const L: string[] = [];
  L.push(ctx.quick ? "# banger benchmark results (QUICK smoke variants — not the real targets' inputs)" : "# banger benchmark results");
  L.push("");
  L.push(`Rendered ${new Date().toISOString()} by \`bun run bench${ctx.quick ? " --quick" : ""}\` (bench/run.ts). Each case below carries the date it was measured.`);
  L.push("");
  L.push("## Machine");
  L.push("");
  L.push(`- CPU: ${machine.cpu}, nproc ${machine.nproc}`);
  L.push(`- memory: ${machine.memoryGiB} GiB`);
  L.push(`- kernel: ${machine.kernel}`);
  L.push(`- bun: ${machine.bun}; e2fsprogs: ${machine.e2fsprogs}; ${machine.gnuTar}`);
  L.push(`- disk (scratch ${ctx.workRoot}): ${machine.disk}`);
  L.push("- shared machine: other engineers' tests may run concurrently, so expect some noise");
  L.push("");
  L.push("## Method");
  L.push("");
  L.push("- Every tool gets the same input in the same run and the same image size (`--size` for banger, the size argument for mkfs.ext4: banger's default rule max(1 GiB, used × 1.25)); `mkfs.ext4 -N` is raised only where its default inode count cannot hold the entries.");
  L.push("- Each measurement is one `bash -c` script under GNU time (`/usr/bin/time -f '%e %U %S %M'`): wall time, user+sys CPU of the whole process tree, peak RSS of the largest process in it. Medians over the runs; tools interleaved and their order rotated each run.");
  L.push("- The input tar is read once before the runs (warm page cache for every tool). Outputs are written to the same scratch filesystem and, unless `--no-sync`, fsynced (`sync FILE`) inside the timed command, so every tool pays for durable data (mkfs.ext4 and debugfs fsync on close anyway). Between measurements (untimed) the previous output and extracted tree are removed and a global `sync` runs, so no tool starts while the previous one's data is still being written back (since 2026-11-22 19:15 UTC).");
  L.push("- Baselines: **go-pipeline** = `tar --numeric-owner --xattrs --xattrs-include='*' -xpf` into a temp dir + `mkfs.ext4 -q -F -d DIR IMG SIZE` + a debugfs script with `sif PATH uid/gid/mode` for every entry (generated by walking the tree, bench/debugfs-script.ts) run by `debugfs -w -f`, all timed; **mkfs.ext4 -d** = the same mkfs on a tree extracted beforehand (not timed); **cat (floor)** = `cat TAR > FILE`; **pipe read (floor)** = reading the generated stream to its end through a 1 MiB pipe, as banger reads its standard input (bench/pipe-read.ts; until 2026-11-22 18:50 UTC it was `cat > /dev/null` on a 64 KiB pipe).");
  L.push("- go-pipeline's extraction step is noisy: on this host GNU tar's sys time for the Debian tree varied 0.4–3 s between runs (the host fs after deleting the previous tree); medians absorb it. debugfs cannot take names with quotes, backslashes or newlines, so the script skips those (1 in the Debian rootfs).");
  L.push("- banger's image is checked with `e2fsck -fn` after timing (not timed).");
  L.push(`- Inputs are cached in ${ctx.fixtureCache} (never committed); the 100 GiB stream is generated on the fly (bench/zero-stream.ts, 64 KiB writes) and never stored.`);
  L.push("- Pull cases (`pull-*`, bench/pull.ts): `bun run banger image pull SOURCE --name bench --quiet` with fresh XDG_STATE_HOME, XDG_CACHE_HOME, XDG_CONFIG_HOME, XDG_RUNTIME_DIR and HOME per run. Warm cases pull `oci:LAYOUT:TAG` with the blob cache filled beforehand (one untimed banger pull; its cache's blobs hardlinked into each run's cache, untimed) and an empty store; the floor decompresses every layer blob to /dev/null with the reference CLI; the pipeline is `umoci unpack` + `mkfs.ext4 -d` at the size of banger's image + the debugfs uid/gid/mode script (GNU `tar --zstd -x` instead of umoci for zstd, which Debian's umoci 0.4.7 cannot read). The cold case pulls from docker-registry on 127.0.0.1 through bench/throttle-proxy.ts (one 50 MB/s token bucket shared by all connections, 64 KiB pieces) with an empty cache, against `skopeo copy` to an OCI layout through the same proxy and `curl` of the layer blob. Layouts are built from the Debian rootfs tar by bench/oci-fixtures.ts and checked with umoci once. These cases run banger in-process (`BANGER_NO_DAEMON=1`), as they did before the daemon existed.");
  L.push("- Daemon cases (`daemon-*`, bench/daemon.ts): a daemon tool starts its daemon in the untimed setup (`banger daemon start` on the run's XDG dirs) and stops it after; GNU time sees only the client's process tree, so the daemon's CPU and peak RSS are read from /proc separately. `daemon-list` times each `bun run --silent banger image list --json` from spawn to exit (bench/list-calls.ts) and checks its output; `daemon-pull-cold` is pull-cold's pull through the daemon against the same pull with `BANGER_NO_DAEMON=1`, interleaved.");
  L.push("");
  L.push("## Targets");
  L.push("");
  for (const t of [...targets(byName), ...pullTargets(byName), ...daemonTargets(byName)]) L.push(`- ${mark(t.ok)} ${t.text} — ${t.detail}`);
  L.push("");
  for (const r of results) {
    L.push(`## ${r.title}${r.mode === "quick" ? " — quick variant" : ""}`);
    L.push("");
    L.push(`Case \`${r.name}\`, measured ${r.date.replace("T", " ").slice(0, 16)} UTC at banger commit ${r.bangerCommit ?? "?"}, ${r.runs} run(s)${r.sync ? "" : ", without fsync"}.`);
    L.push(inputLine(r));
    L.push("");
    if (r.error) {
      L.push(`**Case failed before or while measuring:** ${r.error}`);
      L.push("");
    }
    L.push(...caseTable(r));
    L.push("");
    L.push(...callTable(r));
    for (const t of r.tools) {
      const s = summarize(r.measurements[t.name]);
      if (s?.errors.length) L.push(`- **${t.name} failed** (${s.totalRuns - s.okRuns}/${s.totalRuns} runs): ${s.errors.map((e) => "`" + e.replace(/\s+/g, " ").slice(0, 400) + "`").join("; ")}`);
    }
    for (const sk of r.skipped) L.push(`- ${sk.tool}: not run — ${sk.why}`);
    if (r.fsck) L.push(`- banger image \`e2fsck -fn\`: ${r.fsck.ok ? "✓ clean" : "✗ NOT clean"} (${r.fsck.detail.replace(/\s+/g, " ").slice(0, 400)})`);
    else if (r.measurements["banger"] && r.name !== "daemon-list") L.push("- banger image `e2fsck -fn`: not checked (banger did not complete)");
    if (r.expectCheck) L.push(`- banger image, merged tree (deleted, replaced, re-added paths via debugfs): ${r.expectCheck.ok ? "✓" : "✗"} ${r.expectCheck.detail}`);
    const b = summarize(r.measurements["banger"]);
    // Not for the daemon cases: there "banger" is the client, the daemon holds the entries.
    if (b && Number.isFinite(b.rssKiB) && r.input.entries && r.input.entries > 1000 && !r.name.startsWith("daemon-")) L.push(`- ${perEntry(r, b.rssKiB)}`);
    if (r.zero) {
      const bytes = r.input.streamBytes ?? 0;
      L.push(`- zero detection: ${b && Number.isFinite(b.wall) ? (bytes / b.wall / 1e9).toFixed(2) : "—"} GB/s (${gib(bytes)} GiB in banger's wall time)`);
      L.push(`- ${r.zero.ok ? "✓" : "✗"} ${r.zero.detail}; image ${gib(r.zero.imageApparentBytes)} GiB apparent, ${(r.zero.imageHostAllocatedBytes / 2 ** 20).toFixed(1)} MiB allocated on the host`);
    }
    const daemon = daemonLine(r);
    if (daemon) L.push(`- ${daemon}`);
    for (const c of r.tools.map((t) => [t.name, callSummary(r.stats?.[t.name])] as const)) if (c[1]?.failure) L.push(`- ${c[0]}: a wrong answer: \`${c[1].failure.slice(0, 300)}\``);
    for (const n of r.notes) L.push(`- ${n}`);
    L.push("");
    L.push("<details><summary>tools</summary>");
    L.push("");
    for (const t of r.tools) L.push(`- **${t.name}**: ${t.description}`);
    L.push("");
    L.push("</details>");
    L.push("");
  }
  const missing = ["debian", "files-1m", "files-100k-one-dir", "file-8g", "zero-100g", "pull-gzip", "pull-zstd", "pull-5-layers", "pull-cold", "pull-cold-5-layers", "daemon-list", "daemon-pull-cold"].filter((n) => !byName.has(n));
  if (missing.length) {
    L.push("## Not run yet");
    L.push("");
    L.push(`Cases without results in this file: ${missing.map((n) => `\`${n}\``).join(", ")} (run \`bun run bench --case NAME\`).`);
    L.push("");
  }
  return L.join("\n");
}
