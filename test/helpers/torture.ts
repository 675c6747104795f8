// A torture tar: every kind of entry and metadata the ext4 writer must carry, made the way
// real images are made: populated as root with real tools (mknod, setfattr, setfacl, touch,
// ln) on a kernel ext4 loop mount (tmpfs lacks trusted.* and ACL defaults behave differently),
// then archived by GNU tar in PAX format with xattrs and ACLs.
//
// Needs root, e2fsprogs (mkfs.ext4), util-linux (mount), attr (setfattr), acl (setfacl), tar.
// Cost: ~220 MB of tar (a 136 MiB file whose first 130 MiB are data, so an extent must be
// split at 32768 blocks; the rest is cheap), 65k entries; ~10-20 s to build on 2 cores.
import { closeSync, mkdirSync, openSync, rmSync, symlinkSync, linkSync, writeFileSync, writeSync, utimesSync, ftruncateSync } from "node:fs";
import { join } from "node:path";
import { toolPath } from "./env.ts";
import { runOk, scratchDir } from "./oracles.ts";
import { mountImage, type TarSource } from "./kernel-compare.ts";

export const BLOCK = 4096;

/** Deterministic non-zero filler: block `n` of a file, never all zero. */
export function patternBlock(n: number, len = BLOCK): Buffer {
  const b = Buffer.alloc(Math.ceil(len / 4) * 4);
  let x = (n * 2654435761 + 12345) >>> 0 || 1;
  for (let i = 0; i < b.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  b[0] = 0xa5; // never an all-zero block
  return b.subarray(0, len);
}

/** Writes a file of `size` bytes whose listed 4 KiB blocks hold pattern data; the rest is zero (a hole on disk). */
function writeBlocks(path: string, size: number, dataBlocks: Iterable<number>): void {
  const fd = openSync(path, "w");
  try {
    ftruncateSync(fd, size);
    for (const n of dataBlocks) {
      const len = Math.min(BLOCK, size - n * BLOCK);
      writeSync(fd, patternBlock(n, len), 0, len, n * BLOCK);
    }
  } finally {
    closeSync(fd);
  }
}

function range(from: number, to: number, step = 1): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i += step) out.push(i);
  return out;
}

/** `security.capability` for cap_net_raw+ep (VFS_CAP_REVISION_2, effective flag, permitted bit 13). */
export const CAP_NET_RAW_EP = "0x0100000200200000000000000000000000000000";
export const SELINUX_LABEL = "system_u:object_r:bin_t:s0";

/** Paths (relative, with "./") the tests look at by name. */
export const TORTURE = {
  setuid: "perms/setuid",
  capability: "xattrs/cap",
  spilled: "xattrs/many",
  htree5000: "dirs/htree-5000",
  htree60000: "dirs/htree-60000",
  depth1: "files/depth1",
  depth2: "files/depth2",
  multiExtent: "files/multi-extent",
  deviceHardlink: "devices/zz-b-hardlink-to-null",
  name255: "names/" + "n".repeat(251) + ".txt",
} as const;

function touch(path: string, when: string): void {
  runOk(["touch", "-h", "-d", when, path]);
}

function populate(t: string): void {
  const sh = (argv: string[]) => runOk(argv);
  const dir = (p: string, mode = 0o755) => {
    mkdirSync(join(t, p), { recursive: true });
    sh(["chmod", mode.toString(8), join(t, p)]);
  };

  // Regular files: sizes around block boundaries, holes, extent-tree depths.
  dir("files");
  writeFileSync(join(t, "files/empty"), "");
  writeFileSync(join(t, "files/one-byte"), "x");
  writeFileSync(join(t, "files/small"), "hello, ext4\n".repeat(8));
  writeBlocks(join(t, "files/block-minus-1"), BLOCK - 1, [0]);
  writeBlocks(join(t, "files/block"), BLOCK, [0]);
  writeBlocks(join(t, "files/block-plus-1"), BLOCK + 1, [0, 1]);
  writeBlocks(join(t, "files/three-blocks"), 3 * BLOCK, [0, 1, 2]);
  writeBlocks(join(t, "files/all-zero"), 1 << 20, []);
  writeBlocks(join(t, "files/leading-hole"), 1 << 20, [255]);
  writeBlocks(join(t, "files/trailing-hole"), (1 << 20) + 100, [0]);
  writeBlocks(join(t, "files/partial-tail"), 5 * BLOCK + 7, [0, 2, 4, 5]);
  // 130 MiB of contiguous data (> 32768 blocks: one extent cannot hold it), then 6 MiB mostly zero.
  const dense = (130 << 20) / BLOCK;
  writeBlocks(join(t, TORTURE.multiExtent), (136 << 20) + 1234, [...range(0, dense), ...range(dense + 1, dense + 1536, 97), dense + 1536]);
  // 10 separated data blocks: > 4 extents ⇒ depth 1.
  writeBlocks(join(t, TORTURE.depth1), 20 * BLOCK, range(0, 20, 2));
  // 1500 separated runs: > 4 leaves × 340 extents ⇒ depth 2.
  writeBlocks(join(t, TORTURE.depth2), 3000 * BLOCK, range(0, 3000, 2));

  // Directories: empty, htree-sized, deep paths, many subdirectories (link counts).
  dir("dirs/empty");
  dir(TORTURE.htree5000);
  for (let i = 0; i < 4900; i++) writeFileSync(join(t, TORTURE.htree5000, `file-${String(i).padStart(5, "0")}-${"v".repeat(i % 40)}`), i % 7 ? "" : String(i));
  for (let i = 0; i < 100; i++) mkdirSync(join(t, TORTURE.htree5000, `subdir-${i}`));
  dir(TORTURE.htree60000);
  for (let i = 0; i < 60000; i++) {
    const p = join(t, TORTURE.htree60000, `f${i}`);
    closeSync(openSync(p, "w"));
    utimesSync(p, 1_700_000_000, 1_700_000_000);
  }
  let deep = "dirs/deep";
  for (let i = 0; i < 6; i++) deep += "/" + String(i).repeat(200);
  dir(deep);
  writeFileSync(join(t, deep, "leaf-file"), "deep\n");

  // Names: 255 bytes, UTF-8, spaces, a newline, leading dash.
  dir("names");
  writeFileSync(join(t, TORTURE.name255), "255\n");
  writeFileSync(join(t, "names", "é".repeat(127) + "x"), "utf8 255 bytes\n"); // 2*127+1 = 255 bytes
  writeFileSync(join(t, "names", "naïve 日本語 name"), "");
  writeFileSync(join(t, "names", "with space"), "");
  writeFileSync(join(t, "names", "new\nline"), "");
  writeFileSync(join(t, "names", "-dash"), "");

  // Links: fast/slow symlinks (59/60 bytes is the inline limit), dangling, absolute, hardlinks.
  dir("links");
  writeFileSync(join(t, "links/target"), "target\n");
  symlinkSync("target", join(t, "links/fast"));
  symlinkSync("t".repeat(59), join(t, "links/fast-59"));
  symlinkSync("t".repeat(60), join(t, "links/slow-60"));
  symlinkSync("/" + "long/".repeat(800) + "end", join(t, "links/slow-4006"));
  symlinkSync("/nonexistent/dangling", join(t, "links/dangling"));
  symlinkSync("../dirs", join(t, "links/to-dir"));
  linkSync(join(t, "links/target"), join(t, "links/hard-1"));
  linkSync(join(t, "links/target"), join(t, "dirs/hard-2-elsewhere"));
  linkSync(join(t, "links/fast"), join(t, "links/hard-to-symlink"));
  sh(["chown", "-h", "123:456", join(t, "links/fast-59")]);

  // Devices and fifos, small and large (>= 256) major/minor numbers.
  dir("devices");
  sh(["mknod", "-m", "666", join(t, "devices/null"), "c", "1", "3"]);
  sh(["mknod", "-m", "660", join(t, "devices/sda"), "b", "8", "0"]);
  sh(["mknod", "-m", "600", join(t, "devices/char-255-255"), "c", "255", "255"]);
  sh(["mknod", "-m", "600", join(t, "devices/char-big"), "c", "511", "300000"]);
  sh(["mknod", "-m", "640", join(t, "devices/block-big"), "b", "259", "65536"]);
  sh(["mknod", "-m", "640", join(t, "devices/block-minor-256"), "b", "7", "256"]);
  sh(["mkfifo", "-m", "644", join(t, "devices/fifo")]);
  // GNU tar never archives hardlinked devices as links; zz-a-link-src/zz-b-hardlink-to-null become one
  // through --transform of the hardlink target (see archive()).
  writeFileSync(join(t, "devices/zz-a-link-src"), "");
  linkSync(join(t, "devices/zz-a-link-src"), join(t, TORTURE.deviceHardlink));
  sh(["chown", "42:42", join(t, "devices/sda")]);

  // Permission bits.
  dir("perms");
  for (const [name, mode] of [["setuid", 0o4755], ["setgid", 0o2755], ["all-bits", 0o7777], ["no-bits", 0o000], ["group-write", 0o664]] as const) {
    writeFileSync(join(t, "perms", name), `#!/bin/sh\necho ${name}\n`);
    sh(["chmod", mode.toString(8), join(t, "perms", name)]);
  }
  dir("perms/sticky", 0o1777);
  dir("perms/setgid-dir", 0o2775);
  dir("perms/no-bits-dir", 0o000);

  // Owners beyond 16 bits (ext4 splits them into low/high halves).
  dir("owners");
  for (const [name, uid, gid] of [["u65535", 65535, 65535], ["u65536", 65536, 70000], ["u100000", 100000, 200000], ["u3e9", 3_000_000_000, 4_000_000_000]] as const) {
    writeFileSync(join(t, "owners", name), name);
    sh(["chown", `${uid}:${gid}`, join(t, "owners", name)]);
  }
  sh(["chown", "1000:1000", join(t, "owners")]);

  // Extended attributes and ACLs.
  dir("xattrs");
  const setx = (p: string, name: string, value: string) => sh([toolPath("setfattr"), "-h", "-n", name, "-v", value, join(t, p)]);
  writeFileSync(join(t, TORTURE.capability), "ping\n");
  sh(["chmod", "755", join(t, TORTURE.capability)]);
  setx(TORTURE.capability, "security.capability", CAP_NET_RAW_EP);
  writeFileSync(join(t, "xattrs/selinux"), "");
  setx("xattrs/selinux", "security.selinux", `0x${Buffer.from(SELINUX_LABEL + "\0").toString("hex")}`);
  writeFileSync(join(t, "xattrs/user"), "");
  setx("xattrs/user", "user.mime_type", "text/plain");
  setx("xattrs/user", "user.empty", "");
  setx("xattrs/user", "user.binary", "0x00ff00ff10");
  writeFileSync(join(t, "xattrs/trusted"), "");
  setx("xattrs/trusted", "trusted.overlay.opaque", "y");
  dir("xattrs/acl-dir");
  sh([toolPath("setfacl"), "-m", "u:1234:rwx,g:5678:r-x,m::rwx", join(t, "xattrs/acl-dir")]);
  sh([toolPath("setfacl"), "-d", "-m", "u::rwx,g::r-x,o::---,u:99:r-x", join(t, "xattrs/acl-dir")]);
  writeFileSync(join(t, "xattrs/acl-file"), "");
  sh([toolPath("setfacl"), "-m", "u:1234:rw-,g:100000:r--", join(t, "xattrs/acl-file")]);
  for (const f of [TORTURE.spilled, "xattrs/many-twin"]) {
    writeFileSync(join(t, f), "many xattrs\n");
    for (let i = 0; i < 24; i++) setx(f, `user.attr-${String(i).padStart(2, "0")}`, `value-${i}-${"x".repeat(80)}`);
  }
  writeFileSync(join(t, "xattrs/mixed"), "");
  setx("xattrs/mixed", "security.selinux", `0x${Buffer.from(SELINUX_LABEL + "\0").toString("hex")}`);
  setx("xattrs/mixed", "trusted.t", "0x01");
  setx("xattrs/mixed", "user.big", "0x" + patternBlock(7, 1500).toString("hex"));
  dir("xattrs/dir-with-xattr");
  setx("xattrs/dir-with-xattr", "user.dir", "yes");
  symlinkSync("cap", join(t, "xattrs/symlink-with-xattr"));
  setx("xattrs/symlink-with-xattr", "trusted.link", "yes");

  // Times: pre-1970, 2038 boundary, post-2038, nanoseconds, on files, dirs and symlinks.
  dir("times");
  const times: [string, string][] = [
    ["times/pre-1970", "1960-01-01 12:00:00.123456789 UTC"],
    ["times/epoch", "1970-01-01 00:00:00 UTC"],
    ["times/before-epoch-1ns", "1969-12-31 23:59:59.999999999 UTC"],
    ["times/y2038-last", "2038-01-19 03:14:07.999999999 UTC"],
    ["times/y2038-first", "2038-01-19 03:14:08 UTC"],
    ["times/post-2038", "2100-06-01 00:00:00.987654321 UTC"],
    ["times/far-future", "2400-01-01 00:00:01.5 UTC"],
    ["times/nanos", "2024-02-29 12:34:56.000000001 UTC"],
  ];
  for (const [p] of times) writeFileSync(join(t, p), p);
  symlinkSync("pre-1970", join(t, "times/symlink-pre-1970"));
  times.push(["times/symlink-pre-1970", "1955-05-05 05:05:05.5 UTC"]);
  dir("times/dir-pre-1970");
  times.push(["times/dir-pre-1970", "1901-12-14 00:00:00 UTC"]);
  dir("times/dir-post-2038");
  times.push(["times/dir-post-2038", "2106-02-07 06:28:16.25 UTC"]);
  for (const [p, when] of times) touch(join(t, p), when);
  touch(join(t, "times"), "1999-12-31 23:59:59.999999999 UTC");
  sh(["chmod", "755", t]);
}

/**
 * Builds the torture tar (root needed). Returns its path and a cleanup that removes it.
 * The tar lives in a fresh scratch dir under /var/tmp.
 */
export async function buildTortureTar(): Promise<{ tarPath: string; cleanup: () => void }> {
  const dir = scratchDir("torture");
  const image = join(dir, "src.img");
  const tarPath = join(dir, "torture.tar");
  try {
    runOk(["truncate", "-s", "1G", image]);
    runOk([toolPath("mkfs.ext4"), "-q", "-F", "-b", "4096", "-I", "256", "-N", "131072", "-E", "lazy_itable_init=1,lazy_journal_init=1", image]);
    await mountImage(
      image,
      (mnt) => {
        const t = join(mnt, "t");
        mkdirSync(t);
        populate(t);
        runOk([
          toolPath("tar"),
          "--format=pax",
          "--xattrs",
          "--xattrs-include=*",
          "--acls",
          "--numeric-owner",
          "--sort=name",
          // atime/ctime would put a PAX header on every one of the 60000 small files.
          "--pax-option=delete=atime,delete=ctime",
          // Turn a regular hardlink into a hardlink to a device (GNU tar never emits one itself).
          "--transform=flags=h;s,^\\./devices/zz-a-link-src$,./devices/null,",
          "-cf",
          tarPath,
          "-C",
          t,
          ".",
        ]);
      },
      { readWrite: true },
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    rmSync(image, { force: true });
  }
  return { tarPath, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Size of the > 4 GiB file in bigFileTar (4.5 GiB + 123 bytes, not block-aligned). */
export const BIG_FILE_SIZE = 4.5 * 2 ** 30 + 123;

/**
 * A tar holding one file larger than 4 GiB that is nearly all zero bytes (tar without
 * --sparse carries every zero). The tar is never stored: it is the stdout of a GNU tar
 * command reading a sparse source file. Also returns the source dir for a direct comparison
 * (it has a lost+found dir, excluded from the tar, so root link counts match an image's).
 */
export function bigFileTar(): { source: TarSource; sourceDir: string; cleanup: () => void } {
  const dir = scratchDir("bigfile");
  const src = join(dir, "src");
  mkdirSync(join(src, "lost+found"), { recursive: true });
  const blocks = BIG_FILE_SIZE / BLOCK;
  const last = Math.floor((BIG_FILE_SIZE - 1) / BLOCK);
  writeBlocks(join(src, "big"), BIG_FILE_SIZE, [0, 1, 2 ** 19, 2 ** 20 - 1, 2 ** 20, 2 ** 20 + 1, Math.floor(blocks) - 3, last]);
  writeFileSync(join(src, "small"), "after the big one\n");
  runOk(["touch", "-d", "2030-01-01 00:00:00.5 UTC", join(src, "big"), join(src, "small"), src]);
  return {
    source: {
      command: [toolPath("tar"), "--format=pax", "--numeric-owner", "--sort=name", "--exclude=./lost+found", "-cf", "-", "-C", src, "."],
      approxBytes: BIG_FILE_SIZE + (1 << 20),
    },
    sourceDir: src,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
