// libzstd through bun:ffi (src/oci/zstd.ts) against node:zlib's decoder and the zstd tool.
import { describe, expect, test } from "bun:test";
import zlib from "node:zlib";
import { layerChunks } from "../../src/oci/layer-stream.ts";
import { nativeZstdAvailable, zstdDecompressNative } from "../../src/oci/zstd.ts";
import { IN_CI } from "../helpers/env.ts";
import { concat } from "../helpers/oci-images.ts";

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c.slice()); // pieces are reused (zstd.ts RING)
  return concat(parts);
}

const data = concat([crypto.getRandomValues(new Uint8Array(300_000)), new Uint8Array(3_000_000), new TextEncoder().encode("tail ".repeat(50_000))]);
const frame = new Uint8Array(zlib.zstdCompressSync(data));

describe("native zstd", () => {
  test("libzstd loads on Linux CI machines (it ships with apt)", () => {
    if (IN_CI || process.platform === "linux") expect(nativeZstdAvailable()).toBe(true);
    expect(nativeZstdAvailable(true)).toBe(false);
  });

  test("equals the input for any chunking, with several frames", async () => {
    const small = new Uint8Array(zlib.zstdCompressSync(data.subarray(0, 20_000)));
    expect(await collect(zstdDecompressNative(pieces(small, 1)))).toEqual(data.subarray(0, 20_000));
    const two = concat([frame, frame]);
    for (const size of [4093, 1 << 20, two.length]) {
      expect(await collect(zstdDecompressNative(pieces(two, size)))).toEqual(concat([data, data]));
    }
  });

  test("a truncated stream and a corrupt one are errors, not short output", async () => {
    await expect(collect(zstdDecompressNative(pieces(frame.subarray(0, frame.length - 10), 65536)))).rejects.toThrow("truncated");
    // A broken frame header (a flip inside a raw literal is caught by the diff_id instead).
    const bad = frame.slice();
    bad[0] = bad[0]! ^ 0xff;
    await expect(collect(zstdDecompressNative(pieces(bad, 65536)))).rejects.toThrow("zstd: Unknown frame descriptor");
  });

  test("layer streams name the layer on a zstd failure", async () => {
    const err = await collect(layerChunks(pieces(frame.subarray(0, 1000), 512), { compression: "zstd", where: "layer 3 of x" })).catch((e: unknown) => e);
    expect(String((err as Error).message)).toBe("layer 3 of x: zstd decompression failed: the compressed stream ends inside a frame (truncated)");
    const gz = new Uint8Array(zlib.gzipSync(data));
    const gzErr = await collect(layerChunks(pieces(gz.subarray(0, 1000), 512), { compression: "gzip", where: "layer 2 of x" })).catch((e: unknown) => e);
    expect(String((gzErr as Error).message)).toContain("layer 2 of x: gzip decompression failed");
  });

  test("Bun's own zstd stream (the fallback) misses a truncation that libzstd reports: why the diff_id check stays", async () => {
    const out = await collect(layerChunks(pieces(frame.subarray(0, 1000), 512), { compression: "zstd", where: "x", noNativeZstd: true })).catch((e: unknown) => e);
    // If Bun starts reporting it, this test tells us the fallback became safe on its own.
    expect(out).toBeInstanceOf(Uint8Array);
  });
});
