// BlobCache.ensure when several pulls in one process (the daemon) want one blob: they share
// one download, a joiner's own interrupt lets it go without stopping the download, and the
// owner's interrupt does not fail the joiners: one of them takes over from the partial file.
import { afterAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BlobCache, type BlobIngest } from "../../src/oci/cache.ts";
import { sha256 } from "../helpers/oci-images.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-cache-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const blob = crypto.getRandomValues(new Uint8Array(64 * 1024));
const digest = sha256(blob);
let n = 0;
const newCache = () => new BlobCache(path.join(tmp, `cache-${n++}`));

/** A download that writes the first `first` bytes, then waits for `go` (or its signal) before the rest. */
function gatedDownload(signal: AbortSignal | undefined, go: Promise<void>, calls: { n: number; resumedAt: number[] }, first = 1000) {
  return async (ingest: BlobIngest) => {
    calls.n++;
    calls.resumedAt.push(ingest.offset);
    if (ingest.offset < first) await ingest.append(blob.subarray(ingest.offset, first));
    await new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      void go.then(resolve);
    });
    await ingest.append(blob.subarray(ingest.offset));
    await ingest.commit("test");
  };
}

test("two callers, one download; a joiner's own abort lets it go and the download goes on", async () => {
  const cache = newCache();
  let open!: () => void;
  const go = new Promise<void>((r) => (open = r));
  const calls = { n: 0, resumedAt: [] as number[] };
  const owner = cache.ensure(digest, blob.length, gatedDownload(undefined, go, calls));
  await Bun.sleep(20);
  const joinerAbort = new AbortController();
  const joiner = cache.ensure(digest, blob.length, gatedDownload(joinerAbort.signal, go, calls), { signal: joinerAbort.signal });
  const third = cache.ensure(digest, blob.length, gatedDownload(undefined, go, calls));
  joinerAbort.abort(new Error("joiner interrupted"));
  await expect(joiner).rejects.toThrow("joiner interrupted");
  open();
  await Promise.all([owner, third]);
  expect(calls.n).toBe(1);
  expect(new Uint8Array(await cache.readBlob(digest))).toEqual(blob);
});

test("the owner's abort does not fail a joiner: the joiner resumes the partial and commits", async () => {
  const cache = newCache();
  let open!: () => void;
  const go = new Promise<void>((r) => (open = r));
  const calls = { n: 0, resumedAt: [] as number[] };
  const ownerAbort = new AbortController();
  const owner = cache.ensure(digest, blob.length, gatedDownload(ownerAbort.signal, go, calls), { signal: ownerAbort.signal });
  await Bun.sleep(20);
  const joiner = cache.ensure(digest, blob.length, gatedDownload(undefined, go, calls), { signal: new AbortController().signal });
  ownerAbort.abort(new Error("owner interrupted"));
  await expect(owner).rejects.toThrow("owner interrupted");
  await Bun.sleep(20);
  open();
  await joiner;
  expect(calls.n).toBe(2);
  // The owner wrote 1000 bytes before it was interrupted; the joiner went on from there.
  expect(calls.resumedAt).toEqual([0, 1000]);
  expect(new Uint8Array(await cache.readBlob(digest))).toEqual(blob);
  expect(fs.readdirSync(cache.ingestDir)).toEqual([]);
});

test("a failure of the blob itself fails every caller, without a second attempt", async () => {
  const cache = newCache();
  let calls = 0;
  let release!: () => void;
  const wait = new Promise<void>((r) => (release = r));
  const failing = async () => {
    calls++;
    await wait;
    throw new Error("registry said 404");
  };
  const a = cache.ensure(digest, blob.length, failing, { signal: new AbortController().signal });
  await Bun.sleep(10);
  const b = cache.ensure(digest, blob.length, failing, { signal: new AbortController().signal });
  release();
  const settled = await Promise.allSettled([a, b]);
  expect(settled.map((r) => (r.status === "rejected" ? (r.reason as Error).message : "resolved"))).toEqual(["registry said 404", "registry said 404"]);
  expect(calls).toBe(1);
});
