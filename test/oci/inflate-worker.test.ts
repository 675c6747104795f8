// Layer decompression on a worker thread (src/oci/inflate-worker.ts via layerChunks): the same
// bytes and the same errors as decompressing in-line, buffers handed back and forth safely,
// and a reader that stops early stops the worker.
import { describe, expect, test } from "bun:test";
import zlib from "node:zlib";
import { OciDigestMismatchError, OciError } from "../../src/oci/errors.ts";
import { sha256Digest } from "../../src/oci/digest.ts";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { FileChunks, fileChunks, layerChunks } from "../../src/oci/layer-stream.ts";
import { concat } from "../helpers/oci-images.ts";

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c.slice()); // chunks go back to the worker for reuse
  return concat(parts);
}

// 20 MiB: more output buffers than the worker owns (16 × 1 MiB), so the test fails if a buffer
// is recycled while the reader may still hold it.
const data = concat([crypto.getRandomValues(new Uint8Array(2_500_000)), new Uint8Array(16_000_000), new TextEncoder().encode("tail ".repeat(400_000))]);
const gz = new Uint8Array(zlib.gzipSync(data));
const zst = new Uint8Array(zlib.zstdCompressSync(data));

describe("decompression on a worker thread", () => {
  for (const [compression, blob] of [["gzip", gz], ["zstd", zst]] as const) {
    test(`${compression}: same bytes as in-line, for small and large input pieces, blob digest checked`, async () => {
      for (const size of [777, 1 << 20]) {
        const viaWorker = await collect(layerChunks(pieces(blob, size), { compression, where: "w", digest: sha256Digest(blob), diffId: sha256Digest(data) }));
        expect(viaWorker.length).toBe(data.length);
        expect(viaWorker).toEqual(data);
      }
      expect(await collect(layerChunks(pieces(blob, 4096), { compression, where: "w", inflateInline: true }))).toEqual(data);
    });

    test(`${compression}: chunks held by the reader stay intact until 3 more are read`, async () => {
      const held: Uint8Array[] = [];
      let offset = 0;
      for await (const c of layerChunks(pieces(blob, 65536), { compression, where: "w" })) {
        held.push(c);
        if (held.length > 3) held.shift();
        // Every chunk still held matches the data it was yielded for.
        let end = offset + c.length;
        for (let i = held.length - 1; i >= 0; i--) {
          expect(held[i]!).toEqual(data.subarray(end - held[i]!.length, end));
          end -= held[i]!.length;
        }
        offset += c.length;
      }
      expect(offset).toBe(data.length);
    });
  }

  test("a blob digest mismatch is the same typed error as in-line, after the last byte", async () => {
    const wrong = sha256Digest(new Uint8Array([1]));
    const err = await collect(layerChunks(pieces(gz, 65536), { compression: "gzip", where: "layer 2 of x", digest: wrong })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciDigestMismatchError);
    expect((err as Error).message).toContain(`layer 2 of x: blob digest mismatch: expected ${wrong}, the ${gz.length} bytes read hash to ${sha256Digest(gz)}`);
  });

  test("corrupt gzip: an OciError naming the layer", async () => {
    const bad = gz.slice();
    bad.fill(0x55, 5000, 6000);
    const err = await collect(layerChunks(pieces(bad, 65536), { compression: "gzip", where: "layer 1 of y" })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciError);
    expect((err as Error).message).toStartWith("layer 1 of y: gzip decompression failed");
  });

  test("a failing compressed source fails the layer with its own error", async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield zst.slice(0, 100_000);
      throw new Error("connection reset while downloading");
    }
    await expect(collect(layerChunks(failing(), { compression: "zstd", where: "w" }))).rejects.toThrow("connection reset while downloading");
  });

  test("a reader that stops early stops the worker and the source", async () => {
    let sourceClosed = false;
    async function* src(): AsyncGenerator<Uint8Array> {
      try {
        for (let i = 0; i < gz.length; i += 4096) yield gz.slice(i, i + 4096);
      } finally {
        sourceClosed = true;
      }
    }
    for await (const _ of layerChunks(src(), { compression: "gzip", where: "w" })) break;
    // The feeder notices the stop at its next chunk and closes the source.
    for (let i = 0; i < 50 && !sourceClosed; i++) await Bun.sleep(10);
    expect(sourceClosed).toBe(true);
  });

  for (const compression of ["zstd", "gzip"] as const) {
    test(`${compression}: a blob in a file is read straight into the worker's slots, its digest checked over the very bytes read`, async () => {
      // 12 MiB of noise stays ~12 MiB compressed: more 1 MiB reads than the worker has slots
      // for (8 or 4), so slots are hashed here and read into again while the layer is decoded.
      const noise = concat(Array.from({ length: 12 }, () => crypto.getRandomValues(new Uint8Array(1 << 20))));
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "banger-chunks-"));
      const file = path.join(dir, "blob");
      const compressed = new Uint8Array(compression === "zstd" ? zlib.zstdCompressSync(noise) : zlib.gzipSync(noise));
      fs.writeFileSync(file, compressed);
      // No chunk of it goes through FileChunks' own (async) reads.
      const untouched = (c: FileChunks) => Object.assign(c, { [Symbol.asyncIterator]: () => expect.unreachable("file chunks read on the main thread") });
      try {
        const out = await collect(layerChunks(untouched(fileChunks(file)), { compression, where: "w", digest: sha256Digest(compressed), diffId: sha256Digest(noise) }));
        expect(out).toEqual(noise);
        // A byte range of a larger file (a docker-archive member) and an open descriptor (a spool).
        fs.writeFileSync(file, concat([new Uint8Array(777), compressed, new Uint8Array(99)]));
        const fd = fs.openSync(file, "r");
        try {
          const ranged = await collect(layerChunks(untouched(fileChunks(fd, 777, 777 + compressed.length)), { compression, where: "w", digest: sha256Digest(compressed) }));
          expect(ranged).toEqual(noise);
          // Still open: the descriptor is the caller's.
          expect(fs.fstatSync(fd).size).toBe(777 + compressed.length + 99);
        } finally {
          fs.closeSync(fd);
        }
        // The digest of other bytes: the same typed error as in-line, after the last byte.
        const other = sha256Digest(new Uint8Array([1]));
        const err = await collect(layerChunks(fileChunks(file, 777, 777 + compressed.length), { compression, where: "layer 2 of x", digest: other })).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(OciDigestMismatchError);
        expect((err as Error).message).toBe(`layer 2 of x: blob digest mismatch: expected ${other}, the ${compressed.length} bytes read hash to ${sha256Digest(compressed)}`);
        // A flipped byte that breaks decoding is still reported as what it is: a blob that is not
        // what its digest says (the rest of the file hashed after decoding stopped).
        const flipped = new Uint8Array(fs.readFileSync(file));
        flipped[777 + (compressed.length >> 1)]! ^= 0x5a;
        fs.writeFileSync(file, flipped);
        const broken = await collect(layerChunks(fileChunks(file, 777, 777 + compressed.length), { compression, where: "w", digest: sha256Digest(compressed) })).catch((e: unknown) => e);
        expect(broken).toBeInstanceOf(OciDigestMismatchError);
        expect((broken as Error).message).toContain(`the ${compressed.length} bytes read hash to`);
        // A file cut short of the range: named, with where it ended.
        fs.truncateSync(file, 777 + compressed.length - 5000);
        const short = await collect(layerChunks(fileChunks(file, 777, 777 + compressed.length), { compression, where: "w" })).catch((e: unknown) => e);
        expect((short as Error).message).toBe(`${file}: file ends at byte ${777 + compressed.length - 5000}, expected ${777 + compressed.length}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test("zstd's frame checksum is left to the sha256 that covers the same bytes, and checked where none does", async () => {
    // zlib's zstd writes a content checksum when asked: the frame's last 4 bytes.
    const framed = new Uint8Array(zlib.zstdCompressSync(data, { params: { [zlib.constants.ZSTD_c_checksumFlag]: 1 } }));
    const badSum = framed.slice();
    badSum[badSum.length - 1]! ^= 0xff;
    // No digest: the frame checksum is all there is, and it is checked.
    await expect(collect(layerChunks(pieces(badSum, 1 << 20), { compression: "zstd", where: "layer 1 of z" }))).rejects.toThrow(/layer 1 of z: zstd decompression failed: .*checksum/i);
    // A blob digest (of these bytes) and the diff_id cover them: the content is right, so it passes.
    const out = await collect(layerChunks(pieces(badSum, 1 << 20), { compression: "zstd", where: "w", digest: sha256Digest(badSum), diffId: sha256Digest(data) }));
    expect(out).toEqual(data);
  });
});
