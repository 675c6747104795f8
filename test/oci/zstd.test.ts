// libzstd through bun:ffi (src/oci/zstd.ts) against node:zlib's decoder and the zstd tool.
import { describe, expect, test } from "bun:test";
import zlib from "node:zlib";
import { layerChunks } from "../../src/oci/layer-stream.ts";
import { nativeZstdAvailable, ZstdBlockDecoder, zstdDecompressNative } from "../../src/oci/zstd.ts";
import { IN_CI, testWith } from "../helpers/env.ts";
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

  test("libzstd's buffer-less API loads where the streaming one does (the layer worker's block decoder)", () => {
    const dec = nativeZstdAvailable() ? ZstdBlockDecoder.create() : null;
    if (IN_CI || process.platform === "linux") expect(dec).not.toBeNull();
    dec?.free();
  });

  testWith({ tools: ["zstd"] }, "the layer worker: frames of every kind, input cut anywhere, the same bytes as in-line", async () => {
    // Block-decoded frames (windows the worker's 16 MiB ring keeps) around a skippable frame
    // and a 128 MiB-window frame (--long=27, from a pipe: no content size), which hands the
    // rest of the stream to the streaming decoder; 20 MiB in one 2 MiB-window frame, which
    // wraps around the ring while matches still reach back across its end.
    const a = data.subarray(0, 1_500_000);
    const b = data.subarray(200_000, 3_300_000);
    const longWindow = Bun.spawnSync(["zstd", "-q", "-c", "--long=27", "-"], { stdin: b });
    expect(longWindow.exitCode).toBe(0);
    const skippable = concat([new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 5, 0, 0, 0]), new TextEncoder().encode("hello")]);
    const fromPipe = Bun.spawnSync(["zstd", "-q", "-c", "-3", "-"], { stdin: data });
    const big = concat([data, data, data, data, data, data]);
    const cases: [Uint8Array, Uint8Array][] = [
      [concat([new Uint8Array(zlib.zstdCompressSync(a)), skippable, fromPipe.stdout, new Uint8Array(zlib.zstdCompressSync(b))]), concat([a, data, b])],
      [concat([fromPipe.stdout, longWindow.stdout, new Uint8Array(zlib.zstdCompressSync(a))]), concat([data, b, a])],
      [new Uint8Array(zlib.zstdCompressSync(big)), big],
    ];
    for (const [blob, want] of cases) {
      // 7-byte pieces: a frame header and blocks spread over many slots (not for 20 MiB: 3 M pieces).
      for (const size of [...(blob.length < 4 << 20 ? [7] : []), 4093, 1 << 20, blob.length]) {
        const inline = await collect(layerChunks(pieces(blob, size), { compression: "zstd", where: "x", inflateInline: true }));
        expect(inline).toEqual(want);
        expect(await collect(layerChunks(pieces(blob, size), { compression: "zstd", where: "x" }))).toEqual(want);
      }
    }
    // Cut inside a block-decoded frame: truncated, not short.
    const cut = fromPipe.stdout.subarray(0, fromPipe.stdout.length >> 1);
    const err = await collect(layerChunks(pieces(cut, 4093), { compression: "zstd", where: "layer 1 of y" })).catch((e: unknown) => e);
    expect((err as Error).message).toBe("layer 1 of y: zstd decompression failed: the compressed stream ends inside a frame (truncated)");
  }, 60_000);
});
