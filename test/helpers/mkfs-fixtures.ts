// Reference images made by the real mke2fs (`mkfs.ext4 -d`) from a directory populated as
// root, for testing the ext4 reader. Needs: mkfs.ext4, e2fsck, setfattr, setfacl, root.
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, linkSync, writeFileSync, writeSync, chmodSync, lchownSync, ftruncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hasTool, toolPath } from "./env.ts";

export function run(cmd: string[], opts: { okCodes?: number[] } = {}): string {
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  const ok = opts.okCodes ?? [0];
  if (!ok.includes(p.exitCode ?? -1))
    throw new Error(`${cmd.join(" ")} exited ${p.exitCode}: ${p.stderr.toString()}${p.stdout.toString()}`);
  return p.stdout.toString();
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Deterministic pseudo-random bytes. */
export function pseudoRandom(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Writes `count` 4 KiB data blocks at every other block (a hole between each) and ends with a hole. */
export function writeSparse(path: string, count: number, blockSize = 4096): void {
  const fd = openSync(path, "w");
  try {
    for (let i = 0; i < count; i++) writeSync(fd, pseudoRandom(blockSize, i + 7), 0, blockSize, 2 * i * blockSize);
    ftruncateSync(fd, (2 * count + 3) * blockSize);
  } finally {
    closeSync(fd);
  }
}

export const SLOW_TARGET = "a-slow-symlink-target/".repeat(4) + "end"; // > 59 bytes
export const CAPABILITY = Uint8Array.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
export const BIG_DIR_ENTRIES = 3000;

/**
 * Populates `root` with one of everything the reader must understand. Paths are relative to
 * `root`. `sparseBlocks` data blocks separated by holes gives an extent tree of depth >= 1.
 */
export function populateFixture(root: string, opts: { sparseBlocks?: number; bigDir?: number } = {}): void {
  const p = (rel: string): string => join(root, rel);
  writeFileSync(p("empty"), "");
  writeFileSync(p("small"), "hello, ext4\n");
  writeFileSync(p("exact-block"), pseudoRandom(4096, 1));
  writeFileSync(p("multi-mib"), pseudoRandom(3 * 1024 * 1024 + 123, 2));
  // Sparse: data, hole, data, trailing hole.
  {
    const fd = openSync(p("sparse"), "w");
    writeSync(fd, pseudoRandom(5000, 3), 0, 5000, 0);
    writeSync(fd, pseudoRandom(100, 4), 0, 100, 1024 * 1024);
    ftruncateSync(fd, 3 * 1024 * 1024);
    closeSync(fd);
  }
  writeSparse(p("many-extents"), opts.sparseBlocks ?? 400);
  mkdirSync(p("big"));
  for (let i = 0; i < (opts.bigDir ?? BIG_DIR_ENTRIES); i++) writeFileSync(p(`big/entry-with-a-longish-name-${i}`), "");
  symlinkSync("small", p("fast-link"));
  symlinkSync(SLOW_TARGET, p("slow-link"));
  linkSync(p("small"), p("hardlink-to-small"));
  mkdirSync(p("sub/deeper"), { recursive: true });
  linkSync(p("small"), p("sub/deeper/another-hardlink"));
  run(["mknod", p("null"), "c", "1", "3"]);
  run(["mknod", p("bigdev"), "b", "259", "300000"]);
  run(["mknod", p("fifo"), "p"]);
  // A unix socket node (Bun/Node unlink theirs on close); optional: python3 may be absent.
  if (hasTool("python3")) run(["python3", "-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", p("socket")]);
  writeFileSync(p("setuid"), "x");
  chmodSync(p("setuid"), 0o4755);
  writeFileSync(p("setgid"), "x");
  chmodSync(p("setgid"), 0o2711);
  mkdirSync(p("sticky"));
  chmodSync(p("sticky"), 0o1777);
  writeFileSync(p("bigids"), "ids");
  lchownSync(p("bigids"), 100000, 200000);
  lchownSync(p("fast-link"), 70000, 70001);
  writeFileSync(p("xattrs"), "x");
  run(["setfattr", "-n", "user.greeting", "-v", "hello", p("xattrs")]);
  run(["setfattr", "-n", "trusted.secret", "-v", "0x00ff10", p("xattrs")]);
  run(["setfattr", "-n", "security.capability", "-v", "0x" + Buffer.from(CAPABILITY).toString("hex"), p("xattrs")]);
  writeFileSync(p("bigxattr"), "x");
  run(["setfattr", "-n", "user.large", "-v", "0x" + Buffer.from(pseudoRandom(800, 9)).toString("hex"), p("bigxattr")]);
  run(["setfattr", "-n", "user.small", "-v", "s", p("bigxattr")]);
  writeFileSync(p("acl-file"), "acl");
  run(["setfacl", "-m", "u:1000:rw,g:2000:r,m::rw", p("acl-file")]);
  mkdirSync(p("acl-dir"));
  run(["setfacl", "-m", "u:1001:rwx", "-d", "-m", "u:1002:rx,g::r", p("acl-dir")]);
  writeFileSync(p("old"), "1960");
  run(["touch", "-h", "-d", "1960-05-06 07:08:09.123456789 UTC", p("old")]);
  writeFileSync(p("future"), "2100");
  run(["touch", "-h", "-d", "2100-01-02 03:04:05.5 UTC", p("future")]);
  writeFileSync(p("nanos"), "ns");
  run(["touch", "-h", "-m", "-d", "2020-02-03 04:05:06.987654321 UTC", p("nanos")]);
}

export interface MkfsImage {
  dir: string;
  src: string;
  img: string;
  cleanup(): void;
}

/** mkfs.ext4 -d over a populated directory; `extraOpts` e.g. ["-O", "^metadata_csum,^64bit"]. */
export function makeImage(opts: {
  blockSize?: 1024 | 4096;
  size?: string;
  extraOpts?: string[];
  populate: (src: string) => void;
  /** Run e2fsck -fyD afterwards so multi-block directories become htrees. */
  optimizeDirs?: boolean;
}): MkfsImage {
  const dir = tempDir("banger-read-");
  const src = join(dir, "src");
  const img = join(dir, "img");
  mkdirSync(src);
  try {
    opts.populate(src);
    run([toolPath("mkfs.ext4"), "-q", "-F", "-b", String(opts.blockSize ?? 4096), ...(opts.extraOpts ?? []), "-d", src, img, opts.size ?? "64M"]);
    if (opts.optimizeDirs) run([toolPath("e2fsck"), "-fyD", img], { okCodes: [0, 1] });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return { dir, src, img, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** All xattrs of a path as the kernel reports them (getfattr -d -m - -e hex). */
export function kernelXattrs(path: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const text = run(["getfattr", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", path], { okCodes: [0, 1] });
  for (const line of text.split("\n")) {
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line.trim());
    if (m) out.set(m[1]!, Uint8Array.from(Buffer.from(m[2]!, "hex")));
  }
  return out;
}

/** xattrs of every path under `dir` with any (one `getfattr -R` run); keys are absolute paths. */
export function kernelXattrsTree(dir: string): Map<string, Map<string, Uint8Array>> {
  const out = new Map<string, Map<string, Uint8Array>>();
  const text = run(["getfattr", "-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", dir], { okCodes: [0, 1] });
  let current: Map<string, Uint8Array> | undefined;
  for (const line of text.split("\n")) {
    const file = /^# file: (.*)$/.exec(line);
    if (file) {
      current = new Map();
      out.set(file[1]!, current);
      continue;
    }
    const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line.trim());
    if (m && current) current.set(m[1]!, Uint8Array.from(Buffer.from(m[2]!, "hex")));
  }
  return out;
}

/** `debugfs -R "<request>" img` output. */
export function debugfs(img: string, request: string): string {
  return run([toolPath("debugfs"), "-R", request, img]);
}
