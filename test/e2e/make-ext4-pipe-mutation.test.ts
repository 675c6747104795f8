// End to end: mutated tars piped into `banger internal make-ext4 --rootfs-tar -`. A pipe's file
// data is streamed into the image and not spooled; the base tar replaces a file later on, so
// every accepted input takes the path that writes the streamed data back into the spool. Each
// run must either give exactly the image the same bytes give from a file (and e2fsck finds it
// clean), or exit 1 with a named error and leave nothing in the output directory, as the file
// input does. Starts: the banger CLI as child processes; e2fsck.
import { afterAll, expect } from "bun:test";
import fc from "fast-check";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { testWith } from "../helpers/env.ts";
import { differingOffsets, e2fsckClean, scratchDir } from "../helpers/oracles.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";
import { makeExt4 } from "./lib.ts";

const work = scratchDir("e2e-pipe-mutation");
afterAll(() => rmSync(work, { recursive: true, force: true }));
const UUID = "11111111-2222-3333-4444-555555555555";

function baseTar(): Uint8Array {
  const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => ((i * 31 + seed) % 251) + 1);
  const t = new TarBuilder();
  t.dir("d");
  for (let i = 0; i < 12; i++) t.file(`d/f${i}`, bytes(1000 + i * 7000, i));
  t.file("d/big", bytes(5 << 20, 7));
  t.hardlink("d/h", "d/f1");
  t.symlink("l", "d");
  t.file("l/x", bytes(9000, 3));
  t.file("d/f5", bytes(100, 9)); // replaces d/f5: the streamed copies are discarded, the spool restored
  return t.end();
}

testWith({ tools: ["e2fsck"] }, "mutated tars through a pipe: the file input's image (e2fsck-clean), or the file input's refusal with nothing left", async () => {
  const base = baseTar();
  let accepted = 0;
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
      // Cut short in one case out of four, so most inputs stay acceptable and take the restore.
      fc.oneof({ arbitrary: fc.constant(null), weight: 3 }, { arbitrary: fc.nat(), weight: 1 }),
      async (writes, cut) => {
      const bytes = Uint8Array.from(base);
      for (const [pos, value] of writes) bytes[pos % bytes.length] = value;
      const dir = join(work, `r${run++}`);
      mkdirSync(dir);
      const tar = join(dir, "in.tar");
      writeFileSync(tar, cut === null ? bytes : bytes.subarray(0, cut % bytes.length));
      const outDir = join(dir, "out");
      mkdirSync(outDir);
      const fromFile = join(dir, "file.img");
      const fromPipe = join(outDir, "pipe.img");
      const file = await makeExt4(["--rootfs-tar", tar, "--out", fromFile, "--uuid", UUID]);
      const pipe = await makeExt4(["--rootfs-tar", "-", "--out", fromPipe, "--uuid", UUID], { stdinFrom: { command: ["cat", tar], approxBytes: 0 } });
      expect(pipe.exitCode).toBe(file.exitCode);
      if (pipe.exitCode === 0) {
        accepted++;
        expect(differingOffsets(fromFile, fromPipe)).toEqual([]);
        e2fsckClean(fromPipe);
      } else {
        expect(pipe.exitCode).toBe(1);
        expect(pipe.stderr).toMatch(/^banger internal make-ext4: /m);
        expect(readdirSync(outDir)).toEqual([]);
      }
      rmSync(dir, { recursive: true, force: true });
      },
    ),
    { numRuns: 25 },
  );
  expect(accepted).toBeGreaterThan(5);
}, 300_000);
