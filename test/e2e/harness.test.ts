// Validates the e2e harness itself against real components, independent of banger's writer:
// mkfs.ext4 images pass e2fsckClean and a corrupted one fails it; the debugfs/dumpe2fs parsers
// read what mke2fs -d wrote; two kernel references of one tar are equal and a real difference
// is reported. Starts: mkfs.ext4, e2fsck, debugfs, dumpe2fs, kernel loop mounts, GNU tar.
import { afterAll, expect } from "bun:test";
import { mkdirSync, rmSync, writeFileSync, symlinkSync, linkSync } from "node:fs";
import { join } from "node:path";
import { testWith, toolPath } from "../helpers/env.ts";
import { debugfsEaList, debugfsHtree, debugfsStat, dumpe2fs, e2fsckClean, runOk, scratchDir } from "../helpers/oracles.ts";
import { compareSnapshots, kernelReference, loopsFor, mountImage, snapshotTree, xattrOnlyAcls } from "../helpers/kernel-compare.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";
import { CAP_NET_RAW_EP } from "../helpers/torture.ts";
import { E2E_TOOLS } from "./lib.ts";

const work = scratchDir("harness");
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A small source tree with the things the parsers and the comparison must see. */
function smallTree(root: string): void {
  mkdirSync(join(root, "big"), { recursive: true });
  for (let i = 0; i < 3000; i++) writeFileSync(join(root, "big", `entry-${i}`), "");
  writeFileSync(join(root, "suid"), "#!/bin/sh\n");
  runOk(["chown", "100000:200000", join(root, "suid")]);
  runOk(["chmod", "4755", join(root, "suid")]); // after chown, which clears setuid
  writeFileSync(join(root, "cap"), "ping");
  runOk([toolPath("setfattr"), "-n", "security.capability", "-v", CAP_NET_RAW_EP, join(root, "cap")]);
  runOk([toolPath("setfattr"), "-n", "user.text", "-v", "hello world", join(root, "cap")]);
  symlinkSync("cap", join(root, "link"));
  linkSync(join(root, "cap"), join(root, "cap-hardlink"));
  runOk(["mknod", join(root, "tty"), "c", "4", "300"]);
  runOk(["touch", "-h", "-d", "1960-01-01 00:00:00.25 UTC", join(root, "link")]);
}

function mkfsImage(name: string, fromDir?: string): string {
  const image = join(work, name);
  runOk(["truncate", "-s", "64M", image]);
  runOk([toolPath("mkfs.ext4"), "-q", "-F", "-b", "4096", "-I", "256", ...(fromDir ? ["-d", fromDir] : []), image]);
  return image;
}

testWith({ tools: E2E_TOOLS, root: true }, "e2fsckClean accepts mkfs.ext4 images and rejects a corrupted one", () => {
  const image = mkfsImage("clean.img");
  e2fsckClean(image);
  const bad = mkfsImage("bad.img");
  runOk([toolPath("debugfs"), "-w", "-R", "sif <2> links_count 7", bad]);
  expect(() => e2fsckClean(bad)).toThrow(/e2fsck -fn .* exited [148]/);
});

testWith({ tools: E2E_TOOLS, root: true }, "debugfs and dumpe2fs parsers read what mke2fs -d wrote", () => {
  const src = join(work, "src-debugfs");
  smallTree(src);
  const image = mkfsImage("parsed.img", src);
  runOk([toolPath("e2fsck"), "-fn", image]);
  // mke2fs -d leaves the 3000-entry directory unindexed: -fn is happy, a preen pass is not.
  expect(() => e2fsckClean(image)).toThrow(/e2fsck -fp changed a copy/);
  const st = debugfsStat(image, "/suid");
  expect(st.mode).toBe(0o4755);
  expect(st.type).toBe("regular");
  expect([st.uid, st.gid]).toEqual([100000, 200000]);
  expect(st.size).toBe(10n);
  expect(st.times.mtime).toBeDefined();
  const link = debugfsStat(image, "/link");
  expect(link.fastLinkDest).toBe("cap");
  expect(link.times.mtime!.text).toContain("1960");
  const tty = debugfsStat(image, "/tty");
  expect(tty.device).toEqual({ style: "new", major: 4, minor: 300 });
  expect(debugfsStat(image, "/cap").links).toBe(2);
  const ea = debugfsEaList(image, "/cap");
  expect(ea.get("security.capability")?.toString("hex")).toBe(CAP_NET_RAW_EP.slice(2));
  expect(ea.get("user.text")?.toString()).toBe("hello world");
  expect(() => debugfsHtree(image, "/big")).toThrow(/Not a hash-indexed directory/);
  // e2fsck -D indexes it; then the parser must see every name.
  expect([0, 1]).toContain(Bun.spawnSync([toolPath("e2fsck"), "-fyD", image]).exitCode);
  e2fsckClean(image);
  const ht = debugfsHtree(image, "/big");
  expect(ht.hashVersion).toBeGreaterThanOrEqual(1);
  expect(ht.entries.filter((e) => e.name.startsWith("entry-")).length).toBe(3000);
  expect(() => debugfsHtree(image, "/")).toThrow(/Not a hash-indexed directory/);
  const d = dumpe2fs(image);
  expect(d.features.has("metadata_csum")).toBe(true);
  expect(d.fields.get("Block size")).toBe("4096");
});

testWith({ tools: E2E_TOOLS, root: true }, "kernelReference is reproducible and compareSnapshots reports real differences", async () => {
  const src = join(work, "src-ref");
  smallTree(src);
  const tar = join(work, "small.tar");
  const tarArgs = [toolPath("tar"), "--format=pax", "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "--sort=name", "-cf", tar, "-C", src, "."];
  runOk(tarArgs);
  const a = await kernelReference(tar);
  const b = await kernelReference(tar);
  expect(compareSnapshots(a, b, { ignore: ["lost+found"] })).toEqual([]);
  expect(a.get("/cap-hardlink")!.inodeGroup).toBe("/cap");
  expect(a.get("/cap")!.xattrs["security.capability"]).toBe(CAP_NET_RAW_EP.slice(2));
  expect(a.get("/link")!.mtimeSec).toBe(-315619200n);
  expect(a.get("/link")!.mtimeNsec).toBe(250000000);
  expect(a.get("/tty")).toMatchObject({ type: "chardev", rdevMajor: 4, rdevMinor: 300 });
  expect(a.get("/suid")).toMatchObject({ mode: 0o4755, uid: 100000, gid: 200000 });

  // Change one file's mode and one xattr, re-archive: exactly those differences show.
  runOk(["chmod", "0700", join(src, "suid")]);
  runOk([toolPath("setfattr"), "-n", "user.text", "-v", "changed", join(src, "cap")]);
  runOk(["touch", "-h", "-d", "1960-01-01 00:00:00.25 UTC", join(src, "link")]);
  runOk(["rm", tar]);
  runOk(tarArgs);
  const c = await kernelReference(tar);
  const diffs = compareSnapshots(c, a, { ignore: ["lost+found"] });
  expect(diffs).toContain("/suid: mode ours=0700 reference=04755");
  expect(diffs.some((d) => d.startsWith("/cap: xattr user.text"))).toBe(true);
  expect(diffs.filter((d) => !d.startsWith("/: mtime") && !d.startsWith("/cap") && !d.startsWith("/suid"))).toEqual([]);
}, 120_000);

testWith({ tools: E2E_TOOLS, root: true }, "mountImage unmounts and detaches the loop device even when the callback throws", async () => {
  const image = mkfsImage("mount.img");
  await expect(
    mountImage(image, (mnt) => {
      expect(snapshotTree(mnt).has("/lost+found")).toBe(true);
      throw new Error("boom");
    }),
  ).rejects.toThrow("boom");
  expect(loopsFor(image)).toEqual([]);
});

testWith({ tools: E2E_TOOLS, root: true }, "kernelReference applies ACLs a tar carries only as SCHILY.xattr.system.posix_acl_* (GNU tar --acls skips them)", async () => {
  // user::rwx group::r-x group:4:r-x mask::r-x other::r-x, VFS format (version 2).
  const acl = Buffer.from("0200000001000700ffffffff04000500ffffffff080005000400000010000500ffffffff20000500ffffffff", "hex");
  const t = new TarBuilder();
  t.dir("journal", { mode: 0o2755, mtime: 1_600_000_000, pax: { "SCHILY.xattr.system.posix_acl_access": acl, "SCHILY.xattr.system.posix_acl_default": acl } });
  t.file("plain", "x", { mtime: 1_600_000_000 });
  const tar = join(work, "xattr-acl.tar");
  writeFileSync(tar, t.end());
  expect([...xattrOnlyAcls(tar).keys()]).toEqual(["journal"]);
  const ref = await kernelReference(tar);
  expect(ref.get("/journal")!.xattrs).toEqual({ "system.posix_acl_access": acl.toString("hex"), "system.posix_acl_default": acl.toString("hex") });
  expect(ref.get("/journal")!.mtimeSec).toBe(1_600_000_000n);
  expect(ref.get("/journal")!.mode).toBe(0o2755);
}, 60_000);
