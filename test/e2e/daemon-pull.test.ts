// End to end: pulls through a real daemon process, from Debian's docker-registry on 127.0.0.1
// behind a Bun proxy that records every request and serves layer blobs from memory, slowly when
// a test needs a pull to be caught mid-download (Range requests honoured, for resumes). Covers:
// progress lines the same as in-process; different images in parallel; one image under two names
// at once (each blob downloaded once); two pulls to one name (the loser refused before it
// downloads); Ctrl-C in the CLI; a CLI killed mid-stream; the daemon killed with SIGKILL mid-pull
// (the next one reconciles, every cached blob still hashes to its name, the pull resumes); and
// SIGKILL at ten moments of a pull, each followed by the store's invariants.
// Starts: the banger CLI and daemons (child processes), docker-registry, a Bun proxy.
import { afterAll, beforeAll, expect } from "bun:test";
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { bangerPaths, daemonHealth } from "../../src/daemon/client/index.ts";
import { pidAlive } from "../../src/io/process.ts";
import { hasTool, testWith } from "../helpers/env.ts";
import { makeImage, makeLayer, type TestImage } from "../helpers/oci-images.ts";
import { forward, type Proxy, type SeenRequest } from "../helpers/oci-proxy.ts";
import { run, scratchDir } from "../helpers/oracles.ts";
import { pushImage, startRegistry, type RunningRegistry } from "../helpers/registry.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";
import { banger, cachedBlobs, ctx, listImages, pullEnv, stagingDirs, startBanger, stopDaemons, unverifiedBlobs, type CliRun, type ImageRecord, type PullEnv } from "./pull-lib.ts";

const REG = { tools: ["docker-registry"] };
const work = scratchDir("e2e-daemon-pull");
let reg: RunningRegistry | undefined;
let proxy: BlobProxy | undefined;

/** A deterministic, incompressible byte string. */
function noise(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** A small base layer with /root, and a layer holding `bytes` of noise (gzip: still ~`bytes`). */
function imageOf(name: string, bytes: number, seed: number): TestImage {
  const base = new TarBuilder();
  base.dir("etc/", { mtime: 1_700_000_000 });
  base.file("etc/hostname", `${name}\n`, { mtime: 1_700_000_000 });
  base.dir("root/", { mode: 0o700, mtime: 1_700_000_000 });
  const top = new TarBuilder();
  top.dir("data/", { mtime: 1_700_000_000 });
  top.file("data/noise.bin", noise(bytes, seed), { mtime: 1_700_000_000 });
  return makeImage({ layers: [makeLayer(base.end(), "gzip"), makeLayer(top.end(), "gzip")] });
}

const IMAGES = { a: imageOf("a", 3 << 20, 1), b: imageOf("b", 3 << 20, 2) };
const bigLayer = (img: TestImage) => img.layers[1]!;

interface BlobProxy extends Proxy {
  /** Serve blobs at 64 KiB per 50 ms (~1.3 MB/s) while true. */
  slow: boolean;
  /** Body bytes sent per blob digest. */
  sent: Map<string, number>;
}

/** The registry behind a recording proxy that serves known blobs itself (slowly on demand, with Range). */
function startBlobProxy(upstream: string, blobs: Map<string, Uint8Array>): BlobProxy {
  const seen: SeenRequest[] = [];
  const p: BlobProxy = { url: "", host: "", seen, stop: () => {}, slow: false, sent: new Map() };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(req) {
      const url = new URL(req.url);
      seen.push({ method: req.method, path: url.pathname + url.search, headers: Object.fromEntries(req.headers) });
      const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname)?.[1];
      const blob = digest ? blobs.get(digest) : undefined;
      if (req.method !== "GET" || !digest || !blob) return forward(upstream, req);
      const start = Number(/^bytes=(\d+)-$/.exec(req.headers.get("range") ?? "")?.[1] ?? 0);
      let off = start;
      const body = new ReadableStream<Uint8Array>({
        async pull(ctl) {
          if (off >= blob.length) return ctl.close();
          if (p.slow) await Bun.sleep(50);
          const chunk = blob.subarray(off, off + (p.slow ? 65536 : 1 << 20));
          off += chunk.length;
          p.sent.set(digest, (p.sent.get(digest) ?? 0) + chunk.length);
          ctl.enqueue(chunk);
        },
      });
      const headers: Record<string, string> = { "content-type": "application/octet-stream", "content-length": String(blob.length - start), "docker-content-digest": digest };
      if (start > 0) headers["content-range"] = `bytes ${start}-${blob.length - 1}/${blob.length}`;
      return new Response(body, { status: start > 0 ? 206 : 200, headers });
    },
  });
  p.url = `http://127.0.0.1:${server.port}`;
  p.host = `127.0.0.1:${server.port}`;
  p.stop = () => server.stop(true);
  return p;
}

if (hasTool("docker-registry")) {
  beforeAll(async () => {
    reg = await startRegistry();
    const blobs = new Map<string, Uint8Array>();
    for (const [name, img] of Object.entries(IMAGES)) {
      await pushImage(reg.url, `d/${name}`, img, "v1");
      for (const [d, b] of img.blobs) blobs.set(d, b);
    }
    proxy = startBlobProxy(reg.url, blobs);
  }, 60_000);
}
afterAll(async () => {
  await stopDaemons();
  proxy?.stop();
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

const ref = (name: keyof typeof IMAGES) => `${proxy!.host}/d/${name}:v1`;

/** GETs of a blob through the proxy since `from` (an index into proxy.seen). */
function blobGets(digest: string, from = 0): SeenRequest[] {
  return proxy!.seen.slice(from).filter((r) => r.method === "GET" && r.path.endsWith(`/blobs/${digest}`));
}

function logLines(e: PullEnv): { msg: string; time: string; [k: string]: unknown }[] {
  const file = bangerPaths(e.env).logPath;
  return existsSync(file) ? readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as { msg: string; time: string }) : [];
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await Bun.sleep(20);
  }
}

async function startedDaemon(e: PullEnv): Promise<number> {
  const r = await banger(["daemon", "start"], e);
  if (r.exitCode !== 0) throw new Error(`daemon start failed\n${ctx(r)}`);
  return (await daemonHealth(bangerPaths(e.env))).pid!;
}

/** What a pull must leave whatever happened: no staging, rows and dirs agree, every listed image whole, every blob verified. */
async function expectConsistent(e: PullEnv, c: string): Promise<ImageRecord[]> {
  const list = await listImages(e); // starts a daemon if none runs: it reconciles first
  expect(stagingDirs(e.state), c).toEqual([]);
  const dirs = existsSync(e.imagesDir) ? readdirSync(e.imagesDir).sort() : [];
  expect(dirs, c).toEqual(list.map((r) => r.id).sort());
  for (const r of list) {
    expect(statSync(r.rootfsPath).size, c).toBe(r.sizeBytes);
    expect(existsSync(join(e.imagesDir, r.id, "image.json")), c).toBe(true);
  }
  expect(unverifiedBlobs(e.blobCache), c).toEqual([]);
  return list;
}

/** Starts a slow pull and resolves once `bytes` of its big layer went out. */
async function pullUnderWay(e: PullEnv, name: keyof typeof IMAGES, args: string[], bytes = 256 << 10): Promise<ReturnType<typeof startBanger>> {
  const digest = bigLayer(IMAGES[name]).digest;
  const before = proxy!.sent.get(digest) ?? 0;
  const child = startBanger(["image", "pull", ref(name), ...args], e, 60_000);
  await waitFor(`${bytes} bytes of ${name}'s big layer to be sent`, () => (proxy!.sent.get(digest) ?? 0) - before >= bytes || child.proc.exitCode !== null);
  if (child.proc.exitCode !== null) throw new Error(`the pull ended before it was under way\n${ctx(await child.done)}`);
  return child;
}

/** The plain renderer's lines without what changes from run to run (times, rates). */
function progressLines(stderr: string): string[] {
  return stderr
    .trimEnd()
    .split("\n")
    .map((l) => l.replace(/ in \d+\.\d s\)/, ")"))
    .sort();
}

testWith(REG, "progress crosses the socket: the same lines as in-process, and the same record", async () => {
  proxy!.slow = false;
  const viaDaemon = pullEnv(work);
  const inProcess = pullEnv(work, { config: viaDaemon.config });
  const d = await banger(["image", "pull", ref("a"), "--name", "same", "--json"], viaDaemon);
  const l = await banger(["image", "pull", ref("a"), "--name", "same", "--json"], { ...inProcess, env: { ...inProcess.env, BANGER_NO_DAEMON: "1" } });
  expect(d.exitCode, ctx(d)).toBe(0);
  expect(l.exitCode, ctx(l)).toBe(0);
  expect(progressLines(d.stderr)).toEqual(progressLines(l.stderr));
  expect(progressLines(d.stderr)).toContain("merge");
  // The same record but for what is the store's own (id, paths, time).
  const own = ({ id: _i, rootfsPath: _r, workSeedPath: _w, createdAt: _c, ...rest }: ImageRecord) => rest;
  expect(own(JSON.parse(d.stdout) as ImageRecord)).toEqual(own(JSON.parse(l.stdout) as ImageRecord));
  // The same bytes: same layers, same key (one config dir).
  expect(run(["cmp", (JSON.parse(d.stdout) as ImageRecord).rootfsPath, (JSON.parse(l.stdout) as ImageRecord).rootfsPath]).exitCode).toBe(0);
  // Only the daemon's environment has a daemon.
  expect((await daemonHealth(bangerPaths(viaDaemon.env))).running).toBe(true);
  expect((await daemonHealth(bangerPaths(inProcess.env))).running).toBe(false);
}, 60_000);

testWith(REG, "pulls of different images run in parallel in one daemon", async () => {
  proxy!.slow = true;
  const e = pullEnv(work);
  await startedDaemon(e);
  const [a, b] = await Promise.all([banger(["image", "pull", ref("a"), "--name", "pa", "--quiet"], e, 60_000), banger(["image", "pull", ref("b"), "--name", "pb", "--quiet"], e, 60_000)]);
  expect(a.exitCode, ctx(a)).toBe(0);
  expect(b.exitCode, ctx(b)).toBe(0);
  const log = logLines(e);
  const at = (msg: string, name: string) => Date.parse(log.find((l) => l.msg === msg && l.name === name)!.time);
  // Each started before the other was done: they overlapped.
  expect(at("pull started", "pa")).toBeLessThan(at("pull done", "pb"));
  expect(at("pull started", "pb")).toBeLessThan(at("pull done", "pa"));
  expect((await expectConsistent(e, ctx(a) + ctx(b))).map((r) => r.name).sort()).toEqual(["pa", "pb"]);
}, 90_000);

testWith(REG, "one image under two names at once: both published, identical, every blob downloaded once", async () => {
  proxy!.slow = true;
  const e = pullEnv(work);
  await startedDaemon(e);
  const from = proxy!.seen.length;
  const [x, y] = await Promise.all(["n1", "n2"].map((n) => banger(["image", "pull", ref("a"), "--name", n, "--json"], e, 60_000)));
  expect(x!.exitCode, ctx(x!)).toBe(0);
  expect(y!.exitCode, ctx(y!)).toBe(0);
  for (const digest of [IMAGES.a.configDigest, ...IMAGES.a.layers.map((l) => l.digest)]) expect(blobGets(digest, from).length, digest).toBe(1);
  const [rx, ry] = [JSON.parse(x!.stdout) as ImageRecord, JSON.parse(y!.stdout) as ImageRecord];
  expect(run(["cmp", rx.rootfsPath, ry.rootfsPath]).exitCode).toBe(0);
  await expectConsistent(e, ctx(x!) + ctx(y!));
}, 90_000);

testWith(REG, "two pulls to one name: one wins, the other is refused at once and downloads nothing", async () => {
  proxy!.slow = true;
  const e = pullEnv(work);
  await startedDaemon(e);
  const from = proxy!.seen.length;
  const [ra, rb] = await Promise.all([banger(["image", "pull", ref("a"), "--name", "taken", "--quiet"], e, 60_000), banger(["image", "pull", ref("b"), "--name", "taken", "--quiet"], e, 60_000)]);
  const [win, lose, loser] = ra.exitCode === 0 ? [ra, rb, IMAGES.b] : [rb, ra, IMAGES.a];
  expect(win.exitCode, ctx(win)).toBe(0);
  expect(lose.exitCode, ctx(lose)).toBe(1);
  expect(lose.stderr).toMatch(/^banger image pull: image "taken" is being pulled right now \(from \S+\); wait for that pull to finish, or pick another --name\n$/);
  // Refused before the winner was done, and before any of its own blobs was asked for.
  expect(lose.ms).toBeLessThan(win.ms - 500);
  for (const digest of [loser.configDigest, ...loser.layers.map((l) => l.digest)]) expect(blobGets(digest, from)).toEqual([]);
  expect((await expectConsistent(e, ctx(win) + ctx(lose))).map((r) => r.name)).toEqual(["taken"]);
}, 90_000);

/** A pull of `name` interrupted by `how` in the CLI: nothing left, the daemon lives on. */
async function interruptedPull(how: "SIGINT" | "SIGKILL"): Promise<{ e: PullEnv; r: CliRun; daemonPid: number }> {
  proxy!.slow = true;
  const e = pullEnv(work);
  const daemonPid = await startedDaemon(e);
  const child = await pullUnderWay(e, "b", ["--name", "cut", "--quiet"]);
  const t0 = Date.now();
  child.proc.kill(how);
  const r = await child.done;
  const c = ctx(r);
  expect(r.timedOut, c).toBe(false);
  expect(Date.now() - t0, c).toBeLessThan(10_000);
  // The daemon aborts the pull: its operation ends, and with it every trace of the pull.
  await waitFor("the daemon to end the pull", async () => (await daemonHealth(bangerPaths(e.env))).running && (await fetchOperations(e)) === 0);
  expect(proxy!.sent.get(bigLayer(IMAGES.b).digest)! < bigLayer(IMAGES.b).blob.length * 3, c).toBe(true);
  expect(cachedBlobs(e.blobCache), c).not.toContain(bigLayer(IMAGES.b).digest.slice(7));
  await expectConsistent(e, c);
  expect(await listImages(e)).toEqual([]);
  expect((await daemonHealth(bangerPaths(e.env))).pid).toBe(daemonPid);
  const failed = logLines(e).find((l) => l.msg === "pull failed");
  expect(failed, c).toMatchObject({ name: "cut", cancelled: "the client disconnected" });
  return { e, r, daemonPid };
}

async function fetchOperations(e: PullEnv): Promise<number> {
  const r = await banger(["daemon", "status", "--json"], e);
  return (JSON.parse(r.stdout) as { operations: number }).operations;
}

testWith(REG, "Ctrl-C in the CLI during a pull: exit 130 once the daemon has cleaned up, nothing left", async () => {
  const { r } = await interruptedPull("SIGINT");
  expect(r.exitCode, ctx(r)).toBe(130);
  expect(r.stderr).toBe(`banger image pull: image "cut": pull of ${ref("b")} interrupted; nothing was kept\n`);
}, 90_000);

testWith(REG, "a client killed mid-stream: its pull is cancelled in the daemon, nothing left", async () => {
  const { r } = await interruptedPull("SIGKILL");
  expect(r.signalCode, ctx(r)).toBe("SIGKILL");
}, 90_000);

testWith(REG, "the daemon killed with SIGKILL mid-pull: the next one reconciles, blobs verified, the pull resumes", async () => {
  proxy!.slow = true;
  const e = pullEnv(work);
  const pid = await startedDaemon(e);
  const child = await pullUnderWay(e, "a", ["--name", "resumed", "--quiet"], 512 << 10);
  process.kill(pid, "SIGKILL");
  const r = await child.done;
  expect(r.exitCode, ctx(r)).toBe(1);
  expect(r.stderr).toBe("banger image pull: the banger daemon closed the connection before the pull ended (killed?); `banger daemon logs` may say why\n");
  await waitFor("the killed daemon to be gone", () => !pidAlive(pid));
  // What the kill left: a staging dir, a partial download; no blob under a wrong name.
  expect(stagingDirs(e.state).length).toBe(1);
  expect(readdirSync(join(e.blobCache, "ingest")).some((f) => f.endsWith(".partial"))).toBe(true);
  expect(unverifiedBlobs(e.blobCache)).toEqual([]);
  // The next command starts a daemon, which reconciles before it answers.
  expect(await expectConsistent(e, ctx(r))).toEqual([]);
  const rec = logLines(e).filter((l) => l.msg === "reconciled the store").at(-1)!;
  expect((rec.stagingRemoved as string[]).length).toBe(1);
  // The pull again: the big layer resumes where the killed daemon's download stopped.
  proxy!.slow = false;
  const from = proxy!.seen.length;
  const again = await banger(["image", "pull", ref("a"), "--name", "resumed", "--quiet"], e, 60_000);
  expect(again.exitCode, ctx(again)).toBe(0);
  const gets = blobGets(bigLayer(IMAGES.a).digest, from);
  expect(gets.length).toBe(1);
  expect(Number(/bytes=(\d+)-/.exec(gets[0]!.headers.range ?? "")?.[1] ?? 0)).toBeGreaterThanOrEqual(256 << 10);
  expect((await expectConsistent(e, ctx(again))).map((x) => x.name)).toEqual(["resumed"]);
  expect(readdirSync(join(e.blobCache, "ingest"))).toEqual([]);
}, 120_000);

testWith(REG, "SIGKILL at ten moments of a pull: never a half image listed, never an unverified blob", async () => {
  proxy!.slow = false;
  const e = pullEnv(work);
  const outcomes: string[] = [];
  // How long a whole pull takes here, its CLI's start included (~200 ms on the 2-core test
  // machine): the kills land at fractions of it, before, during resolve, download, build and
  // publish, and after the end, whatever the machine's speed.
  await startedDaemon(e);
  const whole = await banger(["image", "pull", ref("a"), "--name", "timed", "--quiet"], e, 60_000);
  expect(whole.exitCode, ctx(whole)).toBe(0);
  await banger(["daemon", "stop"], e, 30_000);
  rmSync(e.blobCache, { recursive: true, force: true });
  const fractions = [0.1, 0.3, 0.5, 0.65, 0.75, 0.82, 0.88, 0.93, 0.97, 1.1];
  for (const [i, delay] of fractions.map((f) => Math.round(f * whole.ms)).entries()) {
    const pid = await startedDaemon(e);
    const name = `k${i}`;
    const child = startBanger(["image", "pull", ref(i % 2 ? "a" : "b"), "--name", name, "--quiet"], e, 60_000);
    await Bun.sleep(delay);
    process.kill(pid, "SIGKILL");
    const r = await child.done;
    await waitFor("the killed daemon to be gone", () => !pidAlive(pid));
    const list = await expectConsistent(e, `after a kill ${delay} ms into the pull; ${ctx(r)}`);
    const published = list.some((x) => x.name === name);
    // Published means the CLI either printed nothing wrong or lost the connection after the row.
    outcomes.push(`${delay} ms: ${published ? "published" : "nothing kept"} (exit ${r.exitCode})`);
    if (r.exitCode === 0) expect(published, ctx(r)).toBe(true);
    await banger(["daemon", "stop"], e, 30_000);
    // A fresh cache each round, so that every round downloads again.
    rmSync(e.blobCache, { recursive: true, force: true });
  }
  console.log(`kill -9 outcomes (a whole pull took ${Math.round(whole.ms)} ms): ${outcomes.join("; ")}`);
}, 180_000);
