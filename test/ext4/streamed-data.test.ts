// File data copied while the tar is read (Ext4ImageWriter.streamFile) must give exactly the
// image the writer makes without streaming: the copies are kept only when the plan places every
// file where the prediction did, and are discarded and redone otherwise. Both outcomes are
// checked byte for byte against writeExt4Image on the same tree.
import { afterAll, expect, test } from "bun:test";
import { closeSync, ftruncateSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ext4ImageWriter, writeExt4Image, type WriteStats } from "../../src/ext4/index.ts";
import { loadRootfsTar, TarParser, type TarEntry } from "../../src/tar/index.ts";
import { FdByteSource } from "../../src/tar/source.ts";
import type { IoOptions } from "../../src/io/options.ts";
import { Spool } from "../../src/io/spool.ts";
import { ZeroBlockScanner } from "../../src/io/zeros.ts";
import { predictionGeometry, StreamedFileData } from "../../src/ext4/streamed-data.ts";
import { SpoolPolicy, type ByteSource } from "../../src/tree/index.ts";
import fc from "fast-check";
import { testWith } from "../helpers/env.ts";
import { differingOffsets, e2fsckClean, scratchDir } from "../helpers/oracles.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";

const work = scratchDir("streamed-data");
const dummySource: ByteSource = { readInto: () => {}, close: () => {} };
afterAll(() => rmSync(work, { recursive: true, force: true }));

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = ((i * 2654435761 + seed) >>> 24) | 1;
  return b;
}

/** Files of many shapes: empty, tiny, multi-block, sparse, all-zero, hardlinked, > 4 MiB. */
function mixedTar(extra?: (t: TarBuilder) => void): Uint8Array {
  const t = new TarBuilder();
  t.dir("d");
  for (let i = 0; i < 300; i++) t.file(`d/f${i}`, bytes((i * 977) % 20000, i));
  t.file("d/empty", "");
  t.hardlink("d/link", "d/f7");
  const sparse = new Uint8Array(50 * 4096);
  sparse[3] = 1;
  sparse[30 * 4096 + 5] = 2;
  t.file("d/sparse", sparse);
  t.file("d/zeros", new Uint8Array(3 * 4096));
  t.file("d/large", bytes(5 * 1024 * 1024 + 17, 99));
  extra?.(t);
  return t.end();
}

async function streamed(tarPath: string, out: string, opts: { size?: number; likelyDataBytes?: number; io?: IoOptions } = {}): Promise<WriteStats> {
  const writer = Ext4ImageWriter.open({ out, metadataCsum: true, ...opts });
  const loaded = await loadRootfsTar(tarPath, {
    spoolNear: out,
    io: opts.io,
    fileDataSink: (source, spool) => writer.fileDataSink(source, spool),
  });
  try {
    return await writer.finish(loaded.root, loaded.sources, loaded.identity);
  } catch (err) {
    await writer.discard();
    throw err;
  } finally {
    loaded.cleanup();
  }
}

async function unstreamed(tarPath: string, out: string, opts: { size?: number } = {}): Promise<WriteStats> {
  const loaded = await loadRootfsTar(tarPath, { spoolNear: out });
  try {
    return await writeExt4Image(loaded.root, loaded.sources, { out, metadataCsum: true, identity: loaded.identity, ...opts });
  } finally {
    loaded.cleanup();
  }
}

testWith({ tools: ["e2fsck"] }, "streamed copies are kept for an ordinary tar and give the unstreamed image byte for byte", async () => {
  const tar = join(work, "mixed.tar");
  writeFileSync(tar, mixedTar());
  const a = join(work, "streamed.img");
  const b = join(work, "unstreamed.img");
  const stats = await streamed(tar, a, { size: 64 << 20 });
  await unstreamed(tar, b, { size: 64 << 20 });
  expect(stats.streamed).toMatchObject({ kept: true, discardedBecause: null });
  expect(stats.streamed!.files).toBe(300 - 1 + 2); // f0 is empty; + sparse + large; zeros has no blocks
  expect(stats.streamed!.directWrites + stats.streamed!.bufferedWrites).toBeGreaterThan(0);
  expect(differingOffsets(a, b)).toEqual([]);
  e2fsckClean(a);
}, 60_000);

testWith({ tools: ["e2fsck"] }, "no file data at all: no writer thread is started just for the metadata, and the image is the unstreamed one", async () => {
  const t = new TarBuilder();
  t.dir("etc");
  t.symlink("etc/localtime", "/usr/share/zoneinfo/UTC");
  t.file("etc/empty", "");
  t.fifo("run/initctl");
  const tar = join(work, "nodata.tar");
  writeFileSync(tar, t.end());
  const a = join(work, "nodata-streamed.img");
  const b = join(work, "nodata-unstreamed.img");
  const stats = await streamed(tar, a, { size: 64 << 20 });
  await unstreamed(tar, b, { size: 64 << 20 });
  expect(stats.streamed).toMatchObject({ kept: true, files: 0, directWrites: 0, bufferedWrites: 0 });
  expect(differingOffsets(a, b)).toEqual([]);
  e2fsckClean(a);
});

test("a file replaced later in the tar: the streamed copies are discarded, the image is still the unstreamed one", async () => {
  const tar = join(work, "replaced.tar");
  writeFileSync(tar, mixedTar((t) => t.file("d/f10", "replaced by a shorter file\n")));
  const a = join(work, "replaced-streamed.img");
  const b = join(work, "replaced-unstreamed.img");
  const stats = await streamed(tar, a, { size: 64 << 20 });
  await unstreamed(tar, b, { size: 64 << 20 });
  expect(stats.streamed!.kept).toBe(false);
  expect(stats.streamed!.discardedBecause).toContain("placed");
  expect(differingOffsets(a, b)).toEqual([]);
}, 60_000);

test("a wrong size guess (another descriptor table size): discarded, and the image is still the unstreamed one", async () => {
  const tar = join(work, "guess.tar");
  writeFileSync(tar, mixedTar());
  const a = join(work, "guess-streamed.img");
  const b = join(work, "guess-unstreamed.img");
  // 20 GiB of "likely data" predicts 3 descriptor blocks; the default 1 GiB image has 1.
  const stats = await streamed(tar, a, { likelyDataBytes: 20 * 2 ** 30 });
  await unstreamed(tar, b);
  expect(stats.streamed!.kept).toBe(false);
  expect(stats.streamed!.discardedBecause).toContain("descriptor blocks");
  expect(differingOffsets(a, b)).toEqual([]);
}, 60_000);

test("many large files, and large sparse ones, across read chunks and write slots: still the unstreamed image", async () => {
  const tar = join(work, "many-large.tar");
  writeFileSync(tar, mixedTar((t) => {
    for (let i = 0; i < 18; i++) t.file(`big/${i}`, bytes((4 << 20) + 4096 * i + 5, 1000 + i));
    // 10 MiB with zero stretches that start and end off block boundaries and across 4 MiB reads.
    const holes = bytes(10 << 20, 7);
    for (const [a, b] of [[5000, 70_000], [(4 << 20) - 3000, (4 << 20) + 20_000], [(6 << 20) + 1, (9 << 20) - 1]]) holes.fill(0, a!, b!);
    t.file("big/holes", holes);
    t.file("big/zero-tail", Uint8Array.from([...bytes(8192 + 100, 3), ...new Uint8Array(3 * 4096 + 7)]));
  }));
  const a = join(work, "many-large-streamed.img");
  const b = join(work, "many-large-unstreamed.img");
  const stats = await streamed(tar, a, { size: 256 << 20 });
  await unstreamed(tar, b, { size: 256 << 20 });
  expect(stats.streamed).toMatchObject({ kept: true, discardedBecause: null });
  expect(differingOffsets(a, b)).toEqual([]);
}, 120_000);

test("without direct I/O (BANGER_NO_DIRECT_IO, or a filesystem that refuses it) the writes go through the page cache: same image", async () => {
  const tar = join(work, "buffered.tar");
  writeFileSync(tar, mixedTar());
  const a = join(work, "buffered-streamed.img");
  const b = join(work, "buffered-unstreamed.img");
  const stats = await streamed(tar, a, { size: 64 << 20, io: { directIo: false } }); // what BANGER_NO_DIRECT_IO sets
  await unstreamed(tar, b, { size: 64 << 20 });
  expect(stats.streamed).toMatchObject({ kept: true, directWrites: 0 });
  expect(stats.streamed!.bufferedWrites).toBeGreaterThan(0);
  expect(differingOffsets(a, b)).toEqual([]);
}, 60_000);

test("streamed zero-block detection gives the parser's runs for any data and any chunking", () => {
  // Blocks of four kinds (data, zero, data ending in zeros, zero but one byte), any length,
  // cut into pieces at arbitrary offsets: runs must equal ZeroBlockScanner's.
  const block = fc.oneof(fc.constant("data"), fc.constant("zero"), fc.constant("tail"), fc.constant("one"));
  fc.assert(
    fc.property(fc.array(block, { maxLength: 40 }), fc.nat({ max: 4095 }), fc.array(fc.nat({ max: 30_000 }), { maxLength: 8 }), (kinds, extra, cuts) => {
      const size = kinds.length * 4096 + extra;
      if (size === 0) return;
      const data = new Uint8Array(size);
      kinds.forEach((k, i) => {
        const at = i * 4096;
        if (k === "data") data.fill(7, at, at + 4096);
        if (k === "tail") data.fill(9, at, at + 100);
        if (k === "one") data[at + 1234] = 1;
      });
      if (extra > 0 && kinds.length % 2 === 0) data.fill(5, kinds.length * 4096, size);
      const scanner = new ZeroBlockScanner();
      scanner.scan(data, 0, size);
      const expected = scanner.finish();
      const sink = new StreamedFileData(dummySource, -1, predictionGeometry(1 << 18));
      sink.abandon("no writing in this test"); // runs are still found
      sink.begin(0, size);
      const points = [...new Set([0, ...cuts.map((c) => c % (size + 1)), size])].sort((x, y) => x - y);
      for (let i = 0; i + 1 < points.length; i++) {
        // Pieces as the parser hands them over: views into a larger buffer at some offset.
        const piece = data.slice(points[i]!, points[i + 1]!);
        const host = new Uint8Array(piece.length + 3);
        host.set(piece, 3);
        sink.data(host, 3, 3 + piece.length);
      }
      const got = sink.end();
      expect(got === undefined ? undefined : Array.from(got)).toEqual(expected === undefined ? undefined : Array.from(expected));
    }),
    { numRuns: 300 },
  );
});

test("standard input: the spool skips what the stream holds, and gets all of it back when the copies are discarded, also when the image space runs out mid-stream (a carried block included)", async () => {
  // Random files (with zero blocks), read in random 4 KiB-multiple chunks as a pipe is, into a
  // prediction with room for only `room` blocks: the stream abandons wherever that runs out,
  // the spool takes every chunk from there on, and restoreSource writes back everything that
  // had been placed. Afterwards the spool must hold every file's bytes at its tar offset.
  const file = fc.record({ size: fc.nat({ max: 40_000 }), seed: fc.nat({ max: 250 }), zeroFrom: fc.nat({ max: 40_000 }), zeroLen: fc.nat({ max: 20_000 }) });
  await fc.assert(
    fc.asyncProperty(fc.array(file, { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 4, max: 120 }), async (files, chunkBlocks, room) => {
      const t = new TarBuilder();
      files.forEach((f, i) => {
        const data = new Uint8Array(f.size);
        for (let k = 0; k < f.size; k++) data[k] = ((k * 7 + f.seed) % 255) + 1;
        data.fill(0, f.zeroFrom, f.zeroFrom + f.zeroLen);
        t.file(`f${i}`, data);
      });
      const tar = t.end();
      const dir = scratchDir("restore");
      const image = openSync(join(dir, "image"), "w+");
      const spoolFd = openSync(join(dir, "spool"), "w+");
      try {
        const geometry = { blocksCount: 3 + room, groupCount: 1, inodesPerGroup: 0, inodeTableBlocksPerGroup: 0, gdtBlocks: 1, descSize: 64 };
        ftruncateSync(image, geometry.blocksCount * 4096);
        const source = new FdByteSource(spoolFd, "spool", false);
        const spool = new Spool(spoolFd);
        const policy = new SpoolPolicy((bytes, offset) => spool.writeBack(bytes, offset));
        const sink = new StreamedFileData(source, image, geometry, policy);
        expect(policy.spoolsChunks).toBe(false); // the sink holds the file bytes from the start
        const entries: TarEntry[] = [];
        const parser = new TarParser((e) => entries.push(e));
        parser.useFileDataSink(sink);
        const chunk = chunkBlocks * 4096;
        for (let base = 0; base < tar.length; base += chunk) {
          const piece = tar.slice(base, base + chunk);
          parser.push(piece);
          if (policy.spoolsChunks) spool.write(piece, piece.length, base);
        }
        parser.end();
        await spool.close();
        await sink.restoreSource();
        for (const e of entries) {
          if (e.size === 0) continue;
          const got = new Uint8Array(e.size);
          readSync(spoolFd, got, 0, e.size, e.dataOffset);
          expect(Buffer.compare(got, tar.subarray(e.dataOffset, e.dataOffset + e.size))).toBe(0);
        }
      } finally {
        closeSync(image);
        closeSync(spoolFd);
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    // The carried-block case found by a mutant (the piece that did not fit kept for the restore).
    { numRuns: 150, examples: [[[{ size: 24065, seed: 0, zeroFrom: 0, zeroLen: 0 }], 1, 4]] },
  );
}, 120_000);
