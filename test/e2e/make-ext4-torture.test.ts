// End to end: `banger internal make-ext4` on the torture tar (every entry kind and metadata
// corner, built as root on a kernel ext4 mount and archived by GNU tar), checked by e2fsck
// (check + preen-changes-nothing), debugfs (stat/ea_list/htree/extent depth), and the kernel:
// the read-only loop mount must equal, entry for entry, what GNU tar extracts onto a
// mkfs.ext4-made filesystem. Starts: GNU tar, mkfs.ext4, e2fsck, debugfs, dumpe2fs, loop mounts.
import { afterAll, expect } from "bun:test";
import { rmSync, writeFileSync, mkdirSync, renameSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { testWith, toolPath } from "../helpers/env.ts";
import { debugfsEaList, debugfsHtree, debugfsStat, dumpe2fs, runOk, scratchDir } from "../helpers/oracles.ts";
import { compareSnapshots, kernelReference, mountImage, snapshotTree, type Snapshot } from "../helpers/kernel-compare.ts";
import { buildTortureTar, CAP_NET_RAW_EP, patternBlock, SELINUX_LABEL, TORTURE } from "../helpers/torture.ts";
import { E2E_TOOLS, expectImageMatches, lazy, makeExt4Ok } from "./lib.ts";

const REQ = { tools: E2E_TOOLS, root: true };
const work = lazy(async () => scratchDir("e2e-torture"));
const torture = lazy(buildTortureTar);
const reference = lazy(async (): Promise<Snapshot> => kernelReference((await torture()).tarPath));
let cleanups: (() => void)[] = [];

afterAll(async () => {
  for (const c of cleanups) c();
  cleanups = [];
});

async function setup(): Promise<{ tar: string; ref: Snapshot; dir: string }> {
  const t = await torture();
  if (!cleanups.length) {
    const dir = await work();
    cleanups.push(t.cleanup, () => rmSync(dir, { recursive: true, force: true }));
  }
  return { tar: t.tarPath, ref: await reference(), dir: await work() };
}

testWith(REQ, "torture tar: default options — e2fsck clean, debugfs checks, kernel tree equals GNU tar's", async () => {
  const { tar, ref, dir } = await setup();
  const image = join(dir, "default.img");
  await makeExt4Ok(["--rootfs-tar", tar, "--out", image]);

  const sb = dumpe2fs(image);
  for (const f of ["has_journal", "ext_attr", "dir_index", "filetype", "extent", "64bit", "flex_bg", "sparse_super", "large_file", "huge_file", "dir_nlink", "extra_isize", "metadata_csum"]) {
    expect(sb.features).toContain(f);
  }
  for (const f of ["orphan_file", "metadata_csum_seed", "read-only"]) expect(sb.features.has(f)).toBe(false);
  expect(sb.fields.get("Block size")).toBe("4096");
  expect(sb.fields.get("Inode size")).toBe("256");

  const suid = debugfsStat(image, "/" + TORTURE.setuid);
  expect(suid.mode).toBe(0o4755);
  const cap = debugfsEaList(image, "/" + TORTURE.capability);
  expect(cap.get("security.capability")?.toString("hex")).toBe(CAP_NET_RAW_EP.slice(2));
  const spilled = debugfsStat(image, "/" + TORTURE.spilled);
  expect(spilled.fileAcl).toBeGreaterThan(0); // 24 × ~90-byte values cannot fit in the inode
  expect(spilled.xattrs.size).toBe(24);
  const mixed = debugfsEaList(image, "/xattrs/mixed");
  expect(mixed.get("security.selinux")?.toString()).toBe(SELINUX_LABEL + "\0");
  expect(mixed.get("user.big")?.equals(patternBlock(7, 1500))).toBe(true);

  const h5 = debugfsHtree(image, "/" + TORTURE.htree5000);
  expect(h5.entries.filter((e) => e.name !== "." && e.name !== "..").length).toBe(5000);
  const h60 = debugfsHtree(image, "/" + TORTURE.htree60000);
  expect(h60.entries.filter((e) => e.name !== "." && e.name !== "..").length).toBe(60000);

  // Extent trees: depth 1 (> 4 extents) and depth 2 (> 4 leaves).
  const depthOf = (p: string) => Number(/^\s*0\/\s*(\d+)/m.exec(runOk([toolPath("debugfs"), "-R", `ex "${p}"`, image]).stdout)?.[1] ?? -1);
  expect(depthOf("/" + TORTURE.depth1)).toBe(1);
  expect(depthOf("/" + TORTURE.depth2)).toBe(2);
  expect(debugfsStat(image, "/" + TORTURE.name255).size).toBe(4n);
  const devLink = debugfsStat(image, "/" + TORTURE.deviceHardlink);
  expect(devLink.type).toBe("character special");
  expect(devLink.links).toBe(2);

  await expectImageMatches(image, ref);
  rmSync(image);
}, 300_000);

testWith(REQ, "torture tar: the kernel mounts our image read-write, and it stays e2fsck-clean after changes", async () => {
  const { tar, dir } = await setup();
  const image = join(dir, "rw.img");
  await makeExt4Ok(["--rootfs-tar", tar, "--out", image]);
  await mountImage(
    image,
    (mnt) => {
      writeFileSync(join(mnt, "new-file"), "written by the kernel\n");
      mkdirSync(join(mnt, "new-dir"));
      writeFileSync(join(mnt, TORTURE.htree5000, "added-to-htree"), "x");
      unlinkSync(join(mnt, TORTURE.htree60000, "f123"));
      renameSync(join(mnt, "files/small"), join(mnt, "new-dir/small"));
      writeFileSync(join(mnt, TORTURE.depth2), "truncated and rewritten");
      runOk([toolPath("setfattr"), "-n", "user.added", "-v", "1", join(mnt, TORTURE.spilled)]);
      expect(snapshotTree(mnt).get("/new-dir/small")?.type).toBe("file");
    },
    { readWrite: true },
  );
  runOk([toolPath("e2fsck"), "-fn", image]);
  rmSync(image);
}, 300_000);

testWith(REQ, "torture tar: --no-metadata-csum — no checksums, still clean and equal", async () => {
  const { tar, ref, dir } = await setup();
  const image = join(dir, "nocsum.img");
  await makeExt4Ok(["--rootfs-tar", tar, "--out", image, "--no-metadata-csum"]);
  const sb = dumpe2fs(image);
  expect(sb.features.has("metadata_csum")).toBe(false);
  expect(sb.features.has("has_journal")).toBe(true);
  await expectImageMatches(image, ref);
  rmSync(image);
}, 300_000);

testWith(REQ, "torture tar: --size 3G and --uuid — exact geometry and UUID, still clean and equal", async () => {
  const { tar, ref, dir } = await setup();
  const image = join(dir, "sized.img");
  const uuid = "0badc0de-1234-4abc-8def-0123456789ab";
  await makeExt4Ok(["--rootfs-tar", tar, "--out", image, "--size", "3G", "--uuid", uuid]);
  expect(Bun.file(image).size).toBe(3 * 2 ** 30);
  const sb = dumpe2fs(image);
  expect(sb.fields.get("Block count")).toBe(String((3 * 2 ** 30) / 4096));
  expect(sb.fields.get("Filesystem UUID")).toBe(uuid);
  await expectImageMatches(image, ref);
  rmSync(image);
}, 300_000);

// A compare that must fail, so a silently empty snapshot can never make the tests above pass.
testWith(REQ, "torture tar: the reference snapshot really holds the torture entries", async () => {
  const { ref } = await setup();
  expect(ref.size).toBeGreaterThan(65000);
  expect(ref.get("/" + TORTURE.capability)?.xattrs["security.capability"]).toBe(CAP_NET_RAW_EP.slice(2));
  expect(ref.get("/times/pre-1970")).toMatchObject({ mtimeSec: -315576000n, mtimeNsec: 123456789 });
  expect(ref.get("/devices/char-big")).toMatchObject({ rdevMajor: 511, rdevMinor: 300000 });
  expect(ref.get("/" + TORTURE.deviceHardlink)).toMatchObject({ type: "chardev", inodeGroup: "/devices/null" });
  const changed = new Map(ref);
  changed.set("/perms/setuid", { ...ref.get("/perms/setuid")!, mode: 0o755 });
  expect(compareSnapshots(changed, ref)).toEqual(["/perms/setuid: mode ours=0755 reference=04755"]);
}, 300_000);
