// End to end: `banger internal make-ext4` is a pure function of its input and options. Two
// runs on one tar give byte-identical images, whatever the output path and whether the tar
// comes from a file or stdin; a different --uuid gives a different image. Starts: the banger
// CLI as a child process (no root, no e2fsprogs needed).
import { afterAll, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { differingOffsets, scratchDir } from "../helpers/oracles.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";
import { makeExt4Ok } from "./lib.ts";

const work = scratchDir("e2e-determinism");
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A varied tar: an htree-sized dir, hardlinks, symlinks, devices, xattrs, ACLs, holes, odd times. */
function variedTar(): Uint8Array {
  const t = new TarBuilder();
  t.dir("etc", { mtime: 1_700_000_000 });
  t.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", { mtime: 1_700_000_001 });
  t.hardlink("etc/passwd-link", "etc/passwd");
  t.symlink("etc/localtime", "/usr/share/zoneinfo/Etc/UTC");
  t.symlink("etc/slow", "placeholder", { pax: { linkpath: "/" + "x".repeat(200) } });
  t.dir("dev");
  t.device("dev/null", "char", 1, 3, { mode: 0o666 });
  t.device("dev/big", "block", 259, 70000);
  t.fifo("dev/fifo");
  t.dir("big");
  for (let i = 0; i < 3000; i++) t.file(`big/entry-${i}`, i % 3 ? "" : `content ${i}\n`, { uid: i, gid: 3000 - i });
  t.file("bin/ping-placeholder", "ELF", {
    mode: 0o4755,
    pax: { "SCHILY.xattr.security.capability": new Uint8Array([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) },
  });
  t.file("var/acl", "", { pax: { "SCHILY.acl.access": "user::rw-,user:1000:r--,group::r--,mask::r--,other::---" } });
  const sparse = new Uint8Array(64 * 4096);
  sparse[0] = 1;
  sparse[40 * 4096] = 2;
  t.file("var/sparse", sparse, { pax: { mtime: "-86400.5", "SCHILY.xattr.user.note": "holes" } });
  // Large enough to take the writer's large-extent copy path (>= 4 MiB).
  const large = new Uint8Array(5 * 1024 * 1024 + 123);
  for (let i = 0; i < large.length; i += 997) large[i] = (i % 251) + 1;
  t.file("var/large", large);
  return t.end();
}

test("same tar twice (different output paths, file, stdin file and stdin pipe) gives byte-identical images", async () => {
  const tar = join(work, "varied.tar");
  writeFileSync(tar, variedTar());
  mkdirSync(join(work, "a"));
  mkdirSync(join(work, "b"));
  const a = join(work, "a", "one.img");
  const b = join(work, "b", "two.img");
  const c = join(work, "b", "stdin.img");
  await makeExt4Ok(["--rootfs-tar", tar, "--out", a, "--size", "256M"]);
  await makeExt4Ok(["--rootfs-tar", tar, "--out", b, "--size", "256M"]);
  await makeExt4Ok(["--rootfs-tar", "-", "--out", c, "--size", "256M"], { stdinFrom: tar });
  // A pipe is spooled, and file data is copied from the spool while the rest is still arriving.
  const d = join(work, "b", "pipe.img");
  await makeExt4Ok(["--rootfs-tar", "-", "--out", d, "--size", "256M"], { stdinFrom: { command: ["cat", tar], approxBytes: 0 } });
  expect(differingOffsets(a, b)).toEqual([]);
  expect(differingOffsets(a, c)).toEqual([]);
  expect(differingOffsets(a, d)).toEqual([]);
}, 60_000);

test("a pipe: the spool skips the file data the stream holds; when those copies are discarded (a file replaced later) it is restored from the image; both images equal the file input's", async () => {
  const replaced = new TarBuilder();
  replaced.raw(variedTar().subarray(0, -1024)); // without its end blocks
  replaced.file("bin/ping-placeholder", "replaced later in the tar\n"); // no other name keeps the old data
  for (const [name, bytes, kept] of [["varied", variedTar(), true], ["replaced", replaced.end(), false]] as const) {
    const tar = join(work, `${name}-pipe.tar`);
    writeFileSync(tar, bytes);
    const fromFile = join(work, `${name}-file.img`);
    const fromPipe = join(work, `${name}-pipe.img`);
    await makeExt4Ok(["--rootfs-tar", tar, "--out", fromFile, "--size", "256M"]);
    const r = await makeExt4Ok(["--rootfs-tar", "-", "--out", fromPipe, "--size", "256M"], {
      stdinFrom: { command: ["cat", tar], approxBytes: 0 },
      env: { ...process.env, BANGER_TIMING: "1" },
    });
    expect(r.stderr).toContain("standard input spooled: 0.0 MiB");
    expect(r.stderr).toContain(kept ? ", kept;" : ", discarded (");
    expect(differingOffsets(fromFile, fromPipe)).toEqual([]);
  }
}, 60_000);

test("a different --uuid gives a different image (and the same --uuid the same one)", async () => {
  const tar = join(work, "varied2.tar");
  writeFileSync(tar, variedTar());
  const x = join(work, "uuid-x.img");
  const y = join(work, "uuid-y.img");
  const x2 = join(work, "uuid-x2.img");
  await makeExt4Ok(["--rootfs-tar", tar, "--out", x, "--size", "256M", "--uuid", "11111111-2222-4333-8444-555555555555"]);
  await makeExt4Ok(["--rootfs-tar", tar, "--out", y, "--size", "256M", "--uuid", "99999999-2222-4333-8444-555555555555"]);
  await makeExt4Ok(["--rootfs-tar", tar, "--out", x2, "--size", "256M", "--uuid", "11111111-2222-4333-8444-555555555555"]);
  expect(differingOffsets(x, y, { max: 1 }).length).toBe(1);
  expect(differingOffsets(x, x2)).toEqual([]);
  // The UUID sits in the superblock at offset 0x68.
  const uuidBytes = (p: string) => {
    const fd = openSync(p, "r");
    const b = Buffer.alloc(16);
    readSync(fd, b, 0, 16, 1024 + 0x68);
    closeSync(fd);
    return b.toString("hex");
  };
  expect(uuidBytes(x)).toBe("11111111222243338444555555555555");
}, 60_000);

test("the read/write fallback (copy_file_range refused) writes the same image as the in-kernel copy", async () => {
  const tar = join(work, "varied3.tar");
  writeFileSync(tar, variedTar());
  const kernel = join(work, "kernel-copy.img");
  const fallback = join(work, "fallback-copy.img");
  await makeExt4Ok(["--rootfs-tar", tar, "--out", kernel, "--size", "256M"]);
  await makeExt4Ok(["--rootfs-tar", tar, "--out", fallback, "--size", "256M"], {
    env: { ...process.env, BANGER_NO_COPY_FILE_RANGE: "1" } as Record<string, string>,
  });
  expect(differingOffsets(kernel, fallback)).toEqual([]);
}, 60_000);

test("without O_TMPFILE (named temp file fallback) the image is the same and no temp file stays", async () => {
  const tar = join(work, "varied4.tar");
  writeFileSync(tar, variedTar());
  mkdirSync(join(work, "named"));
  const usual = join(work, "usual.img");
  const named = join(work, "named", "named.img");
  await makeExt4Ok(["--rootfs-tar", tar, "--out", usual, "--size", "256M"]);
  await makeExt4Ok(["--rootfs-tar", tar, "--out", named, "--size", "256M"], {
    env: { ...process.env, BANGER_NO_TMPFILE: "1" } as Record<string, string>,
  });
  expect(differingOffsets(usual, named)).toEqual([]);
  expect(readdirSync(join(work, "named"))).toEqual(["named.img"]);
}, 60_000);
