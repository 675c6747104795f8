// `bun run banger` goes through src/cli/launch.ts, which runs a bytecode bundle of src/ kept in
// node_modules/.cache/banger/. What must hold: the bundle is built on first use, an edited
// source is never run stale (the fingerprint sees it), and where no bundle can be built the
// sources run. Each test works on its own copy of the checkout (src/, package files, and a
// node_modules of links to the real packages), so its cache is its own.
import { afterAll, expect, test } from "bun:test";
import { cpSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeTar } from "../helpers/oci-images.ts";
import { scratchDir } from "../helpers/oracles.ts";
import { REPO_ROOT } from "./lib.ts";

const work = scratchDir("launch");
afterAll(() => rmSync(work, { recursive: true, force: true }));

function checkoutCopy(name: string): string {
  const dir = join(work, name);
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  cpSync(join(REPO_ROOT, "src"), join(dir, "src"), { recursive: true });
  cpSync(join(REPO_ROOT, "assets"), join(dir, "assets"), { recursive: true });
  for (const f of ["package.json", "package-lock.json", "tsconfig.json", "bunfig.toml"]) cpSync(join(REPO_ROOT, f), join(dir, f));
  for (const entry of readdirSync(join(REPO_ROOT, "node_modules"))) {
    if (entry !== ".cache") symlinkSync(join(REPO_ROOT, "node_modules", entry), join(dir, "node_modules", entry));
  }
  return dir;
}

async function banger(cwd: string, args: string[], env: Record<string, string> = {}, stdin?: Blob) {
  const p = Bun.spawn([process.execPath, "run", "--silent", "banger", ...args], { cwd, env: { ...process.env, ...env }, stdin: stdin ?? "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

function bundles(dir: string): string[] {
  try {
    return readdirSync(join(dir, "node_modules", ".cache", "banger")).filter((n) => n.startsWith("cli-"));
  } catch {
    return [];
  }
}

const SUMMARY = "write an ext4 image from a rootfs tar, in-process (no mkfs, no root)";

test("the bundle is built on first use, and an edited source is rebuilt, never run stale", async () => {
  const dir = checkoutCopy("edit");
  const first = await banger(dir, ["--help"]);
  expect(first.code, first.stderr).toBe(0);
  expect(first.stdout).toContain(SUMMARY);
  expect(bundles(dir)).toHaveLength(1);
  const bundle = join(dir, "node_modules", ".cache", "banger", bundles(dir)[0]!, "main.js");
  expect(readFileSync(bundle, "utf8")).toContain(SUMMARY);

  // Same size, same mtime as before but one character changed would slip by; a real edit
  // changes the mtime, which is what editors and git do.
  const command = join(dir, "src", "cli", "commands", "make-ext4.ts");
  writeFileSync(command, readFileSync(command, "utf8").replace(SUMMARY, "EDITED SUMMARY"));
  const second = await banger(dir, ["--help"]);
  expect(second.code, second.stderr).toBe(0);
  expect(second.stdout).toContain("EDITED SUMMARY");
  expect(readFileSync(bundle, "utf8")).toContain("EDITED SUMMARY");

  // A file whose content is unchanged but whose mtime moved also rebuilds (cheap, and safe).
  const later = new Date(Date.now() + 5000);
  utimesSync(command, later, later);
  const third = await banger(dir, ["--help"]);
  expect(third.code, third.stderr).toBe(0);
  expect(third.stdout).toContain("EDITED SUMMARY");
}, 60_000);

test("two bundles: commands start from the client, which takes what it left out from the full one", async () => {
  const dir = checkoutCopy("two");
  const help = await banger(dir, ["--help"]);
  expect(help.code, help.stderr).toBe(0);
  const cache = join(dir, "node_modules", ".cache", "banger", bundles(dir)[0]!);
  const client = readFileSync(join(cache, "client.js"), "utf8");
  const full = readFileSync(join(cache, "main.js"), "utf8");
  // A line only the ext4 writer prints: in the full bundle, not in the client.
  const writerOnly = "file data streamed while reading";
  expect(full).toContain(writerOnly);
  expect(client).not.toContain(writerOnly);
  expect(client).toContain(SUMMARY); // every command's definition, for --help
  expect(client.length).toBeLessThan(full.length / 3);
  // `kernel list` imports the kernel service on demand: left out of the client, it comes from
  // the full bundle, in the same process.
  const home = join(work, "two-home");
  const env = { HOME: home, XDG_STATE_HOME: `${home}/state`, XDG_CACHE_HOME: `${home}/cache`, XDG_CONFIG_HOME: `${home}/config`, XDG_RUNTIME_DIR: `${home}/run` };
  const kernels = await banger(dir, ["kernel", "list", "--json"], env);
  expect(kernels.code, kernels.stderr).toBe(0);
  expect(JSON.parse(kernels.stdout)).toEqual([]);
  // An image command from the client starts its daemon (from the full bundle) and asks it.
  const images = await banger(dir, ["image", "list", "--json"], env);
  expect(images.code, images.stderr).toBe(0);
  expect(JSON.parse(images.stdout)).toEqual([]);
  // A pull through it and the listing need nothing of the full bundle: with main.js moved
  // away (the daemon has it loaded), they still work.
  const fullJs = join(cache, "main.js");
  renameSync(fullJs, `${fullJs}.away`);
  try {
    const tar = join(home, "small.tar");
    writeFileSync(tar, makeTar([{ name: "etc/", dir: true }, { name: "etc/hostname", content: "box\n" }]));
    const pull = await banger(dir, ["image", "pull", `rootfs:${tar}`, "--name", "small", "--quiet", "--platform", "linux/amd64"], env);
    expect(pull.code, pull.stderr).toBe(0);
    // Standard input goes to the daemon as the request's body: the client reads it.
    const piped = await banger(dir, ["image", "pull", "-", "--name", "piped", "--quiet"], env, Bun.file(tar));
    expect(piped.code, piped.stderr).toBe(0);
    const listed = await banger(dir, ["image", "list", "--json"], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((r) => r.name).sort()).toEqual(["piped", "small"]);
  } finally {
    renameSync(`${fullJs}.away`, fullJs);
  }
  const status = await banger(dir, ["daemon", "status", "--json"], env);
  expect(status.code, status.stderr).toBe(0);
  expect(JSON.parse(status.stdout)).toMatchObject({ running: true });
  const stop = await banger(dir, ["daemon", "stop"], env);
  expect(stop.code, stop.stderr).toBe(0);
}, 60_000);

test("a new source file changes the fingerprint too", async () => {
  const dir = checkoutCopy("add");
  expect((await banger(dir, ["--help"])).code).toBe(0);
  const fingerprintFile = join(dir, "node_modules", ".cache", "banger", bundles(dir)[0]!, "fingerprint");
  const before = readFileSync(fingerprintFile, "utf8");
  writeFileSync(join(dir, "src", "cli", "unused-extra.ts"), "export const x = 1;\n");
  expect((await banger(dir, ["--help"])).code).toBe(0);
  expect(readFileSync(fingerprintFile, "utf8")).not.toBe(before);
}, 60_000);

test("an edited guest file (assets/, embedded in the bundle) rebuilds it too", async () => {
  const dir = checkoutCopy("asset");
  expect((await banger(dir, ["--help"])).code).toBe(0);
  const fingerprintFile = join(dir, "node_modules", ".cache", "banger", bundles(dir)[0]!, "fingerprint");
  const before = readFileSync(fingerprintFile, "utf8");
  writeFileSync(join(dir, "assets", "guest", "usr", "local", "sbin", "poweroff"), "#!/bin/sh\n# edited\n");
  expect((await banger(dir, ["--help"])).code).toBe(0);
  expect(readFileSync(fingerprintFile, "utf8")).not.toBe(before);
}, 60_000);

test("where no bundle can be built, the sources run", async () => {
  const dir = checkoutCopy("readonly");
  // A file where the cache directory would go: nothing can be created under it.
  writeFileSync(join(dir, "node_modules", ".cache"), "not a directory");
  const r = await banger(dir, ["--help"]);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain(SUMMARY);
  expect(bundles(dir)).toHaveLength(0);
}, 60_000);

test("BANGER_FROM_SOURCE=1 runs the sources without building", async () => {
  const dir = checkoutCopy("from-source");
  const r = await banger(dir, ["--help"], { BANGER_FROM_SOURCE: "1" });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain(SUMMARY);
  expect(bundles(dir)).toHaveLength(0);
}, 60_000);
