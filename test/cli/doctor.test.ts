// `banger doctor` through a real process (`bun src/cli/main.ts`), with every XDG dir in a temp
// dir: the JSON has every check, the exit code follows the failures, the environment (XDG dirs,
// PATH) reaches the checks, and the text is aligned and colored only on a terminal.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DOCTOR_CHECKS } from "../../src/doctor/checks.ts";
import { testWith } from "../helpers/env.ts";

const REPO_ROOT = path.resolve(import.meta.dir, "../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-cli-doctor-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const baseEnv = {
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: path.join(tmp, "home"),
  XDG_STATE_HOME: path.join(tmp, "state"),
  XDG_CACHE_HOME: path.join(tmp, "cache"),
  XDG_CONFIG_HOME: path.join(tmp, "config"),
  XDG_RUNTIME_DIR: path.join(tmp, "run"),
};
fs.mkdirSync(baseEnv.HOME);
fs.mkdirSync(baseEnv.XDG_RUNTIME_DIR);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function banger(args: string[], env: Record<string, string> = baseEnv): Promise<Run> {
  const p = Bun.spawn([process.execPath, "src/cli/main.ts", ...args], { cwd: REPO_ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

interface Report {
  id: string;
  status: string;
  summary: string;
  fix?: string;
}

function parseReports(stdout: string): Report[] {
  const parsed: unknown = JSON.parse(stdout);
  expect(Array.isArray(parsed)).toBe(true);
  return parsed as Report[];
}

const IDS = DOCTOR_CHECKS.map((c) => c.id);

test("--json: an array with every check, well formed, and the exit code follows the failures", async () => {
  const r = await banger(["doctor", "--json"]);
  expect(r.stderr).toBe("");
  const reports = parseReports(r.stdout);
  expect(reports.map((x) => x.id)).toEqual(IDS);
  for (const x of reports) {
    expect(["pass", "warn", "fail"]).toContain(x.status);
    expect(x.summary).toBeString();
    expect(Object.keys(x).every((k) => ["id", "status", "summary", "fix"].includes(k))).toBe(true);
    if (x.status === "pass") expect(x.fix).toBeUndefined();
    else expect(x.fix).toBeString();
  }
  // This host's KVM, VMM and devices are what they are; the code must agree with them.
  expect(r.code).toBe(reports.some((x) => x.status === "fail") ? 1 : 0);
  // The temp dirs do not exist yet: each can be created, and none was.
  for (const id of ["state-dir", "cache-dir", "config-dir", "runtime-dir"]) expect(reports.find((x) => x.id === id)!.status).toBe("pass");
  expect(reports.find((x) => x.id === "state-dir")!.summary).toContain(path.join(tmp, "state", "banger"));
  expect(fs.existsSync(path.join(tmp, "state"))).toBe(false);
  expect(fs.readdirSync(baseEnv.XDG_RUNTIME_DIR)).toEqual([]);
  // No daemon here.
  expect(reports.find((x) => x.id === "daemon")).toMatchObject({ status: "warn", summary: expect.stringContaining("daemon not running") });
});

test("a state dir that cannot be created fails the check and exits 1", async () => {
  const blocker = path.join(tmp, "not-a-dir");
  fs.writeFileSync(blocker, "");
  const r = await banger(["doctor", "--json"], { ...baseEnv, XDG_STATE_HOME: path.join(blocker, "state") });
  expect(r.code).toBe(1);
  const state = parseReports(r.stdout).find((x) => x.id === "state-dir")!;
  expect(state.status).toBe("fail");
  expect(state.summary).toContain(`${blocker} is not a directory`);
  expect(state.fix).toContain("XDG_STATE_HOME");
});

test("the daemon check reaches a daemon on $XDG_RUNTIME_DIR/banger/banger.sock", async () => {
  const runtime = path.join(tmp, "run-daemon");
  fs.mkdirSync(path.join(runtime, "banger"), { recursive: true });
  const socket = path.join(runtime, "banger", "banger.sock");
  const server = Bun.serve({ unix: socket, fetch: () => Response.json({ version: "9.9.9-test" }) });
  try {
    const r = await banger(["doctor", "--json"], { ...baseEnv, XDG_RUNTIME_DIR: runtime });
    expect(parseReports(r.stdout).find((x) => x.id === "daemon")).toEqual({ id: "daemon", status: "pass", summary: `daemon 9.9.9-test answers on ${socket}` });
  } finally {
    server.stop(true);
  }
});

test("the VMM is looked up on the PATH banger was given", async () => {
  const bin = path.join(tmp, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, "firecracker"), "#!/bin/sh\n", { mode: 0o755 });
  const found = parseReports((await banger(["doctor", "--json"], { ...baseEnv, PATH: bin })).stdout).find((x) => x.id === "vmm")!;
  expect(found).toMatchObject({ status: "pass", summary: `firecracker (${path.join(bin, "firecracker")})` });
  const empty = path.join(tmp, "empty-bin");
  fs.mkdirSync(empty);
  const missing = parseReports((await banger(["doctor", "--json"], { ...baseEnv, PATH: empty })).stdout).find((x) => x.id === "vmm")!;
  expect(missing.status).toBe("warn");
});

test("text: one aligned line per check, no color into a pipe, same exit code as --json", async () => {
  const r = await banger(["doctor"]);
  expect(r.stdout).not.toContain("\x1b");
  const lines = r.stdout.trimEnd().split("\n");
  expect(lines).toHaveLength(IDS.length);
  const width = Math.max(...IDS.map((id) => id.length));
  lines.forEach((line, i) => {
    expect(line).toMatch(/^(pass|warn|fail)  /);
    expect(line.slice(6, 6 + width + 2)).toBe(IDS[i]!.padEnd(width) + "  ");
    expect(line[6 + width + 2]).not.toBe(" ");
    if (!line.startsWith("pass")) expect(line).toContain("  fix: ");
  });
  expect(r.code).toBe(lines.some((l) => l.startsWith("fail")) ? 1 : 0);
});

testWith({ tools: ["script"] }, "on a terminal the status words are colored, unless NO_COLOR is set", async () => {
  // script(1) runs the command on a pseudo-terminal, so stdout is a TTY as in a shell.
  const cmd = `${process.execPath} src/cli/main.ts doctor`;
  const onTty = async (env: Record<string, string>) => {
    const p = Bun.spawn(["script", "-qec", cmd, "/dev/null"], { cwd: REPO_ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const [out] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    return out;
  };
  expect(await onTty(baseEnv)).toMatch(/\x1b\[3[123]m(pass|warn|fail)\x1b\[0m  state-space/);
  expect(await onTty({ ...baseEnv, NO_COLOR: "1" })).not.toContain("\x1b[3");
});

test("--help, and arguments it does not take", async () => {
  const help = await banger(["doctor", "--help"]);
  expect(help.code).toBe(0);
  expect(help.stdout).toStartWith("usage: banger doctor [--json]");
  expect(help.stdout).toContain("--json");
  expect((await banger(["--help"])).stdout).toMatch(/^ {2}doctor +check this host/m);
  const extra = await banger(["doctor", "now"]);
  expect(extra.code).toBe(2);
  expect(extra.stderr).toContain('unexpected argument "now"');
  expect((await banger(["doctor", "--verbose"])).code).toBe(2);
});
