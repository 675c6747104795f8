// End to end: a make-ext4 killed with SIGKILL in the middle of writing leaves nothing behind:
// no image, no temp file, no spool (the image is built in an O_TMPFILE inode and only named when
// complete). Starts: the banger CLI as a child process, killed while it holds the unnamed image.
import { afterAll, expect } from "bun:test";
import { readdirSync, readlinkSync, rmSync } from "node:fs";
import { join } from "node:path";
import { testWith } from "../helpers/env.ts";
import { runOk, scratchDir } from "../helpers/oracles.ts";

const work = scratchDir("e2e-killed");
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** True once `pid` holds a descriptor on an unnamed file in `dir` (O_TMPFILE shows as "#ino (deleted)"). */
function holdsUnnamedFileIn(pid: number, dir: string): boolean {
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target = "";
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (target.startsWith(`${dir}/#`) && target.endsWith("(deleted)")) return true;
    }
  } catch {
    // the process is gone
  }
  return false;
}

testWith({ tools: ["tar"] }, "SIGKILL while the image is being written leaves nothing in the output directory", async () => {
  const src = join(work, "src");
  const outDir = join(work, "out");
  runOk(["mkdir", "-p", src, outDir]);
  runOk(["sh", "-c", `head -c 400M /dev/urandom > ${src}/big`]);
  const tar = join(work, "big.tar");
  runOk(["tar", "-cf", tar, "-C", src, "."]);
  rmSync(src, { recursive: true, force: true });

  const child = Bun.spawn([process.execPath, "src/cli/main.ts", "internal", "make-ext4", "--rootfs-tar", tar, "--out", join(outDir, "rootfs.img")], {
    cwd: join(import.meta.dir, "../.."),
    stdout: "ignore",
    stderr: "ignore",
  });
  const deadline = Date.now() + 60_000;
  let caught = false;
  while (Date.now() < deadline && child.exitCode === null) {
    if (holdsUnnamedFileIn(child.pid, outDir)) {
      caught = true;
      child.kill("SIGKILL");
      break;
    }
    await Bun.sleep(1);
  }
  await child.exited;
  expect(caught).toBe(true);
  expect(readdirSync(outDir)).toEqual([]);
}, 120_000);
