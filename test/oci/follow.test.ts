// Layers read while they download (ResolveOptions.followDownloads), from the real
// docker-registry on 127.0.0.1 behind a Bun proxy that trickles or corrupts one blob. And the
// follower on its own against the one moment no registry can be made to hit on purpose: the
// blob renamed to its name, its watch not yet settled.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DownloadWatch, followDownload } from "../../src/oci/follow.ts";
import { BlobCache, OciDigestMismatchError, RegistrySource, staticCredentials } from "../../src/oci/index.ts";
import { hasTool, testWith } from "../helpers/env.ts";
import { concat, makeImage, makeLayer, makeTar } from "../helpers/oci-images.ts";
import { startProxy, type Proxy } from "../helpers/oci-proxy.ts";
import { pushImage, startRegistry, type RunningRegistry } from "../helpers/registry.ts";

const REG = { tools: ["docker-registry"] };
let reg: RunningRegistry;
let tmp: string;
const proxies: Proxy[] = [];

const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const bigTar = makeTar([{ name: "a.bin", content: concat([random(65536), random(65536), random(65536), random(65536)]) }, { name: "b.txt", content: "b\n".repeat(100_000) }]);
const img = makeImage({ layers: [makeLayer(bigTar, "gzip"), makeLayer(makeTar([{ name: "c.txt", content: "c" }]), "zstd")] });
const digest0 = img.layers[0]!.digest;

/** A proxy that sends blob `digest` in 16 KiB pieces, `delayMs` apart, optionally with one byte flipped. */
function trickle(digest: string, delayMs: number, corrupt = false): Proxy {
  const p = startProxy(reg.url, async (req, url) => {
    if (!url.pathname.endsWith(`/blobs/${digest}`) || req.method !== "GET") return undefined;
    const bytes = new Uint8Array(await (await fetch(reg.url + url.pathname)).arrayBuffer());
    if (corrupt) bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    let off = 0;
    return new Response(
      new ReadableStream({
        async pull(c) {
          if (off >= bytes.length) return c.close();
          await Bun.sleep(delayMs);
          c.enqueue(bytes.slice(off, off + 16384));
          off += 16384;
        },
      }),
      { headers: { "content-length": String(bytes.length) } },
    );
  });
  proxies.push(p);
  return p;
}

if (hasTool("docker-registry")) {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-follow-"));
    reg = await startRegistry();
    await pushImage(reg.url, "follow/app", img, "1");
  }, 30_000);
  afterAll(async () => {
    for (const p of proxies) p.stop();
    await reg?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });
}

const source = (host: string, cache: BlobCache) =>
  new RegistrySource(`${host}/follow/app:1`, { cache, retry: { retries: 0, baseDelayMs: 10, maxDelayMs: 10, maxRetryAfterMs: 10 }, credentials: staticCredentials({}) });

describe("layers followed while they download", () => {
  testWith(REG, "resolve returns before the blob is complete; the layer's bytes arrive while it downloads and match", async () => {
    const proxy = trickle(digest0, 5);
    const cache = new BlobCache(fs.mkdtempSync(path.join(tmp, "cache-")));
    const image = await source(proxy.host, cache).resolve({ followDownloads: true });
    // Resolved, yet the first layer is not in the cache under its digest name.
    expect(fs.existsSync(cache.blobPath(digest0))).toBe(false);
    const parts: Uint8Array[] = [];
    let firstChunkBeforeCommit = false;
    for await (const c of image.openLayer(0)) {
      if (parts.length === 0) firstChunkBeforeCommit = !fs.existsSync(cache.blobPath(digest0));
      parts.push(c.slice());
    }
    expect(firstChunkBeforeCommit).toBe(true);
    expect(concat(parts)).toEqual(bigTar);
    // The stream ended only after the blob was verified and named.
    expect(fs.existsSync(cache.blobPath(digest0))).toBe(true);
    await image.dispose();
  });

  testWith(REG, "a blob that fails its digest fails the followed stream, and is never named", async () => {
    const proxy = trickle(digest0, 1, true);
    const cache = new BlobCache(fs.mkdtempSync(path.join(tmp, "cache-")));
    const image = await source(proxy.host, cache).resolve({ followDownloads: true });
    const err = await (async () => {
      for await (const _ of image.openLayer(0)) {
        // read on
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    // Either the digest (download) or the gzip/diff_id check trips first; both name the blob.
    expect(String((err as Error).message)).toContain(digest0);
    expect(fs.existsSync(cache.blobPath(digest0))).toBe(false);
    await image.dispose();
    expect(fs.readdirSync(cache.ingestDir)).toEqual([]);
  });

  testWith(REG, "the download error itself reaches a follower (digest mismatch of an uncompressed-size-correct blob)", async () => {
    // Corrupt the small zstd layer's last bytes: its reader sees the download's own error.
    const proxy = trickle(img.layers[1]!.digest, 1, true);
    const cache = new BlobCache(fs.mkdtempSync(path.join(tmp, "cache-")));
    const image = await source(proxy.host, cache).resolve({ followDownloads: true });
    const err = await (async () => {
      for await (const _ of image.openLayer(1)) {
        // read on
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err instanceof OciDigestMismatchError || /zstd|diff_id/.test(String((err as Error).message))).toBe(true);
    await image.dispose();
  });
});

describe("the follower between the downloader's rename and its settle", () => {
  /** A download that has every byte and was just renamed to the blob's name; its watch settles a moment later. */
  function committedUnsettled(bytes: Uint8Array, error?: Error) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "banger-follow-race-"));
    const partial = path.join(dir, "blob.partial");
    const final = path.join(dir, "blob");
    fs.writeFileSync(partial, bytes);
    const watch = new DownloadWatch();
    watch.update(bytes.length);
    if (error) fs.rmSync(partial);
    else fs.renameSync(partial, final);
    setTimeout(() => watch.settle(error), 20);
    return { partial, final, watch, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
  }

  const readAll = async (it: AsyncIterable<Uint8Array>) => {
    const parts: Uint8Array[] = [];
    for await (const c of it) parts.push(c.slice());
    return concat(parts);
  };

  test("a first open after the rename reads the committed blob, every byte", async () => {
    const bytes = random(3 * 1048576 + 123);
    const d = committedUnsettled(bytes);
    try {
      expect(await readAll(followDownload(d.partial, d.final, d.watch))).toEqual(bytes);
    } finally {
      d.cleanup();
    }
  });

  test("a partial file removed because its bytes were bad: the download's own error, not ENOENT", async () => {
    const bad = new OciDigestMismatchError("blob sha256:x: content hashes to sha256:y; the download was discarded", { digest: "sha256:x" });
    const d = committedUnsettled(random(4096), bad);
    try {
      expect(await readAll(followDownload(d.partial, d.final, d.watch)).catch((e: unknown) => e)).toBe(bad);
    } finally {
      d.cleanup();
    }
  });
});
