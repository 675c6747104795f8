// `banger version`, `--version` and `-V` through a real process: the release from package.json,
// the daemon protocol and Bun's version, as text or JSON; no daemon asked, nothing written.
import { expect, test } from "bun:test";
import path from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { PROTOCOL } from "../../src/daemon/protocol.ts";

const REPO_ROOT = path.resolve(import.meta.dir, "../..");

async function banger(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // XDG dirs that do not exist: the command must not need (or make) any of them.
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: "/nonexistent/home", XDG_STATE_HOME: "/nonexistent/state", XDG_RUNTIME_DIR: "/nonexistent/run" };
  const p = Bun.spawn([process.execPath, "src/cli/main.ts", ...args], { cwd: REPO_ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

test("--version, -V and `version` print the release, the daemon protocol and Bun's version", async () => {
  const line = `banger ${pkg.version} (daemon protocol ${PROTOCOL}, Bun ${Bun.version})\n`;
  for (const args of [["--version"], ["-V"], ["version"]]) {
    const r = await banger(args);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: line, stderr: "" });
  }
});

test("--json for scripts; a stray argument is a usage error", async () => {
  const r = await banger(["version", "--json"]);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ version: pkg.version, protocol: PROTOCOL, bun: Bun.version });
  const bad = await banger(["--version", "extra"]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toStartWith('banger version: unexpected argument "extra"');
});

test("the top-level help lists it", async () => {
  expect((await banger(["--help"])).stdout).toMatch(/^ {2}version +print banger's version/m);
});
