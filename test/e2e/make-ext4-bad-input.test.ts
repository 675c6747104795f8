// End to end: `banger internal make-ext4` refuses bad input with a non-zero exit and a message
// naming the entry and the reason, and leaves nothing behind in the output directory (no
// image, no temp image, no stdin spool file). Starts: the banger CLI as a child process.
// Needs no root and no e2fsprogs: the inputs are hand-made with the test tar writer.
import { afterAll, expect, test } from "bun:test";
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { scratchDir } from "../helpers/oracles.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";
import { makeExt4 } from "./lib.ts";
import { testWith } from "../helpers/env.ts";

const work = scratchDir("e2e-bad");
afterAll(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
/** Writes tar bytes to their own input dir (so spool files in the output dir are visible). */
function inputTar(bytes: Uint8Array): string {
  const dir = join(work, `in-${n++}`);
  mkdirSync(dir);
  const p = join(dir, "input.tar");
  writeFileSync(p, bytes);
  return p;
}

function freshOutDir(): string {
  const dir = join(work, `out-${n++}`);
  mkdirSync(dir);
  return dir;
}

/** Runs make-ext4 expecting failure; checks the message and that outDir stays empty. */
async function expectRefused(
  args: { tar: string; stdin?: boolean; out?: string; extra?: string[] },
  message: RegExp[],
): Promise<string> {
  const outDir = freshOutDir();
  const out = args.out ?? join(outDir, "rootfs.ext4");
  const r = await makeExt4(["--rootfs-tar", args.stdin ? "-" : args.tar, "--out", out, ...(args.extra ?? [])], args.stdin ? { stdinFrom: args.tar } : {});
  const context = `exit ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  expect(r.exitCode, context).not.toBe(0);
  for (const m of message) expect(r.stderr, context).toMatch(m);
  expect(readdirSync(outDir), `left behind in the output dir; ${context}`).toEqual([]);
  return r.stderr;
}

function goodTar(): TarBuilder {
  const t = new TarBuilder();
  t.dir("etc");
  t.file("etc/hostname", "banger\n");
  return t;
}

test("a path component longer than 255 bytes is refused, naming the entry", async () => {
  const t = goodTar();
  const long = "etc/" + "n".repeat(256);
  t.file("placeholder", "x", { pax: { path: long } });
  await expectRefused({ tar: inputTar(t.end()) }, [/n{40}/, /255/]);
}, 30_000);

test("a '..' component is refused, naming the entry", async () => {
  const t = goodTar();
  t.file("etc/../../escape", "x");
  await expectRefused({ tar: inputTar(t.end()) }, [/escape/, /\.\./]);
}, 30_000);

test("a hardlink to a missing target is refused, naming both", async () => {
  const t = goodTar();
  t.hardlink("etc/link", "etc/missing-target");
  await expectRefused({ tar: inputTar(t.end()) }, [/etc\/link/, /missing-target/]);
}, 30_000);

test("a truncated tar is refused (from a file and from stdin, whose spool must not stay)", async () => {
  const t = goodTar();
  t.file("etc/big", new Uint8Array(10_000).fill(7));
  const whole = t.end();
  const cut = inputTar(whole.subarray(0, 512 * 4 + 3000)); // inside etc/big's data
  await expectRefused({ tar: cut }, [/etc\/big/, /truncat/i]);
  await expectRefused({ tar: cut, stdin: true }, [/etc\/big/, /truncat/i]);
}, 30_000);

test("--size too small for the content is refused with the sizes", async () => {
  const t = goodTar();
  t.file("etc/two-mib", new Uint8Array(2 << 20).fill(1));
  await expectRefused({ tar: inputTar(t.end()), extra: ["--size", "1M"] }, [/size|small|space|fit/i]);
}, 30_000);

test("a nonexistent input is refused, naming it", async () => {
  const missing = join(work, "does-not-exist.tar");
  await expectRefused({ tar: missing }, [/does-not-exist\.tar/]);
}, 30_000);

test("an output path in a missing directory is refused, naming it", async () => {
  const outDir = freshOutDir();
  const out = join(outDir, "no", "such", "dir", "rootfs.ext4");
  const r = await makeExt4(["--rootfs-tar", inputTar(goodTar().end()), "--out", out]);
  expect(r.exitCode, r.stderr).not.toBe(0);
  expect(r.stderr).toMatch(/no\/such\/dir/);
  expect(readdirSync(outDir)).toEqual([]);
}, 30_000);

test("garbage (not a tar) is refused", async () => {
  await expectRefused({ tar: inputTar(new Uint8Array(4096).fill(0x41)) }, [/tar/i]);
}, 30_000);

test("a failed run leaves an existing output file untouched", async () => {
  const outDir = freshOutDir();
  const out = join(outDir, "rootfs.ext4");
  writeFileSync(out, "previous image\n");
  const t = goodTar();
  t.file("etc/big", new Uint8Array(10_000).fill(7));
  const cut = inputTar(t.end().subarray(0, 512 * 4 + 3000));
  const r = await makeExt4(["--rootfs-tar", cut, "--out", out]);
  expect(r.exitCode, r.stderr).not.toBe(0);
  expect(readdirSync(outDir)).toEqual(["rootfs.ext4"]);
  expect(readFileSync(out, "utf8")).toBe("previous image\n");
}, 30_000);

testWith({ tools: ["mount", "umount"], root: true }, "a full output filesystem: a clear error naming the write, a non-zero exit, nothing left behind", async () => {
  // A real full disk: a 24 MiB tmpfs for the output, and 40 MiB of file data to write into it.
  const mnt = freshOutDir();
  const mounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt]);
  expect(mounted.exitCode, mounted.stderr.toString()).toBe(0);
  try {
    const t = goodTar();
    const data = new Uint8Array(4 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24 | 1;
    for (let i = 0; i < 10; i++) t.file(`big/${i}`, data);
    const r = await makeExt4(["--rootfs-tar", inputTar(t.end()), "--out", join(mnt, "rootfs.ext4"), "--size", "64M"]);
    const context = `exit ${r.exitCode}\n--- stderr\n${r.stderr}`;
    expect(r.exitCode, context).not.toBe(0);
    expect(r.stderr, context).toMatch(/no space left|ENOSPC/i);
    expect(r.stderr, context).toContain(`writing ${join(mnt, "rootfs.ext4")}`);
    expect(readdirSync(mnt), `left behind; ${context}`).toEqual([]);
  } finally {
    Bun.spawnSync(["umount", mnt]);
  }
}, 60_000);

test("--size 1, 512 and 1K are refused as too small (not a crash)", async () => {
  for (const size of ["1", "512", "1K"]) {
    const stderr = await expectRefused({ tar: inputTar(goodTar().end()), extra: ["--size", size] }, [/too small/]);
    expect(stderr).not.toMatch(/undefined|TypeError|evaluating/);
  }
}, 30_000);

test("--size 2P is refused at once as beyond the format, before any allocation", async () => {
  const outDir = freshOutDir();
  const r = await makeExt4(["--rootfs-tar", inputTar(goodTar().end()), "--out", join(outDir, "rootfs.ext4"), "--size", "2P"]);
  expect(r.exitCode, r.stderr).not.toBe(0);
  expect(r.stderr).toMatch(/too large: images are at most 16 TiB/);
  expect(r.ms).toBeLessThan(5000); // sizing the geometry first took ~1.5 GB and seconds
  expect(readdirSync(outDir)).toEqual([]);
}, 30_000);

test("--out naming the input (same path, a symlink, a hardlink, stdin from it) is refused and the input kept", async () => {
  const tar = inputTar(goodTar().end());
  const before = readFileSync(tar);
  const dir = join(tar, "..");
  symlinkSync(tar, join(dir, "via-symlink.ext4"));
  linkSync(tar, join(dir, "via-hardlink.ext4"));
  for (const [out, stdin] of [[tar, false], [join(dir, "via-symlink.ext4"), false], [join(dir, "via-hardlink.ext4"), false], [tar, true]] as const) {
    const r = await makeExt4(["--rootfs-tar", stdin ? "-" : tar, "--out", out], stdin ? { stdinFrom: tar } : {});
    const context = `${out} stdin=${stdin}: exit ${r.exitCode}\n${r.stderr}`;
    expect(r.exitCode, context).not.toBe(0);
    expect(r.stderr, context).toMatch(/is (the input .*|standard input) \(the same file\)/);
    expect(r.stderr.trim().split("\n"), context).toHaveLength(1);
    expect(readFileSync(tar).equals(before), context).toBe(true);
    expect(readdirSync(dir).sort(), context).toEqual(["input.tar", "via-hardlink.ext4", "via-symlink.ext4"]);
  }
}, 30_000);

test("a refused 20 MB name with a newline and an ESC sequence: one short line, escaped", async () => {
  const t = goodTar();
  t.file("placeholder", "x", { pax: { path: "evil\n\x1b[31mred/" + "x".repeat(20 << 20) } });
  const stderr = await expectRefused({ tar: inputTar(t.end()) }, [/exceeds 255 bytes/, /evil\\n\\x1b\[31mred/, /bytes elided/]);
  expect(stderr.length).toBeLessThan(2000);
  expect(stderr.trimEnd()).not.toMatch(/[\x00-\x1f]/);
}, 30_000);
