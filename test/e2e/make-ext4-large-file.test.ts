// End to end: a member larger than 4 GiB (4.5 GiB + 123 bytes, nearly all zero bytes, which a
// tar without --sparse still carries in full) streamed through a pipe into
// `banger internal make-ext4 --rootfs-tar -`: no 4 GiB tar is ever stored by the test. The
// kernel-mounted image must equal the sparse source directory (size, content digest, owner,
// mode, mtime) and pass e2fsck. Kept in its own file: it moves ~4.5 GiB through a pipe.
// Starts: GNU tar (producer), the banger CLI, e2fsck, debugfs, loop mount.
import { afterAll, expect } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { testWith } from "../helpers/env.ts";
import { debugfsStat, e2fsckClean, scratchDir } from "../helpers/oracles.ts";
import { compareSnapshots, snapshotTree } from "../helpers/kernel-compare.ts";
import { BIG_FILE_SIZE, bigFileTar } from "../helpers/torture.ts";
import { E2E_TOOLS, makeExt4Ok, snapshotImage } from "./lib.ts";

const work = scratchDir("e2e-large");
const big = bigFileTar();
afterAll(() => {
  big.cleanup();
  rmSync(work, { recursive: true, force: true });
});

testWith({ tools: E2E_TOOLS, root: true }, "a 4.5 GiB mostly-zero member from stdin: e2fsck clean, holes, same content as the source", async () => {
  const image = join(work, "big.img");
  const r = await makeExt4Ok(["--rootfs-tar", "-", "--out", image], { stdinFrom: big.source });
  console.error(`make-ext4 with a ${BIG_FILE_SIZE}-byte member from stdin: ${(r.ms / 1000).toFixed(1)} s`);
  e2fsckClean(image);
  const st = debugfsStat(image, "/big");
  expect(st.size).toBe(BigInt(BIG_FILE_SIZE));
  // 8 data blocks (+ extent tree blocks at most); the zeros must be holes, not 1.1M allocated blocks.
  expect(Number(st.blockcount) / 8).toBeLessThan(16);
  const ours = await snapshotImage(image);
  expect(compareSnapshots(ours, snapshotTree(big.sourceDir), { ignore: ["lost+found"], labels: ["ours", "source"] })).toEqual([]);
}, 600_000);
