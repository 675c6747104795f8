// End to end: the daemon's life with real processes (`bun src/cli/main.ts daemon ...` and image
// commands that start it), each test in its own XDG dirs: start, status, a second daemon, stop;
// a stale socket; a CLI and a daemon of different versions; 100 `image list` calls at once
// against a running daemon and 20 with none running (one daemon starts); the socket removed;
// the idle exit. Starts: the banger CLI and daemons (child processes); nothing else.
import { afterAll, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bangerPaths, daemonHealth } from "../../src/daemon/client/index.ts";
import { readLockInfo } from "../../src/daemon/runtime-dir.ts";
import { isLocked } from "../../src/io/flock.ts";
import { SqliteImageStore, type ImageRecord } from "../../src/daemon/store.ts";
import { pidAlive } from "../../src/io/process.ts";
import { scratchDir } from "../helpers/oracles.ts";
import { banger, ctx, pullEnv, startBanger, stopDaemons, type PullEnv } from "./pull-lib.ts";

const work = scratchDir("e2e-daemon");
afterAll(async () => {
  await stopDaemons();
  rmSync(work, { recursive: true, force: true });
});

/** The daemon log's lines, parsed. */
function logLines(e: PullEnv): { msg: string; [k: string]: unknown }[] {
  const file = bangerPaths(e.env).logPath;
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as { msg: string });
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await Bun.sleep(25);
  }
}

/** A record as a pull would have made it (rows for list tests; no image file needed for list). */
function fakeRecord(i: number, e: PullEnv): ImageRecord {
  const id = `cccc${String(i).padStart(8, "0")}`;
  return {
    id,
    name: `img-${i}`,
    source: `rootfs:/nowhere/${i}.tar`,
    digest: "sha256:" + id.padEnd(64, "0"),
    platform: "linux/amd64",
    rootfsPath: join(e.imagesDir, id, "rootfs.ext4"),
    sizeBytes: 4096,
    createdAt: `2026-01-01T00:00:0${i}.000Z`,
    env: [],
    cmd: null,
    entrypoint: null,
    workingDir: "",
    user: "",
    init: null,
    kernelCmdline: null,
    injected: [],
    workSeedPath: null,
    kernelRef: null,
  };
}

/** Rows with their image files in place, so the daemon's reconcile keeps them. */
function seedStore(e: PullEnv, n: number): ImageRecord[] {
  const paths = bangerPaths(e.env);
  const store = SqliteImageStore.open(paths.dbPath);
  const recs: ImageRecord[] = [];
  for (let i = 0; i < n; i++) {
    const r = fakeRecord(i, e);
    Bun.spawnSync(["mkdir", "-p", join(e.imagesDir, r.id)]);
    writeFileSync(r.rootfsPath, "");
    store.insert(r);
    recs.push(r);
  }
  store.close();
  return recs;
}

test("start, status, a second daemon refused, start again is a no-op, stop", async () => {
  const e = pullEnv(work);
  const paths = bangerPaths(e.env);
  const s1 = await banger(["daemon", "start"], e);
  expect(s1.exitCode, ctx(s1)).toBe(0);
  expect(s1.stdout).toMatch(/^banger daemon started: pid \d+, version \S+ \(protocol \d+\), socket /);
  const h = await daemonHealth(paths);
  expect(h).toMatchObject({ running: true, socket: paths.socketPath });
  // The socket is 0600 in a 0700 directory.
  expect(statSync(paths.socketPath).mode & 0o777).toBe(0o600);
  expect(statSync(paths.runtimeDir).mode & 0o777).toBe(0o700);
  expect(readLockInfo(paths.lockPath)).toMatchObject({ pid: h.pid, socket: paths.socketPath });

  const again = await banger(["daemon", "start"], e);
  expect(again.stdout, ctx(again)).toStartWith(`banger daemon already running: pid ${h.pid}`);
  const second = await banger(["daemon", "run"], e, 20_000);
  expect(second.exitCode, ctx(second)).toBe(1);
  expect(second.stderr).toMatch(new RegExp(`^banger daemon run: a banger daemon is already running \\(pid ${h.pid}, version .*\\) on ${paths.socketPath}; \`banger daemon stop\` stops it\\n$`));
  // The first one still answers, on the same socket.
  expect((await daemonHealth(paths)).pid).toBe(h.pid);

  const status = await banger(["daemon", "status", "--json"], e);
  expect(status.exitCode).toBe(0);
  expect(JSON.parse(status.stdout)).toMatchObject({ running: true, pid: h.pid, idleExitMs: null, log: paths.logPath });

  const stop = await banger(["daemon", "stop"], e, 30_000);
  expect(stop.stdout, ctx(stop)).toBe(`stopped banger daemon (pid ${h.pid})\n`);
  expect(pidAlive(h.pid!)).toBe(false);
  expect(existsSync(paths.socketPath)).toBe(false);
  expect(isLocked(paths.lockPath)).toBe(false);
  const down = await banger(["daemon", "status"], e);
  expect(down.exitCode).toBe(3);
  expect((await banger(["daemon", "stop"], e)).stdout).toBe(`no banger daemon is running (socket ${paths.socketPath})\n`);
  const msgs = logLines(e).map((l) => l.msg);
  expect(msgs).toEqual(["daemon starting", "reconciled the store", "daemon listening", "daemon stopping", "daemon stopped"]);
}, 60_000);

test("a stale socket left by a killed daemon is replaced by the next one, which says so in its log", async () => {
  const e = pullEnv(work);
  const paths = bangerPaths(e.env);
  seedStore(e, 2);
  const first = await banger(["daemon", "start"], e);
  expect(first.exitCode, ctx(first)).toBe(0);
  const pid = (await daemonHealth(paths)).pid!;
  process.kill(pid, "SIGKILL");
  await waitFor("the killed daemon to be gone", () => !pidAlive(pid));
  // What kill -9 leaves: the socket file, nobody listening; the lock file, nobody holding it.
  expect(existsSync(paths.socketPath)).toBe(true);
  expect(isLocked(paths.lockPath)).toBe(false);
  expect((await daemonHealth(paths)).running).toBe(false);
  // Any command starts a new daemon, which replaces the socket.
  const list = await banger(["image", "list", "--json"], e);
  expect(list.exitCode, ctx(list)).toBe(0);
  expect((JSON.parse(list.stdout) as ImageRecord[]).map((r) => r.name)).toEqual(["img-0", "img-1"]);
  const h = await daemonHealth(paths);
  expect(h.running).toBe(true);
  expect(h.pid).not.toBe(pid);
  expect(logLines(e).filter((l) => l.msg === "replaced a stale socket left by a daemon that is gone")).toHaveLength(1);
}, 60_000);

test("a CLI and a daemon of different versions: one clear line, and `daemon stop` restarts it", async () => {
  const e = pullEnv(work);
  const old = await banger(["daemon", "start"], { ...e, env: { ...e.env, BANGER_DAEMON_VERSION: "0.0.1" } });
  expect(old.stdout, ctx(old)).toContain("version 0.0.1 (protocol 1)");
  const pkg = JSON.parse(readFileSync(join(import.meta.dir, "../../package.json"), "utf8")) as { version: string };
  for (const args of [["image", "list"], ["image", "show", "x"], ["image", "pull", "rootfs:/nowhere.tar"]]) {
    const r = await banger(args, e);
    expect(r.exitCode, ctx(r)).toBe(1);
    expect(r.stderr).toBe(`banger: the running daemon is version 0.0.1 (protocol 1), this CLI is ${pkg.version} (protocol 1); restart it with "banger daemon stop" (it restarts on the next command)\n`);
  }
  const status = await banger(["daemon", "status"], e);
  expect(status.stdout).toContain(`version 0.0.1 (protocol 1) (this CLI is ${pkg.version} (protocol 1))`);
  const stop = await banger(["daemon", "stop"], e, 30_000);
  expect(stop.exitCode, ctx(stop)).toBe(0);
  const list = await banger(["image", "list", "--json"], e);
  expect(list.exitCode, ctx(list)).toBe(0);
  expect((await daemonHealth(bangerPaths(e.env))).version).toBe(pkg.version);
}, 60_000);

test("100 `image list` calls at once against a running daemon: all answer, all the same, all correct", async () => {
  const e = pullEnv(work);
  const recs = seedStore(e, 5);
  expect((await banger(["daemon", "start"], e)).exitCode).toBe(0);
  const runs = await Promise.all(Array.from({ length: 100 }, () => banger(["image", "list", "--json"], e, 120_000)));
  const bad = runs.filter((r) => r.exitCode !== 0 || r.timedOut);
  expect(bad.map((r) => ctx(r)).slice(0, 3)).toEqual([]);
  for (const r of runs) expect(JSON.parse(r.stdout)).toEqual(recs);
  // Still the one daemon.
  expect(logLines(e).filter((l) => l.msg === "daemon starting")).toHaveLength(1);
}, 180_000);

test("20 commands at once with no daemon running start exactly one", async () => {
  const e = pullEnv(work);
  const recs = seedStore(e, 3);
  const runs = await Promise.all(Array.from({ length: 20 }, () => banger(["image", "list", "--json"], e, 120_000)));
  for (const r of runs) {
    expect(r.exitCode, ctx(r)).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(recs);
  }
  expect(logLines(e).filter((l) => l.msg === "daemon starting")).toHaveLength(1);
  const h = await daemonHealth(bangerPaths(e.env));
  expect(h.running).toBe(true);
  // Started on demand: it stops by itself after 15 minutes without a client.
  const status = JSON.parse((await banger(["daemon", "status", "--json"], e)).stdout) as { idleExitMs: number };
  expect(status.idleExitMs).toBe(15 * 60_000);
}, 180_000);

test("the daemon stops by itself when its socket is removed, and when idle past --idle-exit", async () => {
  const e = pullEnv(work);
  const paths = bangerPaths(e.env);
  expect((await banger(["daemon", "start"], e)).exitCode).toBe(0);
  const pid = (await daemonHealth(paths)).pid!;
  rmSync(paths.runtimeDir, { recursive: true, force: true });
  await waitFor("the daemon to notice its socket is gone", () => !pidAlive(pid), 10_000);
  expect(logLines(e).at(-1)).toMatchObject({ msg: "daemon stopped", reason: "its socket was removed or replaced" });

  const idle = await banger(["daemon", "start", "--idle-exit", "1s"], e);
  expect(idle.exitCode, ctx(idle)).toBe(0);
  const pid2 = (await daemonHealth(paths)).pid!;
  // A client keeps it alive while it comes; then it goes.
  for (let i = 0; i < 4; i++) {
    await Bun.sleep(400);
    expect((await daemonHealth(paths)).pid).toBe(pid2);
  }
  await waitFor("the idle daemon to exit", () => !pidAlive(pid2), 10_000);
  expect(logLines(e).at(-1)).toMatchObject({ msg: "daemon stopped", reason: "idle for 1 s" });
  expect(existsSync(paths.socketPath)).toBe(false);
}, 60_000);

test("a runtime dir that is not ours, or a path too long for a socket, is refused with the fix", async () => {
  const e = pullEnv(work);
  const long = join(e.root, "r".repeat(120));
  const r = await banger(["daemon", "run"], { ...e, env: { ...e.env, XDG_RUNTIME_DIR: long } });
  expect(r.exitCode).toBe(1);
  expect(r.stderr).toContain("unix sockets take at most 107; set XDG_RUNTIME_DIR to a shorter directory");
  // Only root can give a directory away; elsewhere the part below would start a real daemon.
  if (process.getuid?.() !== 0) return;
  const shared = join(e.root, "shared");
  Bun.spawnSync(["mkdir", "-p", join(shared, "banger")]);
  Bun.spawnSync(["chown", "65534", join(shared, "banger")]);
  const o = await startBanger(["daemon", "run"], { ...e, env: { ...e.env, XDG_RUNTIME_DIR: shared } }, 20_000).done;
  expect(o.exitCode, ctx(o)).toBe(1);
  expect(o.stderr).toContain("belongs to uid 65534, not to you (uid 0)");
}, 60_000);

test("daemon logs: for people, --json as written, --lines, and -f follows until Ctrl-C", async () => {
  const e = pullEnv(work);
  const none = await banger(["daemon", "logs"], e);
  expect(none.stderr).toBe(`nothing logged yet at ${bangerPaths(e.env).logPath}\n`);
  expect((await banger(["daemon", "start"], e)).exitCode).toBe(0);
  const text = await banger(["daemon", "logs"], e);
  expect(text.stdout).toMatch(/^\S+Z info  daemon starting pid=\d+ version=\S+ protocol=1 socket=\S+ idleExitMs=null\n/);
  const json = await banger(["daemon", "logs", "--json", "--lines", "1"], e);
  expect(JSON.parse(json.stdout)).toMatchObject({ level: "info", msg: "daemon listening" });
  const follow = startBanger(["daemon", "logs", "-f", "--lines", "0"], e, 30_000);
  await Bun.sleep(500);
  expect((await banger(["daemon", "stop"], e, 30_000)).exitCode).toBe(0);
  await waitFor("the follower to print the stop", () => logLines(e).some((l) => l.msg === "daemon stopped"));
  await Bun.sleep(600); // two of its polls
  follow.proc.kill("SIGINT");
  const f = await follow.done;
  expect(f.exitCode, ctx(f)).toBe(0);
  expect(f.stdout.trimEnd().split("\n").map((l) => l.replace(/^\S+ \S+ +/, "").split(" ").slice(0, 2).join(" "))).toEqual(["daemon stopping", "daemon stopped"]);
}, 60_000);
