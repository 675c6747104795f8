// Proven blob -> diff_id facts (src/oci/diffid-memo.ts) and how layer reads use them: a read that
// checks both digests records the fact; a later read of the same blob checks only the blob
// (or nothing, for a blob the cache verified); nothing is recorded from a read that failed; and
// a blob whose bytes changed under its name is still refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { BlobCache } from "../../src/oci/cache.ts";
import { sha256Digest } from "../../src/oci/digest.ts";
import { DirDiffIdMemo, type DiffIdMemo } from "../../src/oci/diffid-memo.ts";
import { OciDigestMismatchError } from "../../src/oci/errors.ts";
import { layerChunks } from "../../src/oci/layer-stream.ts";
import { OciLayoutSource } from "../../src/oci/sources/layout.ts";
import { concat, makeImage, makeLayer, makeTar, writeOciLayout } from "../helpers/oci-images.ts";

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-diffids-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function* pieces(bytes: Uint8Array, size = 65536): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c.slice());
  return concat(parts);
}

/** A memo that records what it is told and answers from a fixed table. */
class RecordingMemo implements DiffIdMemo {
  told: string[] = [];
  constructor(private readonly facts: Record<string, string> = {}) {}
  known(compression: string, blob: string): string | null {
    return this.facts[`${compression} ${blob}`] ?? null;
  }
  remember(compression: string, blob: string, diffId: string): void {
    this.told.push(`${compression} ${blob} ${diffId}`);
  }
}

const data = concat([crypto.getRandomValues(new Uint8Array(300_000)), new TextEncoder().encode("layer ".repeat(50_000))]);
const blob = new Uint8Array(zlib.zstdCompressSync(data));
const digest = sha256Digest(blob);
const diffId = sha256Digest(data);
const wrongDiffId = sha256Digest(new Uint8Array([1, 2, 3]));

describe("DirDiffIdMemo", () => {
  test("remembers per compression and blob; a missing, unreadable or garbled entry is unknown", () => {
    const memo = new DirDiffIdMemo(path.join(tmp, "memo1"));
    expect(memo.known("zstd", digest)).toBeNull();
    memo.remember("zstd", digest, diffId);
    expect(memo.known("zstd", digest)).toBe(diffId);
    expect(memo.known("gzip", digest)).toBeNull();
    expect(fs.readdirSync(memo.dir)).toEqual([`zstd-${digest.slice(7)}`]);
    fs.writeFileSync(path.join(memo.dir, `gzip-${digest.slice(7)}`), "sha256:not-a-digest\n");
    expect(memo.known("gzip", digest)).toBeNull();
    // Not digests: neither read nor written (a name like "../x" never becomes a path).
    memo.remember("zstd", "sha256:../../x", diffId);
    memo.remember("zstd", digest.replace(/.$/, "0"), "oops");
    expect(memo.known("zstd", "sha256:../../x")).toBeNull();
    expect(fs.readdirSync(memo.dir).sort()).toEqual([`gzip-${digest.slice(7)}`, `zstd-${digest.slice(7)}`]);
  });

  test("forget drops the picked blobs' facts and stray files; without a pick, all of them", () => {
    const memo = new DirDiffIdMemo(path.join(tmp, "memo2"));
    const other = sha256Digest(new Uint8Array([9]));
    memo.remember("zstd", digest, diffId);
    memo.remember("gzip", other, diffId);
    fs.writeFileSync(path.join(memo.dir, "zstd-abc.123.tmp"), "half");
    memo.forget((d) => d === digest);
    expect(fs.readdirSync(memo.dir)).toEqual([`gzip-${other.slice(7)}`]);
    memo.forget();
    expect(fs.readdirSync(memo.dir)).toEqual([]);
    new DirDiffIdMemo(path.join(tmp, "never-made")).forget(); // no directory: nothing to do
  });
});

describe("layer reads with a memo", () => {
  test("a read that checks both digests records the fact; a blob the cache verified counts as checked", async () => {
    const memo = new RecordingMemo();
    expect(await collect(layerChunks(pieces(blob), { compression: "zstd", digest, diffId, diffIds: memo, where: "l" }))).toEqual(data);
    expect(await collect(layerChunks(pieces(blob), { compression: "zstd", digest, blobVerified: true, diffId, diffIds: memo, where: "l" }))).toEqual(data);
    expect(memo.told).toEqual([`zstd ${digest} ${diffId}`, `zstd ${digest} ${diffId}`]);
  });

  test("without a blob digest nothing is recorded, and the diff_id is always checked", async () => {
    const memo = new RecordingMemo({ [`zstd ${digest}`]: wrongDiffId });
    await collect(layerChunks(pieces(blob), { compression: "zstd", diffId, diffIds: memo, where: "l" }));
    expect(memo.told).toEqual([]);
  });

  test("a proven blob is not hashed uncompressed again: only its blob digest is checked", async () => {
    // The memo says this blob gives `wrongDiffId`, and the config asks for it: the read believes
    // the memo (the uncompressed bytes are not hashed), so it succeeds and records nothing new.
    const memo = new RecordingMemo({ [`zstd ${digest}`]: wrongDiffId });
    expect(await collect(layerChunks(pieces(blob), { compression: "zstd", digest, diffId: wrongDiffId, diffIds: memo, where: "l" }))).toEqual(data);
    expect(memo.told).toEqual([]);
    // ... but the blob's own digest still is: other bytes under the same name are refused.
    const changed = blob.slice();
    changed[changed.length - 5]! ^= 0xff;
    const err = await collect(layerChunks(pieces(changed), { compression: "zstd", digest, diffId: wrongDiffId, diffIds: memo, where: "layer 1 of x" })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain("layer 1 of x");
  });

  test("a memo that knows another diff_id for the blob is not trusted: the full check runs", async () => {
    const memo = new RecordingMemo({ [`zstd ${digest}`]: diffId });
    const err = await collect(layerChunks(pieces(blob), { compression: "zstd", digest, diffId: wrongDiffId, diffIds: memo, where: "l" })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciDigestMismatchError);
    expect((err as Error).message).toContain(`diff_id (uncompressed digest) mismatch: expected ${wrongDiffId}`);
    expect(memo.told).toEqual([]);
  });

  test("a failed read records nothing: a wrong diff_id, a wrong blob digest", async () => {
    const memo = new RecordingMemo();
    await expect(collect(layerChunks(pieces(blob), { compression: "zstd", digest, diffId: wrongDiffId, diffIds: memo, where: "l" }))).rejects.toThrow(/diff_id \(uncompressed digest\) mismatch/);
    await expect(collect(layerChunks(pieces(blob), { compression: "zstd", digest: wrongDiffId, diffId, diffIds: memo, where: "l" }))).rejects.toThrow(/blob digest mismatch/);
    expect(memo.told).toEqual([]);
  });
});

describe("an uncompressed layer (blob and diff_id are one digest)", () => {
  const tar = makeTar([{ name: "etc/hostname", content: "plain\n" }]);
  const d = sha256Digest(tar);
  test("is hashed once, and not at all when the cache verified the blob", async () => {
    const other = tar.slice();
    other[other.length - 1]! ^= 1;
    // Checked: other bytes are refused by the one hash.
    await expect(collect(layerChunks(pieces(other), { compression: "none", digest: d, diffId: d, where: "l" }))).rejects.toThrow(/blob digest mismatch/);
    // The cache's word stands: nothing is hashed again.
    expect(await collect(layerChunks(pieces(other), { compression: "none", digest: d, blobVerified: true, diffId: d, where: "l" }))).toEqual(other);
    // A diff_id that differs from the blob digest is still checked.
    await expect(collect(layerChunks(pieces(tar), { compression: "none", digest: d, blobVerified: true, diffId: wrongDiffId, where: "l" }))).rejects.toThrow(/diff_id \(uncompressed digest\) mismatch/);
  });
});

describe("an OCI layout pulled twice", () => {
  test("the first read proves the layer, the second checks the blob only and still refuses changed bytes", async () => {
    const layer = makeLayer(makeTar([{ name: "etc/hostname", content: "memo\n" }, { name: "bin/", dir: true }]), "zstd");
    const image = makeImage({ layers: [layer] });
    const dir = path.join(tmp, "layout");
    writeOciLayout(dir, [{ tag: "t", image }]);
    const cache = new BlobCache(path.join(tmp, "cache"));
    const read = async () => collect((await new OciLayoutSource(dir, "t", { diffIds: cache.diffIds }).resolve()).openLayer(0));

    expect(cache.diffIds.known("zstd", layer.digest)).toBeNull();
    expect(await read()).toEqual(layer.tar);
    expect(cache.diffIds.known("zstd", layer.digest)).toBe(layer.diffId);
    expect(await read()).toEqual(layer.tar);

    // Same size, other bytes, same name: the layout's blob no longer matches its digest.
    const file = path.join(dir, "blobs", "sha256", layer.digest.slice(7));
    const bytes = new Uint8Array(fs.readFileSync(file));
    bytes[bytes.length - 1]! ^= 0x01;
    fs.writeFileSync(file, bytes);
    await expect(read()).rejects.toThrow(/blob digest mismatch/);

    // Pruning the cache with nothing kept forgets what it had proven.
    await cache.prune({ keepNothing: true, graceMs: 0 });
    expect(cache.diffIds.known("zstd", layer.digest)).toBeNull();
  });
});
