#!/usr/bin/env bun
// `image list` end to end, many times: each call is `bun run --silent banger image list --json`
// from the checkout (CLI start-up included), timed from spawn to exit, its output compared with
// the expected records. Sequential (--parallel 1) or all at once (--parallel N = --calls).
// Writes the per-call latencies, how many were correct, and the CPU the daemon used meanwhile
// (GNU time sees only this process tree, not the daemon's) to --out as JSON; exits 1 if any
// call was wrong.
//   bun bench/list-calls.ts --calls 200 --parallel 1 --expect FILE --out FILE
// Environment: REPO (the checkout), BUN, and the XDG dirs of the store to list.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ListCallStats {
  calls: number;
  parallel: number;
  latenciesMs: number[];
  correct: number;
  /** The first wrong answer, for the report. */
  failure?: string;
  /** CPU (user+sys) of the daemon during the calls; null in-process. */
  daemonCpuMs: number | null;
}

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i < 0 ? undefined : process.argv[i + 1];
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

const CLK_TCK = 100;

/** utime + stime of the daemon of this environment, in ms (null when none runs). */
function daemonCpuMs(): number | null {
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (!runtime || process.env.BANGER_NO_DAEMON) return null;
  const lock = join(runtime, "banger", "daemon.lock");
  if (!existsSync(lock)) return null;
  try {
    const pid = (JSON.parse(readFileSync(lock, "utf8")) as { pid: number }).pid;
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

async function one(repo: string, bun: string, expected: string): Promise<{ ms: number; ok: boolean; why?: string }> {
  const t0 = performance.now();
  const p = Bun.spawn([bun, "run", "--silent", "banger", "image", "list", "--json"], { cwd: repo, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const ms = performance.now() - t0;
  if (code !== 0) return { ms, ok: false, why: `exit ${code}: ${err.trim().slice(0, 300)}` };
  if (out.trim() !== expected) return { ms, ok: false, why: `unexpected output: ${out.slice(0, 200)}` };
  return { ms, ok: true };
}

async function main(): Promise<number> {
  const calls = Number(arg("calls"));
  const parallel = Number(arg("parallel"));
  const expected = readFileSync(arg("expect"), "utf8").trim();
  const repo = process.env.REPO!;
  const bun = process.env.BUN ?? process.execPath;
  const cpu0 = daemonCpuMs();
  const results: { ms: number; ok: boolean; why?: string }[] = [];
  for (let done = 0; done < calls; ) {
    const batch = Math.min(parallel, calls - done);
    results.push(...(await Promise.all(Array.from({ length: batch }, () => one(repo, bun, expected)))));
    done += batch;
  }
  const cpu1 = daemonCpuMs();
  const stats: ListCallStats = {
    calls,
    parallel,
    latenciesMs: results.map((r) => Math.round(r.ms * 1000) / 1000),
    correct: results.filter((r) => r.ok).length,
    failure: results.find((r) => !r.ok)?.why,
    daemonCpuMs: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null,
  };
  writeFileSync(arg("out"), JSON.stringify(stats));
  if (stats.correct !== calls) {
    console.error(`${calls - stats.correct} of ${calls} calls were wrong; first: ${stats.failure}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) process.exitCode = await main();
