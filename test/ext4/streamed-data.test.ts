// File data copied while the tar is read (Ext4ImageWriter.streamFile) must give exactly the
// image the writer makes without streaming: the copies are kept only when the plan places every
// file where the prediction did, and are discarded and redone otherwise. Both outcomes are
// checked byte for byte against writeExt4Image on the same tree.
import { afterAll, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ext4ImageWriter, writeExt4Image, type WriteStats } from "../../src/ext4/index.ts";
import { loadRootfsTar } from "../../src/tar/index.ts";
import { LARGE_BYTES_STREAMED, LARGE_EXTENT_BYTES } from "../../src/ext4/streamed-data.ts";
import { testWith } from "../helpers/env.ts";
import { differingOffsets, e2fsckClean, scratchDir } from "../helpers/oracles.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";

const work = scratchDir("streamed-data");
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

async function streamed(tarPath: string, out: string, opts: { size?: number; likelyDataBytes?: number } = {}): Promise<WriteStats> {
  const writer = Ext4ImageWriter.open({ out, metadataCsum: true, ...opts });
  const loaded = await loadRootfsTar(tarPath, {
    spoolNear: out,
    onFile: (source, offset, size, runs) => writer.streamFile(source, offset, size, runs),
    onChunk: () => writer.flushStream(),
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
  expect(differingOffsets(a, b)).toEqual([]);
  e2fsckClean(a);
}, 60_000);

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

test("large extents past the worker's budget are copied by the caller after the metadata: still the unstreamed image", async () => {
  const tar = join(work, "many-large.tar");
  const count = Math.ceil(LARGE_BYTES_STREAMED / LARGE_EXTENT_BYTES) + 2;
  writeFileSync(tar, mixedTar((t) => {
    for (let i = 0; i < count; i++) t.file(`big/${i}`, bytes(LARGE_EXTENT_BYTES + 4096 * i + 5, 1000 + i));
  }));
  const a = join(work, "many-large-streamed.img");
  const b = join(work, "many-large-unstreamed.img");
  const stats = await streamed(tar, a, { size: 256 << 20 });
  await unstreamed(tar, b, { size: 256 << 20 });
  expect(stats.streamed).toMatchObject({ kept: true, discardedBecause: null });
  expect(differingOffsets(a, b)).toEqual([]);
}, 120_000);
