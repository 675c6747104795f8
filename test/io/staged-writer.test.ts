// StagedBlockWriter: what the caller puts lands at its blocks (direct or buffered), and a write
// the disk refuses comes back from finish() as an error naming the blocks, not as a hang or a
// silently short image. Starts: its worker thread; the full-disk case a real tmpfs (root).
import { afterAll, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { StagedBlockWriter } from "../../src/io/staged-writer.ts";
import { testWith } from "../helpers/env.ts";
import { scratchDir } from "../helpers/oracles.ts";

const work = scratchDir("staged-writer");
afterAll(() => rmSync(work, { recursive: true, force: true }));

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = ((i * 2654435761 + seed) >>> 24) | 1;
  return b;
}

for (const direct of [true, false]) {
  test(`puts land at their blocks, last blocks zero-padded, across slots (${direct ? "direct" : "buffered"})`, async () => {
    const path = join(work, `out-${direct}.img`);
    const fd = openSync(path, "w+");
    try {
      const w = new StagedBlockWriter(fd, 4096, { directIo: direct }); // false: what BANGER_NO_DIRECT_IO sets
      const a = pattern(10_000, 1); // blocks 3..5, the last one partial
      const b = pattern(9 << 20, 2); // blocks 6.. (contiguous with a: spans several slots)
      const c = pattern(5, 3); // block 5000 (a jump)
      w.put(3, a, 0, a.length);
      w.put(6, b, 0, b.length);
      w.put(5000, c, 0, c.length);
      const stats = await w.finish();
      expect(direct ? stats.direct > 0 || stats.buffered > 0 : stats.direct === 0 && stats.buffered > 0).toBe(true);
      const img = readFileSync(path);
      expect(Buffer.compare(img.subarray(3 * 4096, 3 * 4096 + a.length), a)).toBe(0);
      expect(img.subarray(3 * 4096 + a.length, 6 * 4096).every((x) => x === 0)).toBe(true);
      expect(Buffer.compare(img.subarray(6 * 4096, 6 * 4096 + b.length), b)).toBe(0);
      expect(Buffer.compare(img.subarray(5000 * 4096, 5000 * 4096 + 5), c)).toBe(0);
      expect(img.length).toBe(5001 * 4096);
    } finally {
      closeSync(fd);
    }
  }, 30_000);

  test(`data is flushed to the disk every 32 MiB on the way, and still lands whole (${direct ? "direct" : "buffered"})`, async () => {
    const path = join(work, `flush-${direct}.img`);
    const fd = openSync(path, "w+");
    try {
      const w = new StagedBlockWriter(fd, 4096, { directIo: direct });
      const a = pattern(70 << 20, 5); // 70 MiB: two flushes on the way, the rest left to the final fsync
      for (let at = 0; at < a.length; at += 1 << 20) w.put(at / 4096, a, at, at + (1 << 20));
      const stats = await w.finish();
      expect(stats.flushes).toBe(2);
      expect(Buffer.compare(readFileSync(path), a)).toBe(0);
    } finally {
      closeSync(fd);
    }
  }, 60_000);

  test(`a short image is never flushed before the end (${direct ? "direct" : "buffered"})`, async () => {
    const fd = openSync(join(work, `short-${direct}.img`), "w+");
    try {
      const w = new StagedBlockWriter(fd, 4096, { directIo: direct });
      const a = pattern(31 << 20, 6);
      w.put(0, a, 0, a.length);
      expect((await w.finish()).flushes).toBe(0);
    } finally {
      closeSync(fd);
    }
  }, 30_000);
}

test("a transient writer (a layer's spool) writes through the page cache, never direct, never flushed", async () => {
  const path = join(work, "transient.img");
  const fd = openSync(path, "w+");
  try {
    const w = new StagedBlockWriter(fd, 4096, {}, true);
    const a = pattern(70 << 20, 7); // past two flush marks of an image writer
    for (let at = 0; at < a.length; at += 1 << 20) w.put(at / 4096, a, at, at + (1 << 20));
    const stats = await w.finish();
    expect(stats).toEqual({ direct: 0, buffered: stats.buffered, flushes: 0 });
    expect(stats.buffered).toBeGreaterThan(0);
    expect(Buffer.compare(readFileSync(path), a)).toBe(0);
  } finally {
    closeSync(fd);
  }
}, 60_000);

testWith({ tools: ["mount", "umount"], root: true }, "a write the disk refuses (full tmpfs) is reported by finish(), naming the blocks", async () => {
  const mnt = join(work, "mnt");
  mkdirSync(mnt);
  const mounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt]);
  expect(mounted.exitCode, mounted.stderr.toString()).toBe(0);
  try {
    const fd = openSync(join(mnt, "img"), "w+");
    try {
      const w = new StagedBlockWriter(fd, 4096);
      const data = pattern(16 << 20, 4);
      w.put(0, data, 0, data.length);
      await expect(w.finish()).rejects.toThrow(/writing \d+ blocks at block \d+: .*(ENOSPC|no space)/i);
    } finally {
      closeSync(fd);
    }
  } finally {
    Bun.spawnSync(["umount", mnt]);
  }
}, 30_000);
