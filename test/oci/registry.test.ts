// Pulls from a real registry: Debian's docker-registry on 127.0.0.1 (started here, random port,
// temp storage), with small Bun proxies in front for what it cannot do itself (token server,
// 429s, corrupted blobs, cut connections, foreign redirects).
import { afterAll, beforeAll, describe, expect } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BlobCache, OciDigestMismatchError, OciNotFoundError, RegistrySource, parsePlatform, parseSource, staticCredentials, type ProgressEvent, type ResolvedImage } from "../../src/oci/index.ts";
import { hasTool, testWith } from "../helpers/env.ts";
import { concat, makeImage, makeIndex, makeLayer, makeTar, type TestImage } from "../helpers/oci-images.ts";
import { startCutter, startProxy, type Proxy } from "../helpers/oci-proxy.ts";
import { pushImage, pushIndex, startRegistry, type RunningRegistry } from "../helpers/registry.ts";

const REG = { tools: ["docker-registry"] };
const FAST_RETRY = { retries: 4, baseDelayMs: 20, maxDelayMs: 100, maxRetryAfterMs: 2000 };

let reg: RunningRegistry;
let tmp: string;
const proxies: Proxy[] = [];

async function readAll(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of s) parts.push(c.slice()); // zstd pieces are reused
  return concat(parts);
}

function newCache(): BlobCache {
  return new BlobCache(fs.mkdtempSync(path.join(tmp, "cache-")));
}

/** Files under the cache's blobs and ingest dirs. */
function cacheFiles(cache: BlobCache): { blobs: string[]; ingest: string[] } {
  return { blobs: fs.readdirSync(cache.blobsDir), ingest: fs.existsSync(cache.ingestDir) ? fs.readdirSync(cache.ingestDir) : [] };
}

async function expectLayers(img: ResolvedImage, expected: TestImage): Promise<void> {
  expect(img.layers.map((l) => l.digest)).toEqual(expected.layers.map((l) => l.digest));
  for (const [i, l] of expected.layers.entries()) expect(await readAll(img.openLayer(i))).toEqual(l.tar);
}

const files = (tag: string, n = 3) => makeTar(Array.from({ length: n }, (_, i) => ({ name: `etc/${tag}-${i}.txt`, content: `${tag} file ${i}\n`.repeat(50 + i) })));

const amd64 = makeImage({ layers: [makeLayer(files("base-amd64"), "gzip"), makeLayer(files("top-amd64"), "zstd")], platform: { os: "linux", architecture: "amd64" } });
const arm64 = makeImage({ layers: [makeLayer(files("base-arm64"), "gzip"), makeLayer(files("top-arm64"), "none")], platform: { os: "linux", architecture: "arm64", variant: "v8" } });
const decoy = makeImage({ layers: [makeLayer(files("decoy"), "gzip")], platform: { os: "windows", architecture: "amd64" } });
const attest = makeImage({ layers: [makeLayer(makeTar([{ name: "intoto.json", content: "{}" }]), "none")], platform: { os: "unknown", architecture: "unknown" } });
const multi = makeIndex([decoy, amd64, arm64], { attestation: attest });
const dockerImg = makeImage({ docker: true, layers: [makeLayer(files("docker-gz"), "gzip", true), makeLayer(files("docker-zst"), "zstd", true)] });
// Big enough to be interrupted: ~3 MiB of incompressible bytes.
const bigTar = makeTar([{ name: "big.bin", content: crypto.getRandomValues(new Uint8Array(3 * 1024 * 1024)).map((b) => b) }]);
const bigImg = makeImage({ layers: [makeLayer(bigTar, "gzip")] });

if (hasTool("docker-registry")) {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-oci-test-"));
    reg = await startRegistry();
    await pushIndex(reg.url, "multi/app", [decoy, amd64, arm64, attest], multi, "v1");
    await pushImage(reg.url, "docker/app", dockerImg, "latest");
    await pushImage(reg.url, "big/app", bigImg, "1");
  }, 30_000);
  afterAll(async () => {
    for (const p of proxies) p.stop();
    await reg?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });
}

function source(ref: string, cache: BlobCache, extra: ConstructorParameters<typeof RegistrySource>[1] = {}): RegistrySource {
  return new RegistrySource(ref, { cache, retry: FAST_RETRY, credentials: staticCredentials({}), ...extra });
}

describe("registry pulls", () => {
  testWith(REG, "multi-arch index: picks the requested platform, skips the decoy and the attestation", async () => {
    const cache = newCache();
    const events: ProgressEvent[] = [];
    const img = await source(`${reg.host}/multi/app:v1`, cache).resolve({ platform: parsePlatform("linux/arm64"), progress: (e) => events.push(e) });
    expect(img.manifestDigest).toBe(arm64.manifestDigest);
    expect(img.platform).toEqual({ os: "linux", architecture: "arm64", variant: "v8" });
    await expectLayers(img, arm64);
    const done = events.filter((e) => e.type === "layer" && e.state === "done");
    expect(done.length).toBe(2);
    expect(events.some((e) => e.type === "layer" && e.state === "downloading" && e.bytesTotal === arm64.layers[0]!.blob.length)).toBe(true);
    // The cache is an OCI layout that records the reference, and holds only verified blobs.
    const index = JSON.parse(fs.readFileSync(path.join(cache.root, "index.json"), "utf8"));
    expect(index.manifests[0].annotations["org.opencontainers.image.ref.name"]).toBe(`${reg.host}/multi/app:v1`);
    expect(JSON.parse(fs.readFileSync(path.join(cache.root, "oci-layout"), "utf8")).imageLayoutVersion).toBe("1.0.0");
    for (const name of fs.readdirSync(cache.blobsDir)) {
      expect("sha256:" + new Bun.CryptoHasher("sha256").update(fs.readFileSync(path.join(cache.blobsDir, name))).digest("hex")).toBe(`sha256:${name}`);
    }
    // amd64 from the same index, by digest of the index.
    const byDigest = await source(`${reg.host}/multi/app@${multi.digest}`, cache).resolve({ platform: parsePlatform("linux/amd64") });
    expect(byDigest.manifestDigest).toBe(amd64.manifestDigest);
    await expectLayers(byDigest, amd64);
    // A platform the index does not offer: the message lists what it does offer.
    await expect(source(`${reg.host}/multi/app:v1`, cache).resolve({ platform: parsePlatform("linux/s390x") })).rejects.toThrow(
      /no image for platform linux\/s390x; the index offers windows\/amd64, linux\/amd64, linux\/arm64\/v8/,
    );
  });

  testWith(REG, "Docker schema2 manifest with gzip and zstd layers; second pull comes from the cache", async () => {
    const cache = newCache();
    const img = await source(`${reg.host}/docker/app`, cache).resolve({ platform: parsePlatform("linux/amd64") });
    expect(img.layers.map((l) => l.compression)).toEqual(["gzip", "zstd"]);
    await expectLayers(img, dockerImg);
    const events: ProgressEvent[] = [];
    await source(`${reg.host}/docker/app:latest`, cache).resolve({ progress: (e) => events.push(e) });
    expect(events.filter((e) => e.type === "layer").map((e) => (e as { state: string }).state)).toEqual(["cached", "cached"]);
    expect(cacheFiles(cache).ingest).toEqual([]);
  });

  testWith(REG, "missing repository and missing tag give distinct, clear errors", async () => {
    const cache = newCache();
    const noRepo = source(`${reg.host}/no/such-repo:1`, cache).resolve();
    await expect(noRepo).rejects.toBeInstanceOf(OciNotFoundError);
    await expect(noRepo).rejects.toThrow(`repository "no/such-repo" not found on registry ${reg.host}`);
    const noTag = source(`${reg.host}/docker/app:nope`, cache).resolve();
    await expect(noTag).rejects.toThrow(`tag "nope" not found in repository ${reg.host}/docker/app`);
  });

  testWith(REG, "blob whose bytes do not match its digest: refused, nothing left in the cache", async () => {
    const target = dockerImg.layers[1]!.digest;
    const proxy = startProxy(reg.url, async (req, url) => {
      if (url.pathname.endsWith(`/blobs/${target}`)) {
        const bytes = new Uint8Array(await (await fetch(reg.url + url.pathname)).arrayBuffer());
        bytes[10] = bytes[10]! ^ 0xff;
        return new Response(bytes);
      }
    });
    proxies.push(proxy);
    const cache = newCache();
    const err = await source(`${proxy.host}/docker/app:latest`, cache).resolve().catch((e) => e);
    expect(err).toBeInstanceOf(OciDigestMismatchError);
    expect(String(err.message)).toContain(target);
    expect(String(err.message)).toContain(`${proxy.url}/v2/docker/app/blobs/${target}`);
    const { blobs, ingest } = cacheFiles(cache);
    expect(blobs).not.toContain(target.slice(7));
    expect(ingest).toEqual([]);
  });

  testWith(REG, "429 with Retry-After, then 503, then success", async () => {
    let failures = 0;
    const proxy = startProxy(reg.url, (req, url) => {
      if (url.pathname.includes("/blobs/") && failures < 2) {
        failures++;
        return failures === 1 ? new Response("slow down", { status: 429, headers: { "retry-after": "1" } }) : new Response("oops", { status: 503 });
      }
    });
    proxies.push(proxy);
    const t0 = Date.now();
    const img = await source(`${proxy.host}/docker/app:latest`, newCache()).resolve();
    expect(failures).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950); // Retry-After: 1 was honoured
    await expectLayers(img, dockerImg);
  });

  testWith(REG, "connection cut mid-blob: the download resumes with Range", async () => {
    let cuts = 0;
    const cutter = startCutter(reg.url, (p) => (p.includes(bigImg.layers[0]!.digest) && cuts++ === 0 ? 100_000 : undefined));
    proxies.push(cutter);
    const cache = newCache();
    const events: ProgressEvent[] = [];
    const img = await source(`${cutter.host}/big/app:1`, cache).resolve({ progress: (e) => events.push(e) });
    await expectLayers(img, bigImg);
    const blobGets = cutter.seen.filter((r) => r.method === "GET" && r.path.includes(`/blobs/${bigImg.layers[0]!.digest}`));
    expect(blobGets.length).toBe(2);
    expect(blobGets[0]!.headers.range).toBeUndefined();
    expect(blobGets[1]!.headers.range).toBe("bytes=100000-");
    expect(events.some((e) => e.type === "layer" && e.state === "resuming" && e.bytesDone === 100_000)).toBe(true);
    expect(cacheFiles(cache).ingest).toEqual([]);
  });

  testWith(REG, "a killed pull leaves no blob under its digest name, and the next pull resumes", async () => {
    const digest = bigImg.layers[0]!.digest;
    // Trickle the big blob so the child is surely mid-download when killed.
    const slow = startProxy(reg.url, async (req, url) => {
      if (!url.pathname.endsWith(`/blobs/${digest}`) || req.headers.get("range")) return undefined;
      const bytes = new Uint8Array(await (await fetch(reg.url + url.pathname)).arrayBuffer());
      let off = 0;
      return new Response(
        new ReadableStream({
          async pull(c) {
            if (off >= bytes.length) return c.close();
            await Bun.sleep(20);
            c.enqueue(bytes.subarray(off, off + 32 * 1024));
            off += 32 * 1024;
          },
        }),
      );
    });
    proxies.push(slow);
    const cache = newCache();
    const child = Bun.spawn([process.execPath, path.join(import.meta.dir, "../helpers/oci-pull-child.ts"), `${slow.host}/big/app:1`, cache.root], { stdout: "pipe", stderr: "pipe" });
    const partial = path.join(cache.ingestDir, `${digest.slice(7)}.partial`);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && !(fs.existsSync(partial) && fs.statSync(partial).size > 200_000)) await Bun.sleep(20);
    child.kill("SIGKILL");
    await child.exited;
    expect(fs.existsSync(partial)).toBe(true);
    const partSize = fs.statSync(partial).size;
    expect(partSize).toBeLessThan(bigImg.layers[0]!.blob.length);
    expect(fs.existsSync(cache.blobPath(digest))).toBe(false);
    // The dead process's lock is taken over, the partial is resumed, the blob verified.
    const img = await source(`${slow.host}/big/app:1`, cache).resolve();
    await expectLayers(img, bigImg);
    const ranged = slow.seen.filter((r) => r.path.endsWith(`/blobs/${digest}`) && r.headers.range);
    expect(ranged.length).toBe(1);
    expect(Number(/bytes=(\d+)-/.exec(ranged[0]!.headers.range!)![1])).toBeGreaterThanOrEqual(partSize - 64 * 1024);
    expect(cacheFiles(cache).ingest).toEqual([]);
  }, 30_000);

  testWith(REG, "concurrent pulls of the same image share blobs without corrupting them", async () => {
    const cache = newCache();
    const other = new BlobCache(cache.root);
    const [a, b] = await Promise.all([
      source(`${reg.host}/big/app:1`, cache).resolve(),
      source(`${reg.host}/big/app:1`, other).resolve(),
    ]);
    await expectLayers(a, bigImg);
    await expectLayers(b, bigImg);
    expect(cacheFiles(cache).ingest).toEqual([]);
  });

  testWith(REG, "two processes pulling the same image at once: one download per blob, both succeed", async () => {
    const digest = bigImg.layers[0]!.digest;
    const counting = startProxy(reg.url);
    proxies.push(counting);
    const cache = newCache();
    const child = () => Bun.spawn([process.execPath, path.join(import.meta.dir, "../helpers/oci-pull-child.ts"), `${counting.host}/big/app:1`, cache.root], { stdout: "pipe", stderr: "pipe" });
    const [a, b] = [child(), child()];
    const codes = await Promise.all([a.exited, b.exited]);
    expect(codes, await new Response(a.stderr).text() + (await new Response(b.stderr).text())).toEqual([0, 0]);
    expect(counting.seen.filter((r) => r.method === "GET" && r.path.endsWith(`/blobs/${digest}`)).length).toBe(1);
    const img = await source(`${reg.host}/big/app:1`, cache).resolve();
    await expectLayers(img, bigImg);
    expect(cacheFiles(cache).ingest).toEqual([]);
  }, 30_000);

  testWith(REG, "prune removes blobs no recorded image needs", async () => {
    const cache = newCache();
    await source(`${reg.host}/docker/app:latest`, cache).resolve();
    await source(`${reg.host}/multi/app:v1`, cache).resolve({ platform: parsePlatform("linux/arm64") });
    const before = cacheFiles(cache).blobs.length;
    fs.writeFileSync(path.join(cache.blobsDir, "0".repeat(64)), "orphan");
    const r1 = await cache.prune({ graceMs: 0 });
    expect(r1.removed).toEqual([`sha256:${"0".repeat(64)}`]);
    expect(cacheFiles(cache).blobs.length).toBe(before);
    await cache.removeRefs((name) => name.includes("docker/app"));
    const r2 = await cache.prune({ graceMs: 0 });
    expect(r2.removed.sort()).toEqual([dockerImg.manifestDigest, dockerImg.configDigest, ...dockerImg.layers.map((l) => l.digest)].sort());
    // What remains still resolves from the cache, and the cache reads as an OCI layout.
    const again = await source(`${reg.host}/multi/app:v1`, cache).resolve({ platform: parsePlatform("linux/arm64") });
    await expectLayers(again, arm64);
    const asLayout = await parseSource(`oci:${cache.root}:${reg.host}/multi/app:v1`).resolve({ platform: parsePlatform("linux/arm64") });
    expect(asLayout.manifestDigest).toBe(arm64.manifestDigest);
    await expectLayers(asLayout, arm64);
  });
});
