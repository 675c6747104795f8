// Tar files are passed to the parser through mapped windows (mapped-read.ts), with read() as the
// fallback. Both must give the same tree, offsets, runs and identity, also when members and
// headers straddle the 32 MiB window boundaries.
import { afterAll, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { IoOptions } from "../../src/io/options.ts";
import { loadRootfsTar } from "../../src/tar/index.ts";
import { walkTree } from "../../src/tree/nodes.ts";
import { scratchDir } from "../helpers/oracles.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";

const work = scratchDir("mapped-read");
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function summary(path: string, io: IoOptions = {}): Promise<string> {
  const loaded = await loadRootfsTar(path, { spoolNear: join(work, "out.img"), io });
  try {
    const lines: string[] = [Buffer.from(loaded.identity).toString("hex")];
    walkTree(loaded.root, (node, p) => lines.push(`${p} ${node.kind} ${node.size} ${node.data?.offset ?? ""} ${node.data?.runs ? Array.from(node.data.runs).join(",") : ""}`));
    return lines.join("\n");
  } finally {
    loaded.cleanup();
  }
}

test("mapped windows and read() give the same tree across window boundaries", async () => {
  const t = new TarBuilder();
  const block = new Uint8Array(4096).fill(7);
  // ~80 MiB: many small files, files with zero blocks, and members around 32 and 64 MiB.
  for (let i = 0; i < 2000; i++) t.file(`small/${i}`, block.subarray(0, (i * 37) % 4096));
  for (let i = 0; i < 19; i++) {
    const data = new Uint8Array((4 << 20) + 1000 * i).fill(i + 1);
    data.fill(0, 8192, 3 * 8192);
    t.file(`big/${i}`, data);
  }
  for (let i = 0; i < 500; i++) t.file(`tail/${i}`, `file ${i}\n`);
  const path = join(work, "windows.tar");
  const bytes = t.end();
  expect(bytes.length).toBeGreaterThan(64 << 20);
  writeFileSync(path, bytes);
  const mapped = await summary(path);
  const read = await summary(path, { mmap: false }); // what BANGER_NO_MMAP sets
  expect(mapped).toBe(read);
  expect(mapped).toContain("big/18 file");
}, 60_000);
