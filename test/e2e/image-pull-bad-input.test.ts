// End to end: `banger image pull` refuses bad sources and bad layers with a non-zero exit and ONE
// stderr line naming the image (and the layer and the entry where there is one), and leaves
// nothing: no image row (`image list --json` is []), no `*.staging` dir, no unverified blob in
// the cache, nothing in its working directory or TMPDIR, the source's files unchanged.
// Starts: the banger CLI (child processes), Debian's docker-registry on 127.0.0.1 (plain and
// htpasswd), Bun proxies in front of it only to watch requests and to serve a blob slowly.
// The full-disk case mounts a 2 MiB tmpfs as the state dir (root).
import { afterAll, beforeAll, expect } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hasTool, testWith } from "../helpers/env.ts";
import { makeImage, makeLayer, sha256, writeOciLayout, type TestImage, type TestLayer } from "../helpers/oci-images.ts";
import { startProxy, type Proxy } from "../helpers/oci-proxy.ts";
import { scratchDir } from "../helpers/oracles.ts";
import { pushPullFixture } from "../helpers/pull-fixtures.ts";
import { pushImage, startRegistry, type RunningRegistry } from "../helpers/registry.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";
import { banger, cachedBlobs, ctx, listImages, pullEnv, stagingDirs, startBanger, treeListing, unverifiedBlobs, type CliRun, type PullEnv, stopDaemon, stopDaemons } from "./pull-lib.ts";

const REG = { tools: ["docker-registry"] };
const work = scratchDir("e2e-pull-bad");
let reg: RunningRegistry | undefined;
let authReg: RunningRegistry | undefined;
const proxies: Proxy[] = [];
const CREDS = { user: "banger", password: "right-password" };

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

/** A good base layer, then the layer `build` makes (so the error must name the second one). */
function twoLayers(build: (t: TarBuilder) => void, compression: "gzip" | "zstd" | "none" = "gzip"): TestImage {
  const base = new TarBuilder();
  base.dir("etc/", { mtime: 1_700_000_000 });
  base.file("etc/hostname", "bad-input\n", { mtime: 1_700_000_000 });
  const top = new TarBuilder();
  build(top);
  return makeImage({ layers: [makeLayer(base.end(), "gzip"), makeLayer(top.end(), compression)] });
}

const bad = {
  // The tar of the second layer stops inside etc/big's data (the blob itself is intact).
  truncated: (() => {
    const t = new TarBuilder();
    t.file("etc/small", "fine\n");
    t.file("etc/big", noise(20_000, 7));
    const whole = t.end();
    const tar = whole.subarray(0, 1024 + 512 + 9000);
    const base = new TarBuilder();
    base.file("etc/hostname", "bad-input\n");
    return makeImage({ layers: [makeLayer(base.end(), "gzip"), makeLayer(tar, "gzip")] });
  })(),
  dotdot: twoLayers((t) => t.file("etc/../../escape", "x\n")),
  absHardlink: twoLayers((t) => t.hardlink("etc/evil", "/../../../host/secret")),
  whiteoutRoot: twoLayers((t) => t.file(".wh..", "")),
  hardlinkDir: twoLayers((t) => {
    t.dir("etc/");
    t.hardlink("etc/dirlink", "etc");
  }),
  corrupt: twoLayers((t) => t.file("etc/corrupt-me", noise(64 * 1024, 3)), "none"),
  big: twoLayers((t) => t.file("big.bin", noise(8 << 20, 11)), "none"),
  fits: twoLayers((t) => t.file("other/file", "for the name-taken case\n")),
};

if (hasTool("docker-registry")) {
  beforeAll(async () => {
    reg = await startRegistry();
    await pushPullFixture(reg.url, "pull/app", "v1");
    for (const [name, img] of Object.entries(bad)) await pushImage(reg.url, `bad/${name.toLowerCase()}`, img, "v1");
    if (hasTool("htpasswd")) {
      authReg = await startRegistry({ htpasswd: CREDS });
      await pushPullFixture(authReg.url, "pull/app", "v1", CREDS);
    }
    // Flip bytes in the middle of the corrupt image's layer, in the registry's own storage:
    // the real registry then serves bytes that do not match the digest it is asked for.
    const hex = bad.corrupt.layers[1]!.digest.slice(7);
    const data = join(reg.dir, "data", "docker", "registry", "v2", "blobs", "sha256", hex.slice(0, 2), hex, "data");
    const bytes = readFileSync(data);
    for (let i = 0; i < 16; i++) bytes[30_000 + i] = bytes[30_000 + i]! ^ 0xff;
    writeFileSync(data, bytes);
  }, 60_000);
}
afterAll(async () => {
  await stopDaemons();
  for (const p of proxies) p.stop();
  await reg?.stop();
  await authReg?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** The layer named in the message: its digest or its diff_id, 12 hex digits at least. */
function namesLayer(stderr: string, l: TestLayer): boolean {
  return stderr.includes(l.digest.slice(7, 19)) || stderr.includes(l.diffId.slice(7, 19));
}

/** The store, cache and surroundings show no trace of the failed pull. */
async function expectNothingLeft(e: PullEnv, r: CliRun, watched: Map<string, string[]>): Promise<void> {
  const c = ctx(r);
  expect(stagingDirs(e.state), `staging left; ${c}`).toEqual([]);
  expect(existsSync(e.imagesDir) ? readdirSync(e.imagesDir) : [], `image dirs left; ${c}`).toEqual([]);
  expect(unverifiedBlobs(e.blobCache), `unverified blobs in the cache; ${c}`).toEqual([]);
  expect(readdirSync(e.cwd), `written to the working dir; ${c}`).toEqual([]);
  expect(readdirSync(e.tmp), `written to TMPDIR; ${c}`).toEqual([]);
  for (const [dir, before] of watched) expect(treeListing(dir), `${dir} changed; ${c}`).toEqual(before);
  expect(await listImages(e), `an image row exists; ${c}`).toEqual([]);
}

/**
 * Pulls `source` (with --quiet), expecting a refusal: non-zero exit, one stderr line holding
 * every string of `names` and matching `patterns`, the layer named when given, nothing left.
 */
async function expectRefused(
  source: string,
  want: { names?: string[]; patterns?: RegExp[]; layer?: TestLayer; args?: string[]; env?: PullEnv; watch?: string[] },
): Promise<CliRun> {
  const e = want.env ?? pullEnv(work);
  const watched = new Map((want.watch ?? []).map((d) => [d, treeListing(d)] as const));
  const r = await banger(["image", "pull", source, "--quiet", "--name", "refused", ...(want.args ?? [])], e);
  const c = ctx(r);
  expect(r.timedOut, c).toBe(false);
  expect(r.exitCode, c).not.toBe(0);
  const line = r.stderr.trim();
  expect(line.length, c).toBeGreaterThan(0);
  expect(line.split("\n").length, `stderr must be one line; ${c}`).toBe(1);
  expect(r.stdout, c).toBe("");
  for (const n of want.names ?? []) expect(line, c).toContain(n);
  for (const p of want.patterns ?? []) expect(line, c).toMatch(p);
  if (want.layer) expect(namesLayer(line, want.layer), `the layer (${want.layer.digest}) is not named; ${c}`).toBe(true);
  await expectNothingLeft(e, r, watched);
  return r;
}

testWith(REG, "a missing repository", async () => {
  const src = `${reg!.host}/no/such-repo:v1`;
  await expectRefused(src, { names: [src], patterns: [/not found|unknown|does not exist|no such/i] });
}, 60_000);

testWith(REG, "a missing tag", async () => {
  const src = `${reg!.host}/pull/app:no-such-tag`;
  await expectRefused(src, { names: [src], patterns: [/not found|unknown|does not exist|no such/i] });
}, 60_000);

testWith(REG, "a platform the index does not offer (--platform linux/s390x)", async () => {
  const src = `${reg!.host}/pull/app:v1`;
  await expectRefused(src, { names: [src, "linux/s390x"], args: ["--platform", "linux/s390x"] });
}, 60_000);

testWith({ tools: ["docker-registry", "htpasswd"] }, "wrong credentials against an htpasswd registry", async () => {
  const e = pullEnv(work);
  mkdirSync(join(e.home, ".docker"));
  const auth = Buffer.from(`${CREDS.user}:wrong-password`).toString("base64");
  writeFileSync(join(e.home, ".docker", "config.json"), JSON.stringify({ auths: { [authReg!.host]: { auth } } }));
  const src = `${authReg!.host}/pull/app:v1`;
  await expectRefused(src, { env: e, names: [src], patterns: [/401|unauthori[sz]ed|credential|authenticat|denied/i] });
}, 60_000);

testWith(REG, "a corrupt layer (bytes flipped: digest mismatch)", async () => {
  const src = `${reg!.host}/bad/corrupt:v1`;
  // The fixture itself: the registry serves the layer at full length, with other bytes.
  const layer = bad.corrupt.layers[1]!;
  const served = new Uint8Array(await (await fetch(`${reg!.url}/v2/bad/corrupt/blobs/${layer.digest}`)).arrayBuffer());
  expect(served.length).toBe(layer.blob.length);
  expect(sha256(served)).not.toBe(layer.digest);
  await expectRefused(src, { names: [src], layer: bad.corrupt.layers[1]!, patterns: [/digest|sha256|mismatch|verif/i] });
}, 60_000);

testWith(REG, "a truncated layer (the tar ends inside a member's data)", async () => {
  const src = `${reg!.host}/bad/truncated:v1`;
  await expectRefused(src, { names: [src, "etc/big"], layer: bad.truncated.layers[1]!, patterns: [/truncat|unexpected end|short|incomplete/i] });
}, 60_000);

testWith(REG, "a layer with a '..' member", async () => {
  const src = `${reg!.host}/bad/dotdot:v1`;
  await expectRefused(src, { names: [src, "escape"], layer: bad.dotdot.layers[1]!, patterns: [/\.\./] });
}, 60_000);

testWith(REG, "an absolute hardlink target outside the tree", async () => {
  const src = `${reg!.host}/bad/abshardlink:v1`;
  await expectRefused(src, { names: [src, "etc/evil"], layer: bad.absHardlink.layers[1]!, patterns: [/secret|\.\./] });
}, 60_000);

testWith(REG, "a whiteout of /", async () => {
  const src = `${reg!.host}/bad/whiteoutroot:v1`;
  await expectRefused(src, { names: [src, ".wh.."], layer: bad.whiteoutRoot.layers[1]! });
}, 60_000);

testWith(REG, "a hardlink to a directory", async () => {
  const src = `${reg!.host}/bad/hardlinkdir:v1`;
  await expectRefused(src, { names: [src, "etc/dirlink"], layer: bad.hardlinkDir.layers[1]!, patterns: [/director/i] });
}, 60_000);

testWith(REG, "a name already taken is refused before anything is downloaded", async () => {
  const e = pullEnv(work);
  // The name's first owner: a plain rootfs tar.
  const t = new TarBuilder();
  t.dir("etc/");
  t.file("etc/hostname", "first\n");
  const tarPath = join(e.root, "first.tar");
  writeFileSync(tarPath, t.end());
  const firstRun = await banger(["image", "pull", `rootfs:${tarPath}`, "--name", "taken", "--quiet"], e);
  expect(firstRun.exitCode, `precondition: the first pull must succeed; ${ctx(firstRun)}`).toBe(0);
  const before = await listImages(e);
  expect(before.map((i) => i.name)).toEqual(["taken"]);
  // Same store, an empty cache, a registry behind a proxy that records every request.
  const e2 = pullEnv(work, { state: e.state });
  const proxy = startProxy(reg!.url);
  proxies.push(proxy);
  const src = `${proxy.host}/bad/fits:v1`;
  const r = await banger(["image", "pull", src, "--name", "taken", "--quiet"], e2);
  const c = ctx(r);
  expect(r.exitCode, c).not.toBe(0);
  expect(r.stderr.trim().split("\n").length, c).toBe(1);
  expect(r.stderr, c).toContain("taken");
  expect(proxy.seen.filter((s) => s.path.includes("/blobs/")), c).toEqual([]);
  expect(cachedBlobs(e2.blobCache), c).toEqual([]);
  expect(stagingDirs(e.state), c).toEqual([]);
  expect(await listImages(e)).toEqual(before);
}, 60_000);

testWith(REG, "SIGINT while a large layer downloads: the pull stops and leaves nothing", async () => {
  const bigLayer = bad.big.layers[1]!;
  let sent = 0;
  const proxy = startProxy(reg!.url, async (req, url) => {
    if (req.method !== "GET" || !url.pathname.endsWith(`/blobs/${bigLayer.digest}`)) return undefined;
    // Served slowly: 64 KiB every 50 ms (8 MiB would take ~6.5 s).
    let off = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        if (off >= bigLayer.blob.length) return ctl.close();
        await Bun.sleep(50);
        const chunk = bigLayer.blob.subarray(off, off + 65536);
        off += chunk.length;
        sent += chunk.length;
        ctl.enqueue(chunk);
      },
    });
    return new Response(body, { status: 200, headers: { "content-type": "application/octet-stream", "content-length": String(bigLayer.blob.length), "docker-content-digest": bigLayer.digest } });
  });
  proxies.push(proxy);
  const e = pullEnv(work);
  const src = `${proxy.host}/bad/big:v1`;
  const child = startBanger(["image", "pull", src, "--quiet", "--name", "interrupted"], e, 40_000);
  const deadline = Date.now() + 20_000;
  while (sent < 256 * 1024 && Date.now() < deadline && child.proc.exitCode === null) await Bun.sleep(20);
  if (sent < 256 * 1024) {
    child.proc.kill("SIGKILL");
    throw new Error(`the pull never started downloading the large layer (${sent} bytes sent)\n${ctx(await child.done)}`);
  }
  const t0 = Date.now();
  child.proc.kill("SIGINT");
  const r = await child.done;
  const c = ctx(r);
  expect(r.timedOut, `did not stop after SIGINT; ${c}`).toBe(false);
  expect(Date.now() - t0, c).toBeLessThan(10_000);
  expect(r.exitCode !== 0 || r.signalCode !== null, c).toBe(true);
  expect(sent, `the whole layer was sent before the pull stopped; ${c}`).toBeLessThan(bigLayer.blob.length);
  // No blob of the interrupted layer became visible; nothing else left.
  expect(cachedBlobs(e.blobCache), c).not.toContain(bigLayer.digest.slice(7));
  await expectNothingLeft(e, r, new Map());
}, 60_000);

testWith({ tools: ["mount", "umount"], root: true }, "a full disk under the state dir (2 MiB tmpfs): refused, nothing left", async () => {
  const dir = join(work, "full");
  mkdirSync(join(dir, "state"), { recursive: true });
  const m = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", join(dir, "state")]);
  const fullEnvs: PullEnv[] = [];
  expect(m.exitCode, m.stderr.toString()).toBe(0);
  try {
    // 4 MiB of file data that must be written into the image, from an oci: layout.
    const img = twoLayers((t) => t.file("data/noise", noise(4 << 20, 5)), "gzip");
    const layout = join(dir, "layout");
    writeOciLayout(layout, [{ tag: "v1", image: img }]);
    const e = pullEnv(work, { state: join(dir, "state") });
    fullEnvs.push(e);
    const r = await expectRefused(`oci:${layout}:v1`, { env: e, names: [layout], patterns: [/no space|ENOSPC/i], watch: [layout] });
    // Only the store's database (and the daemon's log) may remain on the tmpfs.
    const left = treeListing(e.state).map((l) => l.split(" ")[0]!).filter((p) => !/^banger\/?$|^banger\/banger\.db(-wal|-shm|-journal)?$|^banger\/images\/?$|^banger\/daemon\.log$/.test(p));
    expect(left, ctx(r)).toEqual([]);
  } finally {
    // Its daemon holds the store open on the tmpfs: stopped first, or the unmount is refused.
    for (const e of fullEnvs) await stopDaemon(e);
    Bun.spawnSync(["umount", join(dir, "state")]);
  }
}, 60_000);
