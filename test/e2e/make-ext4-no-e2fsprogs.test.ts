// End to end: `banger internal make-ext4` needs no e2fsprogs, no mount and no tar binary.
// (1) PATH holds only bun (a symlink to process.execPath). (2) As root, in a private mount
// namespace (unshare -m), every e2fsprogs/util-linux/tar binary on this machine is masked by
// a bind mount of /dev/null, so even an absolute /usr/sbin/mkfs.ext4 call would fail.
// The image is then checked by the real e2fsck outside. Starts: the banger CLI, unshare, e2fsck.
import { afterAll, expect } from "bun:test";
import { existsSync, realpathSync, rmSync, symlinkSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { testWith, toolPath } from "../helpers/env.ts";
import { e2fsckClean, run, scratchDir } from "../helpers/oracles.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";
import { REPO_ROOT, makeExt4Ok } from "./lib.ts";

const work = scratchDir("e2e-no-e2fsprogs");
afterAll(() => rmSync(work, { recursive: true, force: true }));

function smallTar(): string {
  const t = new TarBuilder();
  t.dir("etc");
  t.file("etc/hostname", "banger\n");
  t.dir("big");
  for (let i = 0; i < 2000; i++) t.file(`big/f${i}`, "");
  t.file("bin/tool", "x", { mode: 0o4755, pax: { "SCHILY.xattr.user.k": "v" } });
  const p = join(work, `small-${Math.random().toString(36).slice(2)}.tar`);
  writeFileSync(p, t.end());
  return p;
}

const FORBIDDEN = ["mkfs.ext4", "mkfs", "mke2fs", "debugfs", "e2fsck", "fsck", "fsck.ext4", "tune2fs", "resize2fs", "e2image", "mount", "umount", "losetup", "tar"];

testWith({ tools: ["e2fsck"] }, "make-ext4 succeeds with only bun on PATH", async () => {
  const bin = join(work, "bin-only-bun");
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, "bun"));
  const image = join(work, "path-only.img");
  await makeExt4Ok(["--rootfs-tar", smallTar(), "--out", image, "--size", "128M"], { env: { PATH: bin, HOME: work } });
  e2fsckClean(image);
}, 60_000);

testWith({ tools: ["e2fsck", "unshare"], root: true }, "make-ext4 succeeds with every e2fsprogs/mount/tar binary masked (mount namespace)", async () => {
  const masked = new Set<string>();
  for (const name of FORBIDDEN) {
    for (const dir of ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"]) {
      const p = join(dir, name);
      if (existsSync(p)) masked.add(realpathSync(p));
    }
  }
  expect(masked.size).toBeGreaterThan(3);
  const image = join(work, "masked.img");
  const tar = smallTar();
  const mountBin = toolPath("mount");
  // Mask with the real mount first, the mount binary itself last; then prove the mask works.
  const list = [...masked].filter((p) => p !== realpathSync(mountBin));
  list.push(realpathSync(mountBin));
  const script = [
    "set -e",
    ...list.map((p) => `${mountBin} --bind /dev/null '${p}'`),
    `if '${toolPath("mkfs.ext4")}' -V >/dev/null 2>&1; then echo 'mask failed: mkfs.ext4 still runs' >&2; exit 99; fi`,
    `cd '${REPO_ROOT}'`,
    `exec '${process.execPath}' src/cli/main.ts internal make-ext4 --rootfs-tar '${tar}' --out '${image}' --size 128M`,
  ].join("\n");
  const r = run([toolPath("unshare"), "-m", "--propagation", "private", "sh", "-c", script]);
  expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0);
  e2fsckClean(image);
}, 60_000);
