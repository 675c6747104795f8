// Speed sanity: loads a ~150-250 MB real-world tar (node_modules plus a zero-heavy file) from a
// file and from a pipe, and prints MB/s next to `cat tar > file`. Asserts only a generous floor;
// the numbers are for the report and the later benchmark.

import { afterAll, beforeAll, describe, expect } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadRootfsTar } from "../../src/tar/index.ts";
import { testWith } from "../helpers/env.ts";
import { BUN, removeDir, run, tempDir } from "./util.ts";

let work = "";
let tarPath = "";
let size = 0;

beforeAll(() => {
  work = tempDir("speed");
  const extra = join(work, "extra");
  run(["mkdir", "-p", extra]);
  // 48 MiB: alternating 1 MiB of data and 1 MiB of zeros.
  const big = new Uint8Array(48 << 20);
  for (let mb = 0; mb < 48; mb += 2) big.fill(0x5a, mb << 20, (mb + 1) << 20);
  writeFileSync(join(extra, "half-zero.bin"), big);
  tarPath = join(work, "speed.tar");
  run(["tar", "--format=pax", "-cf", tarPath, "-C", resolve(import.meta.dir, "../../node_modules"), ".", "-C", extra, "."]);
  size = Bun.file(tarPath).size;
});
afterAll(() => removeDir(work));

const mbps = (bytes: number, ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);

describe("speed", () => {
  testWith({ tools: ["tar", "sh", "cat"] }, "file and stdin loading throughput (printed)", async () => {
    let t = performance.now();
    run(["sh", "-c", `cat '${tarPath}' > '${join(work, "copy.tar")}' && sync '${join(work, "copy.tar")}'`]);
    const catMs = performance.now() - t;

    const fileTimes: number[] = [];
    let entries = 0;
    for (let i = 0; i < 3; i += 1) {
      t = performance.now();
      const loaded = await loadRootfsTar(tarPath, { spoolNear: join(work, "out.img") });
      fileTimes.push(performance.now() - t);
      entries = loaded.root.children!.size;
      loaded.cleanup();
    }
    const fileMs = Math.min(...fileTimes);

    const child = join(import.meta.dir, "fixtures", "stdin-child.ts");
    t = performance.now();
    const r = Bun.spawnSync(["sh", "-c", `cat '${tarPath}' | '${BUN}' '${child}' '${join(work, "out.img")}' > /dev/null`]);
    const stdinMs = performance.now() - t;
    expect(r.exitCode).toBe(0);

    console.log(
      `[tar speed] ${(size / 1e6).toFixed(0)} MB tar: cat > file (+sync) ${mbps(size, catMs)} MB/s; ` +
        `loadRootfsTar(file) ${mbps(size, fileMs)} MB/s (best of 3); ` +
        `cat | loadRootfsTar("-") incl. bun startup and spool ${mbps(size, stdinMs)} MB/s`,
    );
    expect(entries).toBeGreaterThan(2);
    expect(size / 1e6 / (fileMs / 1000)).toBeGreaterThan(20);
  }, 120_000);
});
