// Kernel bundles: `banger internal make-kernel-bundle` with Debian's cloud kernel, GNU tar as the
// oracle for what it wrote, reproducible under SOURCE_DATE_EPOCH; and the unpack
// (src/bundle/kernel-read.ts) against hostile archives: each refused with a message naming the
// member, and nothing ever written outside the target directory.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { unpackKernelBundle } from "../../src/bundle/kernel-read.ts";
import { removeTree } from "../../src/io/copy-tree.ts";
import { fileChunks } from "../../src/oci/layer-stream.ts";
import { zstdDecompressNative } from "../../src/oci/zstd.ts";
import { testWith } from "../helpers/env.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";
import { banger, CLOUD, CLOUD_ABSENT, fakeBzImage, listAll, sha256, smallModulesTree, snapshot, xdgEnv } from "./lib.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-kernel-bundle-"));
// removeTree: a case below unpacks a read-only directory, which plain rm -r cannot remove unless root.
afterAll(() => removeTree(tmp));
const env = xdgEnv(tmp);
let n = 0;
const fresh = (name: string) => {
  const d = path.join(tmp, `${name}-${n++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

async function* once(bytes: Uint8Array, size = 3000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

describe("make-kernel-bundle with Debian's cloud kernel", () => {
  let modules = "";
  let made: { path: string; sha256: string; size: number; version: string; arch: string };
  let stderr = "";
  const out = path.join(tmp, "cloud.tar.zst");

  beforeAll(async () => {
    if (!CLOUD) return;
    modules = smallModulesTree(path.join(tmp, "mods"), CLOUD.modules, CLOUD.version);
    const r = await banger(["internal", "make-kernel-bundle", "--kernel", CLOUD.kernel, "--initrd", CLOUD.initrd, "--modules", path.join(tmp, "mods"), "--level", "3", "--out", out, "--json"], { ...env, SOURCE_DATE_EPOCH: "1700000000" });
    if (r.code !== 0) throw new Error(`make-kernel-bundle failed: ${r.stderr}`);
    made = JSON.parse(r.stdout);
    stderr = r.stderr;
  }, 60_000);

  testWith({ absent: CLOUD_ABSENT }, "prints path, sha256, size, the version read from the kernel and its arch; says which symlink it left out", () => {
    expect(made).toEqual({ path: out, sha256: sha256(out), size: fs.statSync(out).size, version: CLOUD!.version, arch: "amd64" });
    expect(stderr).toBe(`left out modules/${CLOUD!.version}/build -> /usr/src/linux-headers-${CLOUD!.version}: it points outside the modules tree\n`);
    expect(fs.readdirSync(tmp).filter((f) => f.includes(".tmp"))).toEqual([]);
  });

  testWith({ absent: CLOUD_ABSENT, tools: ["tar", "zstd"] }, "GNU tar reads it: the members, owners, times, and the same tree banger's unpack makes", async () => {
    const list = Bun.spawnSync(["tar", "--zstd", "-tvf", out, "--numeric-owner"]).stdout.toString().trim().split("\n");
    expect(list[0]).toMatch(/^-rw-r--r-- 0\/0 +\d+ 2023-11-14 \d\d:\d\d vmlinuz$/);
    expect(list[1]).toMatch(/ initrd\.img$/);
    expect(list[2]).toMatch(/^drwxr-xr-x 0\/0 .* modules\/$/);
    expect(list).toContainEqual(expect.stringMatching(new RegExp(`^lrwxrwxrwx 0/0 .* modules/${CLOUD!.version.replace(/\./g, "\\.")}/virtio -> kernel/drivers/virtio$`)));
    const gnu = fresh("gnu");
    expect(Bun.spawnSync(["tar", "--zstd", "-xpf", out, "-C", gnu]).exitCode).toBe(0);
    const ours = fresh("ours");
    const contents = await unpackKernelBundle(zstdDecompressNative(fileChunks(out)), ours, { where: "test" });
    expect(contents).toMatchObject({ kernel: "vmlinuz", initrd: true, modules: true });
    expect(snapshot(ours)).toEqual(snapshot(gnu));
    expect(sha256(path.join(ours, "vmlinuz"))).toBe(sha256(CLOUD!.kernel));
    expect(sha256(path.join(ours, "initrd.img"))).toBe(sha256(CLOUD!.initrd));
    // The source tree, but for the link out of it.
    expect(snapshot(path.join(ours, "modules", CLOUD!.version))).toEqual(snapshot(modules).filter((e) => e.path !== "build"));
  });

  testWith({ absent: CLOUD_ABSENT }, "the same inputs and SOURCE_DATE_EPOCH make the same bytes", async () => {
    const again = path.join(tmp, "again.tar.zst");
    const r = await banger(["internal", "make-kernel-bundle", "--kernel", CLOUD!.kernel, "--initrd", CLOUD!.initrd, "--modules", modules, "--level", "3", "--out", again, "--json"], { ...env, SOURCE_DATE_EPOCH: "1700000000" });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).sha256).toBe(made.sha256);
  }, 60_000);
});

test("make-kernel-bundle: usage errors and a kernel it cannot read fail before writing anything", async () => {
  const out = path.join(tmp, "never.tar.zst");
  const noKernel = await banger(["internal", "make-kernel-bundle", "--out", out], env);
  expect(noKernel.code).toBe(2);
  expect(noKernel.stderr).toContain("missing required option --kernel");
  const level = await banger(["internal", "make-kernel-bundle", "--kernel", "x", "--out", out, "--level", "30"], env);
  expect(level.stderr).toContain('--level "30" is not a zstd level');
  const bad = await banger(["internal", "make-kernel-bundle", "--kernel", path.join(import.meta.dir, "lib.ts"), "--out", out], env);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain("not a kernel image banger knows");
  expect(fs.existsSync(out)).toBe(false);
});

test("names longer than a ustar header go into PAX records, which GNU tar and banger read back", async () => {
  const k = path.join(tmp, "fake-vmlinuz");
  fs.writeFileSync(k, fakeBzImage("6.9.0-long (t) #1"));
  const mods = path.join(tmp, "long", "lib", "modules", "6.9.0-long");
  const deep = path.join(mods, "kernel", "a".repeat(60), "b".repeat(60));
  fs.mkdirSync(deep, { recursive: true });
  fs.writeFileSync(path.join(deep, `${"c".repeat(70)}.ko`), "x");
  fs.writeFileSync(path.join(mods, "modules.dep"), "");
  fs.symlinkSync(`kernel/${"a".repeat(60)}/${"b".repeat(60)}/${"c".repeat(70)}.ko`, path.join(mods, "long-link"));
  const out = path.join(tmp, "long.tar.zst");
  const r = await banger(["internal", "make-kernel-bundle", "--kernel", k, "--modules", mods, "--level", "1", "--out", out], env);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("kernel 6.9.0-long (amd64)");
  const ours = fresh("long-ours");
  await unpackKernelBundle(zstdDecompressNative(fileChunks(out)), ours, { where: "test" });
  expect(snapshot(path.join(ours, "modules", "6.9.0-long"))).toEqual(snapshot(mods));
  const gnu = fresh("long-gnu");
  expect(Bun.spawnSync(["tar", "--zstd", "-xpf", out, "-C", gnu]).exitCode).toBe(0);
  expect(snapshot(gnu)).toEqual(snapshot(ours));
});

describe("hostile bundles", () => {
  const kernel = fakeBzImage("6.9.0-h (t) #1");
  /** A base bundle (kernel, modules dir) plus `add`; returns the tar bytes. */
  const bundle = (add: (t: TarBuilder) => void, withKernel = true) => {
    const t = new TarBuilder();
    if (withKernel) t.file("vmlinuz", kernel);
    t.dir("modules/");
    t.dir("modules/6.9.0-h/");
    add(t);
    return t.end();
  };
  const root = path.join(tmp, "hostile");
  const outside = path.join(tmp, "hostile-outside");

  /** Unpacks into a fresh dir under `root`; returns the error message (or null), checking nothing landed outside. */
  async function attempt(tar: Uint8Array, opts: { maxBytes?: number } = {}): Promise<string | null> {
    const dir = path.join(root, `case-${n++}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.mkdirSync(outside, { recursive: true });
    let message: string | null = null;
    try {
      await unpackKernelBundle(once(tar), dir, { where: "bundle T", ...opts });
    } catch (err) {
      message = (err as Error).message;
    }
    // Nothing beside the case directories, nothing in the sentinel beside them.
    expect(fs.readdirSync(root).every((f) => f.startsWith("case-"))).toBe(true);
    expect(listAll(outside)).toEqual([]);
    expect(fs.existsSync("/tmp/banger-kernel-evil")).toBe(false);
    return message;
  }

  beforeAll(() => fs.mkdirSync(root, { recursive: true }));

  const refusals: [string, (t: TarBuilder) => void, string][] = [
    ["an extra member", (t) => t.file("vmlinuz.sig", "x"), 'unexpected member "vmlinuz.sig" (a kernel bundle holds only vmlinuz or vmlinux, initrd.img and modules/)'],
    ["a ../ path", (t) => t.file("../hostile-outside/evil", "x"), 'member "../hostile-outside/evil": ".." is not allowed in a kernel bundle'],
    ["a .. inside modules", (t) => t.file("modules/6.9.0-h/../../../hostile-outside/evil", "x"), '".." is not allowed'],
    ["an absolute path", (t) => t.file("/tmp/banger-kernel-evil", "x"), 'member "/tmp/banger-kernel-evil": absolute names are not allowed'],
    ["a device", (t) => t.device("modules/6.9.0-h/sda", "block", 8, 0), 'member "modules/6.9.0-h/sda" is a block device; a kernel bundle holds only directories, regular files and symlinks'],
    ["a character device", (t) => t.device("modules/6.9.0-h/null", "char", 1, 3), "is a character device"],
    ["a hard link", (t) => t.hardlink("modules/6.9.0-h/h", "vmlinuz"), "is a hard link"],
    ["a fifo", (t) => t.fifo("modules/6.9.0-h/p"), "is a fifo"],
    ["an absolute symlink", (t) => t.symlink("modules/6.9.0-h/etc", "/etc"), 'member "modules/6.9.0-h/etc": symlink to "/etc" points outside modules/'],
    ["a symlink climbing out", (t) => t.symlink("modules/6.9.0-h/up", "../../../hostile-outside"), "points outside modules/"],
    ["a symlink at the top", (t) => t.symlink("initrd.img", "vmlinuz"), 'member "initrd.img" is a symlink, not a regular file'],
    [
      "a member through a symlink inside the tree",
      (t) => {
        t.dir("modules/6.9.0-h/real/");
        t.symlink("modules/6.9.0-h/l", "real");
        t.file("modules/6.9.0-h/l/x.ko", "x");
      },
      'member "modules/6.9.0-h/l/x.ko" is below "modules/6.9.0-h/l", which is a symlink',
    ],
    ["a member below a file", (t) => t.file("vmlinuz/x", "x"), 'unexpected member "vmlinuz/x"'],
    ["a duplicate", (t) => t.file("vmlinuz", kernel), 'member "vmlinuz" appears twice'],
    ["vmlinuz and vmlinux", (t) => t.file("vmlinux", kernel), "both vmlinuz and vmlinux"],
    [
      "a file, then a directory of the same name",
      (t) => {
        t.file("modules/6.9.0-h/kernel", "x");
        t.dir("modules/6.9.0-h/kernel/");
      },
      'member "modules/6.9.0-h/kernel" appears twice',
    ],
    ["a global PAX header", (t) => t.globalPax({ comment: "x" }), "global PAX headers are not part of a kernel bundle"],
    ["a sparse member", (t) => t.file("initrd.img", "x", { pax: { "GNU.sparse.major": "1", "GNU.sparse.minor": "0" } }), 'member "initrd.img": sparse members are not part of a kernel bundle'],
    ["a control character in a name", (t) => t.file("modules/6.9.0-h/a\x1b[2Jb", "x"), 'member "modules/6.9.0-h/a\\x1b[2Jb": names in a kernel bundle are printable ASCII'],
  ];
  for (const [what, add, message] of refusals) {
    test(`refused: ${what}`, async () => {
      const got = await attempt(bundle(add));
      expect(got).toStartWith("bundle T: ");
      expect(got).toContain(message);
      expect(got!.includes("\n")).toBe(false);
    });
  }

  test("refused: no kernel; a truncated archive; more bytes than allowed", async () => {
    expect(await attempt(bundle((t) => void t.file("initrd.img", "x"), false))).toBe("bundle T: no vmlinuz or vmlinux (the kernel)");
    const fileModules = new TarBuilder();
    fileModules.file("vmlinuz", kernel);
    fileModules.file("modules", "x");
    expect(await attempt(fileModules.end())).toBe('bundle T: member "modules" is a regular file, not a directory');
    const whole = bundle(() => {});
    expect(await attempt(whole.subarray(0, whole.length - 1024))).toBe("bundle T: the archive ends without its end marker (truncated)");
    expect(await attempt(whole.subarray(0, 700))).toContain("truncated");
    expect(await attempt(bundle((t) => void t.file("initrd.img", new Uint8Array(5000))), { maxBytes: 8000 })).toBe("bundle T: more than 8000 bytes of files");
  });

  test("accepted: ./ prefixes, GNU long names, implicit parents; setuid and sticky bits dropped, read-only directories kept", async () => {
    const dir = fresh("accepted");
    const t = new TarBuilder();
    t.dir("./");
    t.file("./vmlinuz", kernel, { mode: 0o4755 });
    t.file(`modules/6.9.0-h/kernel/${"d".repeat(120)}.ko`, "m", { gnuLong: true, mode: 0o644 });
    t.symlink("modules/6.9.0-h/short", `kernel/${"d".repeat(120)}.ko`, { gnuLong: true });
    t.dir("modules/6.9.0-h/ro/", { mode: 0o1555 });
    t.file("modules/6.9.0-h/ro/f", "r", { mode: 0o444 });
    const contents = await unpackKernelBundle(once(t.end()), dir, { where: "ok" });
    expect(contents).toEqual({ kernel: "vmlinuz", initrd: false, modules: true, entries: 5, bytes: kernel.length + 2 });
    const snap = snapshot(dir);
    expect(snap.find((e) => e.path === "vmlinuz")?.mode).toBe(0o755);
    expect(snap.find((e) => e.path === "modules/6.9.0-h/ro")?.mode).toBe(0o555);
    expect(snap.find((e) => e.path === "modules/6.9.0-h/short")).toEqual({ path: "modules/6.9.0-h/short", type: "symlink", mode: 0o777, content: `kernel/${"d".repeat(120)}.ko` });
    expect(fs.readFileSync(path.join(dir, "modules/6.9.0-h/short"), "utf8")).toBe("m");
  });
});
