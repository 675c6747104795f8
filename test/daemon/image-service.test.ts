// ImageService publish mechanics with real sources (rootfs tar files, an OCI layout, a
// registry reference pointed at a local HTTP server that counts requests), a real sqlite store
// and real directories. The builder is passed in: one that writes a small file (the real
// buildRootfs is tested on its own), one that fails midway, one that waits for the abort.
import { afterAll, beforeEach, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { BuildRequest, BuildResult, RootfsBuilderFn } from "../../src/daemon/build-image.ts";
import type { PullEvent } from "../../src/daemon/events.ts";
import { ImageError, ImageNotFoundError, ImagePullAbortedError, ImageService } from "../../src/daemon/image-service.ts";
import { defaultImageName, openSource, sanitizeName } from "../../src/daemon/image-names.ts";
import { bangerPaths, type BangerPaths } from "../../src/daemon/paths.ts";
import { SqliteImageStore, type ImageRecord } from "../../src/daemon/store.ts";
import { BlobCache } from "../../src/oci/index.ts";
import { testWith } from "../helpers/env.ts";
import { makeImage, makeLayer, makeTar, writeOciLayout } from "../helpers/oci-images.ts";
import { pushImage, startRegistry } from "../helpers/registry.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-images-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const tarFile = path.join(tmp, "alpine.tar");
fs.writeFileSync(tarFile, makeTar([{ name: "etc/", dir: true }, { name: "etc/hostname", content: "box\n" }]));
const layoutDir = path.join(tmp, "layout");
writeOciLayout(layoutDir, [
  { tag: "v1", image: makeImage({ layers: [makeLayer(makeTar([{ name: "hello", content: "hi" }]), "gzip")], env: ["PATH=/bin", "A=1"] }) },
]);

/** Reads every layer (as the real builder does) and writes a small "image". */
const smallBuilder: RootfsBuilderFn = async (req) => {
  let bytes = 0;
  for (let i = 0; i < req.image.layers.length; i++) for await (const c of req.image.openLayer(i)) bytes += c.length;
  req.progress?.({ type: "phase", phase: "write", detail: `${bytes} bytes` });
  fs.writeFileSync(req.out, `image of ${bytes} tar bytes`);
  return { sizeBytes: fs.statSync(req.out).size, blocksUsed: 1, inodesUsed: 11, uuid: "00000000-0000-0000-0000-000000000000" };
};

const failingBuilder: RootfsBuilderFn = async (req) => {
  fs.writeFileSync(req.out, "half an image");
  throw new Error(`layer 0 (${req.image.layers[0]!.digest}): entry "etc/hostname": invented failure`);
};

let builderStarted: () => void = () => {};
const waitingBuilder: RootfsBuilderFn = (req: BuildRequest) =>
  new Promise<BuildResult>((_, reject) => {
    fs.writeFileSync(req.out, "partial");
    req.signal!.addEventListener("abort", () => reject(req.signal!.reason), { once: true });
    builderStarted();
  });

let paths: BangerPaths;
let store: SqliteImageStore;
let cache: BlobCache;
let n = 0;
beforeEach(() => {
  const home = path.join(tmp, `home${n++}`);
  paths = bangerPaths({ HOME: home });
  store?.close();
  store = SqliteImageStore.open(paths.dbPath);
  cache = new BlobCache(paths.blobCacheDir);
});

function service(build: RootfsBuilderFn, log?: (m: string) => void): ImageService {
  return new ImageService({ paths, store, cache, build, log, now: () => new Date("2026-03-04T05:06:07Z") });
}

/** Everything in the images dir (staging dirs included), sorted. */
function imagesDirListing(): string[] {
  return fs.existsSync(paths.imagesDir) ? fs.readdirSync(paths.imagesDir).sort() : [];
}

test("a pull publishes <images>/<id>/ with rootfs.ext4 and image.json, then the row; nothing else is left", async () => {
  const events: PullEvent[] = [];
  const rec = await service(smallBuilder).pull({ source: `rootfs:${tarFile}`, progress: (e) => events.push(e) });
  expect(rec.name).toBe("alpine");
  expect(rec.id).toMatch(/^[0-9a-f]{12}$/);
  expect(rec.source).toBe(`rootfs:${tarFile}`);
  expect(rec.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(rec.rootfsPath).toBe(path.join(paths.imagesDir, rec.id, "rootfs.ext4"));
  expect(rec.createdAt).toBe("2026-03-04T05:06:07.000Z");
  expect(fs.readFileSync(rec.rootfsPath, "utf8")).toBe(`image of ${fs.statSync(tarFile).size} tar bytes`);
  expect(rec.sizeBytes).toBe(fs.statSync(rec.rootfsPath).size);
  expect(JSON.parse(fs.readFileSync(path.join(paths.imagesDir, rec.id, "image.json"), "utf8"))).toEqual(rec);
  expect(fs.readdirSync(path.join(paths.imagesDir, rec.id)).sort()).toEqual(["image.json", "rootfs.ext4"]);
  expect(imagesDirListing()).toEqual([rec.id]);
  expect(store.list()).toEqual([rec]);
  // Events: our resolve and publish phases around the source's and the builder's.
  const kinds = events.map((e) => (e.type === "phase" ? `phase:${e.phase}` : e.type));
  expect(kinds[0]).toBe("phase:resolve");
  expect(kinds).toContain("layer");
  expect(kinds.indexOf("phase:write")).toBeLessThan(kinds.indexOf("phase:publish"));
  expect(kinds.at(-1)).toBe("phase:publish");
});

test("an OCI layout pull records the image config flat and the platform", async () => {
  const rec = await service(smallBuilder).pull({ source: `oci:${layoutDir}:v1` });
  expect(rec.name).toBe("layout-v1");
  expect(rec.source).toBe(`oci:${layoutDir}:v1`);
  expect(rec.platform).toBe("linux/amd64");
  expect(rec.env).toEqual(["PATH=/bin", "A=1"]);
  expect(rec.cmd).toEqual(["/bin/sh"]);
  expect(rec.entrypoint).toBeNull();
  expect(rec.workingDir).toBe("");
  expect(rec.user).toBe("");
  expect(service(smallBuilder).show(rec.id.slice(0, 6))).toEqual(rec);
});

test("a failing build leaves no staging dir and no row, and its error names the image, layer and entry", async () => {
  let err: unknown;
  try {
    await service(failingBuilder).pull({ source: `rootfs:${tarFile}`, name: "broken" });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ImageError);
  expect((err as Error).message).toMatch(/^image "broken": pulling rootfs:\S+: layer 0 \(sha256:[0-9a-f]{64}\): entry "etc\/hostname": invented failure$/);
  expect(imagesDirListing()).toEqual([]);
  expect(store.list()).toEqual([]);
});

test("an abort during the build leaves nothing, and says the pull was interrupted", async () => {
  const ac = new AbortController();
  const started = new Promise<void>((r) => (builderStarted = r));
  const pulling = service(waitingBuilder).pull({ source: `rootfs:${tarFile}`, name: "cut", signal: ac.signal });
  await started;
  expect(imagesDirListing()).toEqual([expect.stringMatching(/^[0-9a-f]{12}\.staging$/)]);
  ac.abort();
  const err = await pulling.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ImagePullAbortedError);
  expect((err as Error).message).toBe(`image "cut": pull of rootfs:${tarFile} interrupted; nothing was kept`);
  expect(imagesDirListing()).toEqual([]);
  expect(store.list()).toEqual([]);
});

test("an abort while standard input is still being read answers at once and removes the spool", async () => {
  const ac = new AbortController();
  let firstChunk!: () => void;
  const gotChunk = new Promise<void>((r) => (firstChunk = r));
  // A stdin that sends one chunk and then stays open until well after the abort (it ends
  // then only so that the spool closes its file before the test ends).
  let endStdin!: () => void;
  const stdinEnded = new Promise<void>((r) => (endStdin = r));
  async function* stdin(): AsyncGenerator<Uint8Array> {
    yield new Uint8Array(512);
    firstChunk();
    await stdinEnded;
  }
  const svc = new ImageService({ paths, store, cache, build: smallBuilder, sourceOptions: { stdin: stdin() } });
  const pulling = svc.pull({ source: "-", signal: ac.signal });
  await gotChunk;
  // The spool lives in the staging dir, unlinked: an open descriptor of a deleted file there.
  const [staging] = imagesDirListing();
  const stagingDir = path.join(paths.imagesDir, staging!);
  const openSpools = () =>
    fs.readdirSync("/proc/self/fd").filter((fd) => {
      try {
        const link = fs.readlinkSync(`/proc/self/fd/${fd}`);
        return link.startsWith(`${stagingDir}/`) && link.includes(".spool-") && link.endsWith(" (deleted)");
      } catch {
        return false;
      }
    });
  expect(openSpools().length).toBe(1);
  ac.abort();
  expect(await pulling.catch((e: unknown) => e)).toBeInstanceOf(ImagePullAbortedError);
  expect(imagesDirListing()).toEqual([]);
  expect(store.list()).toEqual([]);
  endStdin();
  await Bun.sleep(50);
  expect(imagesDirListing()).toEqual([]);
  expect(openSpools()).toEqual([]);
});

test("a taken name is refused before the source is contacted: no request, no blob", async () => {
  let requests = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch() {
      requests++;
      return new Response("no", { status: 404 });
    },
  });
  try {
    const svc = service(smallBuilder);
    const ref = `127.0.0.1:${server.port}/x/y:tag`;
    await svc.pull({ source: `rootfs:${tarFile}`, name: "y-tag" });
    const err = await svc.pull({ source: ref }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^image "y-tag" already exists \(id [0-9a-f]{12}, from rootfs:.*\); remove it with `banger image rm y-tag` or pick another --name$/);
    expect(requests).toBe(0);
    expect(fs.existsSync(paths.blobCacheDir) ? fs.readdirSync(path.join(paths.blobCacheDir, "blobs", "sha256")) : []).toEqual([]);
    // The same pull under a free name does reach the server (and fails there), so the count above means something.
    const other = await svc.pull({ source: ref, name: "other" }).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(ImageError);
    expect(requests).toBeGreaterThan(0);
    expect(store.list().map((r) => r.name)).toEqual(["y-tag"]);
    expect(imagesDirListing()).toEqual([store.list()[0]!.id]);
  } finally {
    server.stop(true);
  }
});

test("two pulls to one name at once: the second is refused before it reads its source; the name is free again after", async () => {
  let requests = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch() {
      requests++;
      return new Response("no", { status: 404 });
    },
  });
  try {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: RootfsBuilderFn = async (req) => {
      await gate;
      return smallBuilder(req);
    };
    const svc = service(slow);
    const first = svc.pull({ source: `rootfs:${tarFile}`, name: "shared" });
    await Bun.sleep(20);
    const err = await svc.pull({ source: `127.0.0.1:${server.port}/x/y:tag`, name: "shared" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as Error).message).toBe(`image "shared" is being pulled right now (from rootfs:${tarFile}); wait for that pull to finish, or pick another --name`);
    expect(requests).toBe(0);
    release();
    expect((await first).name).toBe("shared");
    // Failed pulls give their name back too.
    await svc.pull({ source: `rootfs:${path.join(tmp, "missing.tar")}`, name: "again" }).catch(() => {});
    expect((await svc.pull({ source: `rootfs:${tarFile}`, name: "again" })).name).toBe("again");
  } finally {
    server.stop(true);
  }
});

test("per request: relative paths are the request's cwd's, and - reads the request's stdin", async () => {
  const svc = service(smallBuilder);
  const rel = await svc.pull({ source: `rootfs:${path.basename(tarFile)}`, cwd: path.dirname(tarFile), name: "rel" });
  expect(rel.source).toBe(`rootfs:${tarFile}`);
  const layout = await svc.pull({ source: `oci:${path.basename(layoutDir)}:v1`, cwd: path.dirname(layoutDir), name: "lay" });
  expect(layout.source).toBe(`oci:${layoutDir}:v1`);
  async function* body(): AsyncGenerator<Uint8Array> {
    yield new Uint8Array(fs.readFileSync(tarFile));
  }
  const piped = await svc.pull({ source: "-", stdin: body(), name: "piped" });
  expect(piped.source).toBe("-");
  expect(fs.readFileSync(piped.rootfsPath, "utf8")).toBe(fs.readFileSync(rel.rootfsPath, "utf8"));
});

test("bad names are refused with the reason", async () => {
  for (const name of ["Upper", "-dash", "a/b", "x".repeat(65), ""]) {
    const err = await service(smallBuilder).pull({ source: `rootfs:${tarFile}`, name }).catch((e: unknown) => e);
    expect((err as Error).message).toStartWith(`invalid image name "${name}": `);
  }
  expect(imagesDirListing()).toEqual([]);
});

test("a missing source file is one clear error and leaves nothing", async () => {
  const missing = path.join(tmp, "nope.tar");
  const err = await service(smallBuilder).pull({ source: `rootfs:${missing}` }).catch((e: unknown) => e);
  expect((err as Error).message).toStartWith(`image "nope": rootfs:${missing}: cannot read`);
  expect((err as Error).message).not.toContain("\n");
  expect(imagesDirListing()).toEqual([]);
});

test("default names from sources", () => {
  const name = (src: string, id = "0123456789ab") => defaultImageName(openSource(src, {}).source, id);
  expect(name("debian:bookworm")).toBe("debian-bookworm");
  expect(name("docker.io/library/debian:bookworm")).toBe("debian-bookworm");
  expect(name("debian")).toBe("debian-latest");
  expect(name("127.0.0.1:5000/x/y:tag")).toBe("y-tag");
  expect(name(`ghcr.io/a/b@sha256:${"c".repeat(64)}`)).toBe(`b-${"c".repeat(12)}`);
  expect(name("rootfs:/x/alpine.tar")).toBe("alpine");
  expect(name("rootfs:/x/Alpine Minirootfs.tar.gz")).toBe("alpine-minirootfs");
  expect(name(`oci:${layoutDir}`)).toBe("layout");
  expect(name(`oci:${layoutDir}:V1`)).toBe("layout-v1");
  expect(name("docker-archive:/x/app.tar")).toBe("app");
  expect(name("-")).toBe("stdin-01234567");
  expect(sanitizeName("..")).toBe("");
  expect(name("rootfs:/x/....tar")).toBe("image-01234567");
  expect(openSource("rootfs:rel.tar", {}).normalized).toBe(`rootfs:${path.resolve("rel.tar")}`);
  expect(openSource("-", {}).normalized).toBe("-");
});

test("show, remove and ls errors: unknown names and paths", async () => {
  const svc = service(smallBuilder);
  expect(() => svc.show("ghost")).toThrow(ImageNotFoundError);
  expect(() => svc.show("ghost")).toThrow('image "ghost" not found; `banger image list` shows the images there are');
  expect(svc.remove("ghost")).rejects.toThrow(ImageNotFoundError);
  const rec = await svc.pull({ source: `rootfs:${tarFile}` });
  // smallBuilder writes no ext4, so the reader's refusal is what comes back, named.
  expect(() => svc.ls("alpine", "/")).toThrow(/^image "alpine": /);
  const removed = await svc.remove(rec.id.slice(0, 5));
  expect(removed.id).toBe(rec.id);
  expect(store.list()).toEqual([]);
  expect(imagesDirListing()).toEqual([]);
});

test("reconcile: removes staging of dead processes, unlisted image dirs and rows without files; keeps live and foreign things", async () => {
  const logs: string[] = [];
  const svc = service(smallBuilder, (m) => logs.push(m));
  const kept: ImageRecord = await svc.pull({ source: `rootfs:${tarFile}`, name: "kept" });
  const gone: ImageRecord = await svc.pull({ source: `rootfs:${tarFile}`, name: "gone" });
  fs.rmSync(path.dirname(gone.rootfsPath), { recursive: true });

  const dead = Bun.spawnSync(["true"]).pid;
  const live = Bun.spawn(["sleep", "30"]);
  try {
    const stat = fs.readFileSync(`/proc/${live.pid}/stat`, "latin1");
    const liveStart = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    const mk = (name: string, owner?: object) => {
      const dir = path.join(paths.imagesDir, name);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, "rootfs.ext4"), "x");
      if (owner) fs.writeFileSync(path.join(dir, ".owner"), JSON.stringify(owner));
    };
    mk("aaaaaaaaaaaa.staging", { pid: dead, start: "1" });
    mk("bbbbbbbbbbbb.staging", { pid: live.pid, start: liveStart });
    mk("cccccccccccc.staging", { pid: live.pid, start: "not-its-start-time" }); // a reused pid
    mk("dddddddddddd"); // published, never got its row
    mk("eeeeeeeeeeee", { pid: live.pid, start: liveStart }); // published, row insert under way
    mk("ffffffffffff.staging"); // no owner yet, just made
    mk("not-an-image");

    const report = await svc.reconcile();
    expect(report.staging.sort()).toEqual(["aaaaaaaaaaaa.staging", "cccccccccccc.staging"]);
    expect(report.orphanDirs).toEqual(["dddddddddddd"]);
    expect(report.rowsWithoutDir).toEqual(["gone"]);
    expect(imagesDirListing()).toEqual(["bbbbbbbbbbbb.staging", "eeeeeeeeeeee", "ffffffffffff.staging", kept.id, "not-an-image"].sort());
    expect(store.list().map((r) => r.name)).toEqual(["kept"]);
    expect(logs.length).toBe(4);
    // Nothing left to do the second time.
    expect(await svc.reconcile()).toEqual({ staging: [], orphanDirs: [], rowsWithoutDir: [] });
  } finally {
    live.kill();
    await live.exited;
  }
});

testWith({ tools: ["docker-registry"] }, "a registry pull (real docker-registry): blobs cached, download phase, digest name; rm forgets the cache ref", async () => {
  const reg = await startRegistry();
  try {
    const img = makeImage({ layers: [makeLayer(makeTar([{ name: "a", content: "1" }]), "gzip"), makeLayer(makeTar([{ name: "b", content: "2" }]), "zstd")] });
    await pushImage(reg.url, "x/y", img, "tag");
    const events: PullEvent[] = [];
    const svc = service(smallBuilder);
    const rec = await svc.pull({ source: `${reg.host}/x/y:tag`, progress: (e) => events.push(e) });
    expect(rec).toMatchObject({ name: "y-tag", source: `${reg.host}/x/y:tag`, digest: img.manifestDigest, platform: "linux/amd64", cmd: ["/bin/sh"] });
    for (const l of img.layers) expect(await cache.has(l.digest)).toBe(true);
    const phases = events.flatMap((e) => (e.type === "phase" ? [e.phase] : []));
    expect(phases).toEqual(["resolve", "download", "write", "publish"]);
    const resolvedAt = events.findIndex((e) => e.type === "resolved");
    expect(events[resolvedAt + 1]).toEqual({ type: "phase", phase: "download", detail: `2 layers, ${((img.layers[0]!.blob.length + img.layers[1]!.blob.length) / 1048576).toFixed(1)} MiB` });
    expect(events.filter((e) => e.type === "layer" && e.state === "done").length).toBe(2);
    // Pinned by digest: named by repo + short digest, and a second copy is allowed under it.
    const pinned = await svc.pull({ source: `${reg.host}/x/y@${img.manifestDigest}` });
    expect(pinned.name).toBe(`y-${img.manifestDigest.slice(7, 19)}`);
    expect((await cache.readIndex()).length).toBe(2);
    await svc.remove("y-tag");
    expect((await cache.readIndex()).map((d) => d.annotations?.["org.opencontainers.image.ref.name"])).toEqual([`${reg.host}/x/y@${img.manifestDigest}`]);
  } finally {
    await reg.stop();
  }
}, 60_000);
